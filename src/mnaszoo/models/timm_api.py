"""timm's model surface on :class:`~mnaszoo.models.mnasnet.MnasNet`: ``forward_intermediates``,
``prune_intermediate_layers``, ``get_classifier`` and ``pretrained_cfg``.

The semantics follow timm's EfficientNet (which timm's MnasNets are): the intermediates are the
feature levels (stride 2, 4, 8, 16, 32; the outputs of the stages that end each stride), an int
``indices`` takes the last n levels, a sequence picks levels (negative from the end).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .._validate import check_bool
from ..errors import ArgumentTypeError, InvalidArgumentError

if TYPE_CHECKING:
    from .features import FeatureInfo

__all__ = ["PretrainedCfg", "TimmSurface", "take_indices"]


def take_indices(num_levels: int, indices: int | Sequence[int] | None) -> tuple[list[int], int]:
    """The levels ``indices`` selects (``None``: all; an int n: the last n; a sequence: those,
    negative counting from the end) and the deepest of them."""
    if indices is None:
        chosen = list(range(num_levels))
    elif isinstance(indices, bool) or not isinstance(indices, (int, list, tuple)):
        raise ArgumentTypeError(
            f"indices must be None, an int or a sequence of ints, got {type(indices).__name__}."
        )
    elif isinstance(indices, int):
        if not 0 < indices <= num_levels:
            raise InvalidArgumentError(
                f"indices={indices} asks for the last {indices} levels, but there are"
                f" {num_levels}; use 1..{num_levels}."
            )
        chosen = list(range(num_levels - indices, num_levels))
    else:
        chosen = []
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, int):
                raise ArgumentTypeError(f"indices items must be ints, got {index!r}.")
            if not -num_levels <= index < num_levels:
                raise InvalidArgumentError(
                    f"indices item {index} is out of range: there are {num_levels} levels"
                    f" (0..{num_levels - 1}, or negative from the end)."
                )
            chosen.append(index % num_levels)
        if not chosen:
            raise InvalidArgumentError("indices must not be empty.")
    return chosen, max(chosen)


class PretrainedCfg:
    """``pretrained_cfg``: the weights' recipe in timm's form (both model classes have it)."""

    # A Python-side description: TorchScript leaves it out of scripted models.
    __jit_unused_properties__ = ("pretrained_cfg",)

    if TYPE_CHECKING:  # kept out of the runtime annotations, which TorchScript reads
        weights_info: Any
        config: Any

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """The recipe of the loaded weights as timm's ``pretrained_cfg`` dict.

        Keys as timm's: ``architecture``, ``tag``, ``hf_hub_id``, ``url``, ``num_classes``,
        ``input_size``, ``crop_pct``, ``crop_mode``, ``interpolation``, ``mean``, ``std``,
        ``pool_size``, ``first_conv``, ``classifier``, ``license``; and mnaszoo's additions:
        ``resize_size`` (torchvision's resize, when the weights were measured with one),
        ``publisher``, ``recipe`` (the training notes), ``metrics`` and ``source``. A model
        without weights gets the default ImageNet recipe and ``tag`` ``None``.
        """
        info = getattr(self, "weights_info", None)
        config = self.config
        size = 224
        preprocessing = getattr(info, "preprocessing", None)
        if preprocessing is not None:
            size = preprocessing.input_size
            resize = preprocessing.resize
            crop_pct = preprocessing.crop_pct or round(size / resize, 4)
            interpolation = preprocessing.interpolation
            mean, std = tuple(preprocessing.mean), tuple(preprocessing.std)
            resize_size = preprocessing.resize_size
        else:
            crop_pct, interpolation, resize_size = 0.875, "bicubic", None
            mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        source = getattr(info, "source", None)
        stride = 32
        return {
            "architecture": config.spec.name,
            "tag": None if info is None else info.id.partition(".")[2],
            "hf_hub_id": getattr(source, "repo_id", None),
            "url": getattr(source, "url", ""),
            "num_classes": config.num_classes,
            "input_size": (config.in_chans, size, size),
            "crop_pct": crop_pct,
            "crop_mode": "center",
            "interpolation": interpolation,
            "mean": mean,
            "std": std,
            "pool_size": (math.ceil(size / stride), math.ceil(size / stride)),
            "first_conv": "stem.conv",
            "classifier": "classifier",
            "license": None if info is None else info.license or None,
            "resize_size": resize_size,
            "publisher": None if info is None else info.publisher,
            "recipe": None if info is None else info.notes,
            "metrics": []
            if info is None
            else [{"dataset": m.dataset, "top1": m.top1, "top5": m.top5} for m in info.metrics],
            "source": None if source is None else str(source),
        }


class TimmSurface(PretrainedCfg):
    """timm's feature and head methods for :class:`~mnaszoo.models.mnasnet.MnasNet`."""

    if TYPE_CHECKING:  # kept out of the runtime annotations, which TorchScript reads
        stem: nn.Module
        stages: nn.Sequential
        head: nn.Module
        classifier: nn.Module
        feature_info: FeatureInfo

    def reset_classifier(self, num_classes: int) -> None:  # implemented by MnasNet
        raise NotImplementedError

    @torch.jit.ignore  # type: ignore[untyped-decorator]
    def get_classifier(self) -> nn.Module:
        """The classifier module (``nn.Identity`` when ``num_classes == 0``), as timm's."""
        return self.classifier

    def _level_stages(self) -> list[int]:
        # timm counts the stem as 0 and stage s as s + 1 (its "stage_ends").
        return [level.stage + 1 for level in self.feature_info.levels]

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps of the selected levels, and the final features, in one pass.

        Args:
            x: an image batch ``(N, C, H, W)``.
            indices: ``None`` for every level (strides 2 to 32), an int n for the last n
                levels, or a sequence of levels (negative from the end).
            norm: accepted for timm compatibility; MnasNet has no norm layer after its last
                stage other than the head's, so, as in timm's EfficientNet, it changes nothing.
            stop_early: stop after the deepest selected level (the final features are then
                that level's map, without the head convolution).
            output_fmt: ``"NCHW"``, the only layout of a convolutional network.
            intermediates_only: return only the list of feature maps.

        Returns:
            ``(final_features, intermediates)``, the final features being what
            :meth:`forward_features` returns, or only ``intermediates``.

        Example:
            >>> import torch, mnaszoo
            >>> model = mnaszoo.create("mnasnet_a1").eval()
            >>> final, maps = model.forward_intermediates(torch.randn(1, 3, 224, 224))
            >>> final.shape, [m.shape[1] for m in maps]
            (torch.Size([1, 1280, 7, 7]), [16, 24, 40, 112, 320])
        """
        if output_fmt != "NCHW":
            raise InvalidArgumentError(f"output_fmt={output_fmt!r}: only 'NCHW' is produced.")
        check_bool("norm", norm)
        check_bool("stop_early", stop_early)
        check_bool("intermediates_only", intermediates_only)
        ends = self._level_stages()
        chosen, deepest = take_indices(len(ends), indices)
        wanted = {ends[i] for i in chosen}
        last = ends[deepest] if stop_early else len(self.stages)
        intermediates: list[torch.Tensor] = []
        x = self.stem(x)
        if 0 in wanted:
            intermediates.append(x)
        position = 0
        stages: list[nn.Module] = list(self.stages)[:last]
        for position, stage in enumerate(stages, start=1):
            x = stage(x)
            if position in wanted:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        if position == len(self.stages):
            x = self.head(x)
        return x, intermediates

    @torch.jit.unused
    def prune_intermediate_layers(
        self,
        indices: int | Sequence[int] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> list[int]:
        """Drop the stages past the deepest selected level (and the head), as timm does.

        Args:
            indices: the levels to keep reachable (as in :meth:`forward_intermediates`).
            prune_norm: also drop the head convolution when no stage is cut.
            prune_head: drop the classifier (``num_classes`` becomes 0).

        Returns:
            The selected levels.
        """
        ends = self._level_stages()
        chosen, deepest = take_indices(len(ends), indices)
        keep = ends[deepest]
        cut = keep < len(self.stages)
        self.stages = nn.Sequential(*list(self.stages)[:keep])
        if prune_norm or cut:
            self.head = nn.Identity()
        if prune_head:
            self.reset_classifier(0)
        return chosen
