"""The model to train: where it comes from, its head, its BatchNorm and its optimizer.

``model`` is a registered name (``mnasnet_a1``; with ``pretrained`` its published weights), a
folder written by ``save_pretrained`` (another run's output), a Hub repository written by
``push_to_hub`` (``hf-hub:user/name``), or a :class:`~mnaszoo.models.mnasnet.MnasNet` object;
``checkpoint`` adds a weights file for a registered name; a folder or repository with
``pretrained=False`` gives its architecture freshly initialised (how a searched network, which
has no registry name, is trained from scratch). Anything that brings trained weights
counts as fine-tuning (the recipe's ``lr_finetune``, layer decay and head multiplier apply).
A classifier with another number of classes than the data's is replaced by a fresh one,
started at zero (the reference initialisation gives initial losses near 5 instead of ln C).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...errors import ArgumentTypeError, InvalidArgumentError
from ...models.mnasnet import MnasNet
from ..finetune import FINETUNE_BN_MOMENTUM, freeze_bn, param_groups, set_bn_momentum
from .recipes import Recipe

__all__ = [
    "ModelSource",
    "build_optimizer",
    "fit_head",
    "load_model",
    "load_teacher",
    "prepare_bn",
]

logger = logging.getLogger("mnaszoo.train")

HUB_PREFIX = "hf-hub:"


@dataclass(frozen=True)
class ModelSource:
    """How the model was obtained, for the training record."""

    kind: str  # "registry", "directory", "hub" or "object"
    name: str
    pretrained: bool | str
    checkpoint: str | None
    finetune: bool
    head_replaced: bool


def _load(
    model: str | MnasNet,
    *,
    pretrained: bool | str | None,
    checkpoint: str | os.PathLike[str] | None,
    drop_path_rate: float,
    local_files_only: bool,
) -> tuple[MnasNet, ModelSource]:
    from ...factory import create
    from ...weights.hub import from_pretrained

    if isinstance(model, MnasNet):
        if checkpoint is not None:
            raise InvalidArgumentError("checkpoint= applies to a model name, not a model object.")
        trained = bool(pretrained) if pretrained is not None else model.weights_info is not None
        return model, ModelSource("object", model.config.spec.name, trained, None, trained, False)
    if not isinstance(model, str):
        raise ArgumentTypeError(
            f"model must be a model name, a save_pretrained folder, 'hf-hub:user/name' or a"
            f" MnasNet, got {type(model).__name__}."
        )
    if model.startswith(HUB_PREFIX) or Path(model).expanduser().is_dir():
        if checkpoint is not None:
            raise InvalidArgumentError(
                "checkpoint= applies to a registered model name; a folder or Hub repository"
                " already holds its weights."
            )
        hub = model.startswith(HUB_PREFIX)
        location = model[len(HUB_PREFIX) :] if hub else str(Path(model).expanduser())
        loaded = from_pretrained(location, local_files_only=local_files_only)
        kind = "hub" if hub else "directory"
        if pretrained is False:
            # Its architecture, freshly initialised: how a searched network (which has no
            # registry name) is trained from scratch.
            logger.info("Training the architecture of %s from scratch (its weights unused).", model)
            fresh = MnasNet(loaded.config)
            return fresh, ModelSource(kind, model, False, location, False, False)
        return loaded, ModelSource(kind, model, True, location, True, False)
    use_pretrained: bool | str = bool(pretrained) if pretrained is not None else True
    if isinstance(pretrained, str):
        use_pretrained = pretrained
    if checkpoint is not None:
        use_pretrained = False
    created = create(
        model,
        pretrained=use_pretrained,
        checkpoint=checkpoint,
        drop_path_rate=drop_path_rate,
        local_files_only=local_files_only,
    )
    trained = bool(use_pretrained) or checkpoint is not None
    source = ModelSource(
        "registry",
        model,
        use_pretrained,
        None if checkpoint is None else str(checkpoint),
        trained,
        False,
    )
    return created, source


def load_model(
    model: str | MnasNet,
    *,
    pretrained: bool | str | None,
    checkpoint: str | os.PathLike[str] | None,
    drop_path_rate: float,
    local_files_only: bool = False,
) -> tuple[MnasNet, ModelSource]:
    """The model as its source gives it (see the module docstring), and where it came from.

    Raises:
        InvalidArgumentError: the source cannot be used, or the model has no classifier to
            train (a ``features_only`` backbone).
        ArgumentTypeError: ``model`` has an unsupported type.
        WeightsError: the weights cannot be found, downloaded or read.
    """
    loaded, source = _load(
        model,
        pretrained=pretrained,
        checkpoint=checkpoint,
        drop_path_rate=drop_path_rate,
        local_files_only=local_files_only,
    )
    if not isinstance(loaded, MnasNet):
        raise InvalidArgumentError(
            f"{source.name!r} gives a {type(loaded).__name__}, which has no classifier to train;"
            " pass a classification model (not features_only)."
        )
    return loaded, source


def fit_head(model: MnasNet, source: ModelSource, num_classes: int) -> ModelSource:
    """Give ``model`` a classifier of ``num_classes`` outputs: a new one, started at zero, if
    its own has another size (or the model is trained from scratch)."""
    head_replaced = model.num_classes != num_classes or not isinstance(model.classifier, nn.Linear)
    if head_replaced:
        if model.num_classes and source.finetune:
            logger.info(
                "the model's classifier has %d outputs and the data %d classes: it is replaced"
                " by a new one",
                model.num_classes,
                num_classes,
            )
        model.reset_classifier(num_classes)
    if (head_replaced or not source.finetune) and isinstance(model.classifier, nn.Linear):
        # The reference initialisation gives logits with a standard deviation near 4 (an
        # initial loss near 5 for 10 classes instead of ln 10); zero logits waste no steps.
        nn.init.zeros_(model.classifier.weight)
        nn.init.zeros_(model.classifier.bias)
    return ModelSource(
        source.kind,
        source.name,
        source.pretrained,
        source.checkpoint,
        source.finetune,
        head_replaced,
    )


def prepare_bn(model: MnasNet, source: ModelSource, recipe: Recipe) -> bool:
    """BatchNorm for short runs: PyTorch's momentum 0.1 instead of the published 0.01 (whose
    running statistics, which evaluation uses, take thousands of steps to settle), and, when
    fine-tuning with fewer images per step and process than ``recipe.bn_freeze_below``, every
    layer frozen (batch statistics would be noise). Returns whether BatchNorm was frozen."""
    set_bn_momentum(model, FINETUNE_BN_MOMENTUM)
    if not source.finetune or recipe.batch_size >= recipe.bn_freeze_below:
        return False
    freeze_bn(model)
    logger.info(
        "batch size %d < %d: BatchNorm layers frozen (running statistics and affine"
        " parameters kept from the checkpoint)",
        recipe.batch_size,
        recipe.bn_freeze_below,
    )
    return True


def build_optimizer(model: MnasNet, source: ModelSource, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW over :func:`~mnaszoo.tasks.finetune.param_groups`: no decay on biases and
    BatchNorm; when fine-tuning, the recipe's layer-wise decay and head multiplier. Each group
    keeps its ``lr_scale``; the schedule sets ``lr = base * lr_scale * factor``."""
    base = recipe.lr_finetune if source.finetune else recipe.lr
    groups = param_groups(
        model,
        lr=base,
        weight_decay=recipe.weight_decay,
        head_lr_mult=recipe.head_lr_mult if source.finetune else 1.0,
        layer_decay=recipe.layer_decay if source.finetune else None,
    )
    for group in groups:
        group["base_lr"] = base
    return torch.optim.AdamW(groups, lr=base)


def load_teacher(teacher: str | MnasNet, num_classes: int, device: torch.device) -> MnasNet:
    """A trained model whose outputs are the same classes, frozen, in eval mode.

    Raises:
        InvalidArgumentError: its classifier does not output ``num_classes`` classes.
    """
    model, _ = _load(
        teacher, pretrained=None, checkpoint=None, drop_path_rate=0.0, local_files_only=False
    )
    if model.num_classes != num_classes:
        raise InvalidArgumentError(
            f"The teacher {getattr(model.config.spec, 'name', teacher)!r} predicts"
            f" {model.num_classes} classes and the data has {num_classes}: a teacher must be"
            " trained on the same classes (e.g. the output folder of a larger model's run)."
        )
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.to(device).eval()
