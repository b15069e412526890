"""The :class:`MnasNet` classifier and its :class:`MnasNetFeatures` backbone."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .._validate import check_bool, check_int
from ..errors import ArgumentTypeError, InvalidArgumentError
from .config import ModelConfig
from .features import FeatureInfo, FeatureLevel
from .hub_methods import HubMethods
from .layers import ConvBnAct, make_block
from .plan import NetworkPlan
from .timm_api import PretrainedCfg, TimmSurface

if TYPE_CHECKING:
    from ..weights.manifest import WeightsRecord

__all__ = [
    "FeatureInfo",
    "FeatureLevel",
    "MnasNet",
    "MnasNetFeatures",
    "feature_levels",
    "init_weights",
]


def feature_levels(plan: NetworkPlan) -> FeatureInfo:
    """The taps at each distinct stride (2, 4, 8, 16, 32 for MnasNet): the last stage at each.

    These are the levels ``features_only`` models return and ``out_indices`` counts, as in timm.
    """
    taps: dict[int, FeatureLevel] = {
        plan.stem_reduction: FeatureLevel("stem", -1, plan.stem_channels, plan.stem_reduction)
    }
    for index, stage in enumerate(plan.stages):
        last = stage[-1]
        taps[last.reduction] = FeatureLevel(
            f"stages.{index}", index, last.out_channels, last.reduction
        )
    return FeatureInfo([taps[reduction] for reduction in sorted(taps)])


def _make_stages(config: ModelConfig, up_to_stage: int | None = None) -> nn.Sequential:
    plan = config.plan
    blocks = plan.blocks
    stages: list[nn.Module] = []
    position = 0
    for stage in plan.stages[: None if up_to_stage is None else up_to_stage + 1]:
        modules = []
        for block in stage:
            # Stochastic depth grows linearly with depth, from 0 at the first block (as in timm).
            rate = config.drop_path_rate * position / len(blocks)
            eps, momentum = config.batchnorm
            modules.append(make_block(block, drop_path=rate, bn_eps=eps, bn_momentum=momentum))
            position += 1
        stages.append(nn.Sequential(*modules))
    return nn.Sequential(*stages)


def init_weights(module: nn.Module) -> None:
    """Initialise every layer of ``module`` as the TF reference does (He fan-out convolutions,
    BatchNorm at identity, uniform classifier); the search's proxy re-initialises with it."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            # He init on fan-out, as the TF reference (and timm's _init_weight_goog) do.
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


class MnasNet(TimmSurface, HubMethods, nn.Module):
    """A MnasNet image classifier built from a :class:`~mnaszoo.models.config.ModelConfig`.

    Layout (state-dict prefixes): ``stem`` (3x3 stride-2 ConvBnAct), ``stages.<s>.<b>`` (blocks),
    ``head`` (1x1 ConvBnAct to ``num_features``), ``global_pool``, ``dropout``, ``classifier``.

    Prefer :func:`mnaszoo.create` or :func:`mnaszoo.build` to constructing this class directly.

    Attributes:
        config: the validated construction config (rebuilds the model without the registry).
        num_features: channels of the pooled features fed to the classifier.
        num_classes: classifier outputs (0 means the classifier is an identity).
        feature_info: the feature levels (see :func:`feature_levels`).
        weights_info: the record of the pretrained weights loaded by :func:`mnaszoo.create`
            (labels, preprocessing, provenance), or ``None``.
        provenance: where the loaded weights came from (source, revision, sha256 of every
            input file, the conversion applied, the mnaszoo version), or ``None``.
        pretrained_cfg: the weights' recipe in timm's ``pretrained_cfg`` form (see
            :meth:`~mnaszoo.models.timm_api.TimmSurface.pretrained_cfg`).
        grad_checkpointing: whether training recomputes each stage in the backward pass (see
            :meth:`set_grad_checkpointing`).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise ArgumentTypeError(f"config must be a ModelConfig, got {type(config).__name__}.")
        plan = config.plan
        self.config = config
        self.weights_info: WeightsRecord | None = None
        self.provenance: dict[str, Any] | None = None
        self.num_classes = config.num_classes
        self.num_features = plan.head_channels
        self.feature_info = feature_levels(plan)
        eps, momentum = config.batchnorm
        self.stem = ConvBnAct(
            config.in_chans, plan.stem_channels, 3, 2, bn_eps=eps, bn_momentum=momentum
        )
        self.stages = _make_stages(config)
        self.head = ConvBnAct(
            plan.blocks[-1].out_channels, plan.head_channels, 1, bn_eps=eps, bn_momentum=momentum
        )
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier: nn.Module = self._new_classifier(config.num_classes)
        self.grad_checkpointing = False
        init_weights(self)

    def _new_classifier(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        return nn.Linear(self.num_features, num_classes)

    @torch.jit.unused
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Trade compute for memory in training: recompute each stage in the backward pass.

        While enabled and in training mode with gradients on, :meth:`forward_features` keeps
        only each stage's input (``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)``)
        and runs the stage again during the backward pass: activation memory drops to about one
        stage's worth, for roughly one more forward pass of compute. Outputs, gradients and
        BatchNorm running statistics are the same as without it (the recomputation restores the
        statistics it updates; random drop-path masks are replayed). Evaluation, ``no_grad``,
        TorchScript and ``torch.export`` ignore the setting.

        Args:
            enable: turn checkpointing on (``True``) or off.

        Example:
            >>> import mnaszoo
            >>> model = mnaszoo.create("mnasnet_small", num_classes=10)
            >>> model.set_grad_checkpointing()
            >>> model.grad_checkpointing
            True
        """
        self.grad_checkpointing = check_bool("enable", enable)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, stages and head convolution: a ``(N, num_features, H/32, W/32)`` map."""
        x = self.stem(x)
        if (
            torch.jit.is_scripting()  # type: ignore[attr-defined]
            or not self.grad_checkpointing
            or not self.training
            or not torch.is_grad_enabled()
        ):
            x = self.stages(x)
        else:
            x = self._checkpointed_stages(x)
        features: torch.Tensor = self.head(x)
        return features

    @torch.jit.unused
    def _checkpointed_stages(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        for stage in self.stages:
            x = checkpoint(_Recomputable(stage), x, use_reentrant=False)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool a feature map and classify it; ``pre_logits=True`` returns the pooled vector."""
        x = torch.flatten(self.global_pool(x), 1)
        if pre_logits:
            return x
        logits: torch.Tensor = self.classifier(self.dropout(x))
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(N, num_classes)`` (or pooled features when ``num_classes == 0``)."""
        return self.forward_head(self.forward_features(x))

    @torch.jit.unused
    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a freshly initialised one with ``num_classes`` outputs.

        ``num_classes=0`` removes it, so that ``forward`` returns pooled features.
        """
        check_int("num_classes", num_classes, minimum=0)
        classifier = self._new_classifier(num_classes)
        init_weights(classifier)
        weight = next(self.parameters())
        self.classifier = classifier.to(device=weight.device, dtype=weight.dtype)
        self.num_classes = num_classes
        self.config = _replace_num_classes(self.config, num_classes)


class _Recomputable:
    """Run a stage; when the backward pass runs it again, undo its BatchNorm statistic updates.

    Non-reentrant checkpointing calls the stage once in the forward pass and again (possibly
    stopping early) in the backward pass; in training mode BatchNorm would update its running
    statistics both times. The batch statistics that normalise the activations, and so the
    gradients, do not depend on the running ones, so restoring them afterwards is exact.
    """

    def __init__(self, stage: nn.Module) -> None:
        self.stage = stage
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 1:
            out: torch.Tensor = self.stage(x)
            return out
        saved = [
            (buffer, buffer.clone())
            for module in self.stage.modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)
            for buffer in module.buffers(recurse=False)
        ]
        try:
            out = self.stage(x)
        finally:
            with torch.no_grad():
                for buffer, value in saved:
                    buffer.copy_(value)
        return out


def _replace_num_classes(config: ModelConfig, num_classes: int) -> ModelConfig:
    return dataclasses.replace(config, num_classes=num_classes)


class MnasNetFeatures(PretrainedCfg, nn.Module):
    """A backbone returning the feature maps of selected levels (strides 2 to 32).

    Its state-dict keys are the ``stem.*`` and ``stages.*`` keys of :class:`MnasNet`, so
    classifier weights load into it once the head and classifier keys are dropped.

    Attributes:
        feature_info: the selected levels, in output order (a :class:`FeatureInfo`, which
            also answers timm's ``channels()``, ``reduction()``, ``module_name()`` and
            ``get_dicts()``).
        out_indices: the selected level indices.

    Example:
        >>> import torch, mnaszoo
        >>> backbone = mnaszoo.create("mnasnet_small", features_only=True, out_indices=(3, 4))
        >>> type(backbone).__name__, backbone.feature_info.channels()
        ('MnasNetFeatures', [32, 144])
        >>> [tuple(m.shape) for m in backbone(torch.zeros(1, 3, 64, 64))]
        [(1, 32, 4, 4), (1, 144, 2, 2)]
    """

    def __init__(self, config: ModelConfig, out_indices: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise ArgumentTypeError(f"config must be a ModelConfig, got {type(config).__name__}.")
        levels = feature_levels(config.plan)
        indices = validate_out_indices(out_indices, len(levels))
        self.config = config
        self.weights_info: WeightsRecord | None = None
        self.provenance: dict[str, Any] | None = None
        self.out_indices = indices
        self.feature_info = FeatureInfo(levels.levels, indices)
        eps, momentum = config.batchnorm
        self.stem = ConvBnAct(
            config.in_chans, config.plan.stem_channels, 3, 2, bn_eps=eps, bn_momentum=momentum
        )
        last_stage = max(info.stage for info in self.feature_info)
        self.stages = _make_stages(config, up_to_stage=max(last_stage, 0))
        self.return_stem = any(info.stage == -1 for info in self.feature_info)
        self.return_stages = [info.stage for info in self.feature_info if info.stage >= 0]
        init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of the selected levels, shallow to deep."""
        x = self.stem(x)
        features: list[torch.Tensor] = []
        if self.return_stem:
            features.append(x)
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.return_stages:
                features.append(x)
        return features


def validate_out_indices(out_indices: object, num_levels: int) -> tuple[int, ...]:
    """Check ``out_indices`` (None = all levels; negative indices count from the end)."""
    if out_indices is None:
        return tuple(range(num_levels))
    if isinstance(out_indices, (str, bytes)) or not isinstance(out_indices, (tuple, list)):
        raise ArgumentTypeError(
            "out_indices must be a tuple of ints, got"
            f" {type(out_indices).__name__} {out_indices!r}."
        )
    if not out_indices:
        raise InvalidArgumentError(
            f"out_indices must not be empty; levels are 0..{num_levels - 1}."
        )
    resolved = []
    for index in out_indices:
        check_int("out_indices item", index)
        if not -num_levels <= index < num_levels:
            raise InvalidArgumentError(
                f"out_indices item {index} is out of range; this model has {num_levels} feature"
                f" levels (strides 2 to {2**num_levels}): use 0..{num_levels - 1} or negative"
                " indices."
            )
        resolved.append(index % num_levels)
    if len(set(resolved)) != len(resolved) or resolved != sorted(resolved):
        raise InvalidArgumentError(
            f"out_indices must be increasing without repeats, got {tuple(out_indices)!r}."
        )
    return tuple(resolved)
