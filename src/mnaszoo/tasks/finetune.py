"""Fine-tuning helpers: freezing by stage, BatchNorm handling and optimizer parameter groups.

A :class:`~mnaszoo.models.mnasnet.MnasNet` is an ordered list of *parts*: ``stem``, ``stages.0`` ...
``stages.<n-1>``, ``head`` (the 1x1 convolution to ``num_features``) and ``classifier``.
:func:`freeze` freezes a prefix of them, :func:`param_groups` builds optimizer groups from
them, and :func:`stage_names` lists them.

**How frozen BatchNorm stays frozen.** A frozen part's parameters get ``requires_grad=False``
and each of its BatchNorm layers is switched, in place, to :class:`EvalModeBatchNorm2d`: the
same module (same object, attributes, parameters, buffers and state-dict keys) whose class
overrides ``train()`` so that it always stays in eval mode. A later ``model.train()`` therefore
leaves the frozen layers normalising with their running statistics, which are never updated.
:func:`unfreeze` switches them back to their original class. The layers still script, export,
pickle and ``deepcopy`` like ordinary BatchNorm layers.

Freeze before wrapping the model in ``DistributedDataParallel`` (it registers the parameters
that require gradients when it is built) and after ``nn.SyncBatchNorm.convert_sync_batchnorm``
(which would replace the frozen layers by new, trainable ones).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .._validate import check_float
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..models.config import MAX_BN_MOMENTUM
from ..models.mnasnet import MnasNet, MnasNetFeatures

__all__ = [
    "FINETUNE_BN_MOMENTUM",
    "EvalModeBatchNorm2d",
    "count_parameters",
    "freeze",
    "freeze_bn",
    "param_groups",
    "set_bn_momentum",
    "stage_names",
    "unfreeze",
]

FINETUNE_BN_MOMENTUM: float = 0.1
"""BatchNorm momentum for fine-tuning (PyTorch convention), for :func:`set_bn_momentum`.

Published MnasNet weights use 0.01 (TensorFlow's decay 0.99), tuned for long ImageNet runs:
after 100 fine-tuning steps 37% of the running statistics (which evaluation uses) is still
ImageNet's, and evaluation accuracy trails training accuracy. 0.1, PyTorch's default, leaves
under 1% after 50 steps.
"""

# The largest momentum accepted: above it, the value is almost surely TF's decay convention.
_FROZEN_FROM = "_mnaszoo_unfrozen_class"
_SWAPPABLE = (nn.BatchNorm2d, nn.SyncBatchNorm)

Model = MnasNet | MnasNetFeatures


class EvalModeBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d that stays in eval mode: ``train()`` leaves ``training`` False.

    :func:`freeze` and :func:`freeze_bn` switch layers to this class in place (and
    :func:`unfreeze` back), so that ``model.train()`` does not resume updating the running
    statistics of frozen layers. Its forward pass is BatchNorm2d's.
    """

    def train(self, mode: bool = True) -> EvalModeBatchNorm2d:
        """Ignore ``mode``: stay in eval mode."""
        super().train(False)
        return self


def _check_model(model: object, function: str) -> Model:
    if isinstance(model, (MnasNet, MnasNetFeatures)):
        return model
    inner = getattr(model, "module", None)
    hint = (
        f"; pass the wrapped model ({type(model).__name__}.module), and call {function} before"
        " wrapping it in DistributedDataParallel"
        if isinstance(inner, (MnasNet, MnasNetFeatures))
        else ""
    )
    raise ArgumentTypeError(
        f"{function} takes a MnasNet or MnasNetFeatures, got {type(model).__name__}{hint}."
    )


def _parts(model: Model) -> list[tuple[str, nn.Module]]:
    parts: list[tuple[str, nn.Module]] = [("stem", model.stem)]
    parts += [(f"stages.{index}", stage) for index, stage in enumerate(model.stages)]
    if isinstance(model, MnasNet):
        parts += [("head", model.head), ("classifier", model.classifier)]
    return parts


def stage_names(model: MnasNet | MnasNetFeatures) -> tuple[str, ...]:
    """The model's parts in forward order: what :func:`freeze` accepts as ``up_to_stage``.

    Args:
        model: a :class:`~mnaszoo.models.mnasnet.MnasNet` or
            :class:`~mnaszoo.models.mnasnet.MnasNetFeatures`.

    Returns:
        ``("stem", "stages.0", ..., "stages.<n-1>", "head", "classifier")``; a backbone has no
        ``head`` or ``classifier`` and only the stages it built.

    Raises:
        ArgumentTypeError: ``model`` is not a MnasNet (a wrapped model's ``.module`` is).

    Example:
        >>> import mnaszoo
        >>> from mnaszoo.tasks.finetune import stage_names
        >>> names = stage_names(mnaszoo.create("mnasnet_small"))
        >>> names[:3], names[-3:]
        (('stem', 'stages.0', 'stages.1'), ('stages.6', 'head', 'classifier'))
    """
    return tuple(name for name, _ in _parts(_check_model(model, "stage_names")))


def _resolve_stage(model: Model, up_to_stage: object) -> int:
    names = [name for name, _ in _parts(model)]
    num_stages = len(model.stages)
    accepted = (
        f"accepted: a stage index 0..{num_stages - 1} or one of {names}"
        " (freezing everything from the stem up to and including that part)"
    )
    if isinstance(up_to_stage, bool) or not isinstance(up_to_stage, (int, str)):
        raise ArgumentTypeError(
            f"up_to_stage must be an int or a str, got {type(up_to_stage).__name__}"
            f" {up_to_stage!r}; {accepted}."
        )
    if isinstance(up_to_stage, int):
        if not 0 <= up_to_stage < num_stages:
            raise InvalidArgumentError(
                f"up_to_stage={up_to_stage} is out of range; {accepted}. Use 'stem' to freeze"
                " only the stem."
            )
        return names.index(f"stages.{up_to_stage}")
    if up_to_stage not in names:
        raise InvalidArgumentError(f"up_to_stage={up_to_stage!r} is not a part; {accepted}.")
    return names.index(up_to_stage)


def _freeze_bn_layer(module: nn.Module, name: str) -> None:
    if isinstance(module, EvalModeBatchNorm2d):
        return
    if type(module) not in _SWAPPABLE:
        raise ArgumentTypeError(
            f"Cannot freeze {name or 'the model'} ({type(module).__name__}): frozen BatchNorm"
            " layers must be nn.BatchNorm2d or nn.SyncBatchNorm."
        )
    setattr(module, _FROZEN_FROM, type(module))
    module.__class__ = EvalModeBatchNorm2d
    module.train(False)


def _is_bn(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def freeze(model: MnasNet | MnasNetFeatures, up_to_stage: int | str) -> None:
    """Freeze the model from the stem up to and including ``up_to_stage``.

    Frozen parameters get ``requires_grad=False``; the BatchNorm layers of the frozen parts are
    kept in eval mode (their running statistics are used and never updated), even after
    ``model.train()``: see the module docstring for how. Parts already frozen stay frozen, so
    ``freeze`` only ever adds; :func:`unfreeze` undoes everything. Gradual unfreezing is
    ``unfreeze(model); freeze(model, k - 1)``.

    Build the optimizer (e.g. with :func:`param_groups`, which skips frozen parameters) after
    freezing, and wrap the model in ``DistributedDataParallel`` after that.

    Args:
        model: a :class:`~mnaszoo.models.mnasnet.MnasNet` or
            :class:`~mnaszoo.models.mnasnet.MnasNetFeatures`.
        up_to_stage: a stage index (``3`` freezes ``stem`` and ``stages.0`` to ``stages.3``) or
            a part name from :func:`stage_names`: ``"stem"``, ``"stages.<i>"``, ``"head"``
            (everything but the classifier: a linear probe) or ``"classifier"`` (everything).

    Raises:
        ArgumentTypeError: ``model`` is not a MnasNet (a wrapped model's ``.module`` is), or
            ``up_to_stage`` is neither int nor str.
        InvalidArgumentError: ``up_to_stage`` names no part of this model.

    Example:
        >>> import mnaszoo
        >>> from mnaszoo.tasks.finetune import freeze
        >>> model = mnaszoo.create("mnasnet_small", num_classes=10)
        >>> freeze(model, "head")                      # train the classifier only
        >>> [n for n, p in model.named_parameters() if p.requires_grad]
        ['classifier.weight', 'classifier.bias']
        >>> model.train().stem.bn.training             # frozen BatchNorm stays in eval mode
        False
    """
    checked = _check_model(model, "freeze")
    last = _resolve_stage(checked, up_to_stage)
    for part, module in _parts(checked)[: last + 1]:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        for name, layer in module.named_modules(prefix=part):
            if _is_bn(layer):
                _freeze_bn_layer(layer, name)


def freeze_bn(model: nn.Module) -> None:
    """Freeze every BatchNorm layer: running statistics and affine parameters.

    Each layer is kept in eval mode (normalising with its running statistics, which stop
    changing) even after ``model.train()``, and its ``weight`` and ``bias`` get
    ``requires_grad=False``. Convolutions and the classifier keep training. Useful for
    fine-tuning with small batches, where batch statistics are noisy.

    Args:
        model: any module; every ``nn.BatchNorm2d`` or ``nn.SyncBatchNorm`` inside is frozen.

    Raises:
        ArgumentTypeError: ``model`` is not a module, or holds another kind of BatchNorm.

    Example:
        >>> import mnaszoo
        >>> from mnaszoo.tasks.finetune import freeze_bn
        >>> model = mnaszoo.create("mnasnet_small", num_classes=10)
        >>> freeze_bn(model)
        >>> model.train().head.bn.training, model.head.bn.weight.requires_grad
        (False, False)
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"freeze_bn takes a torch module, got {type(model).__name__}.")
    for name, layer in model.named_modules():
        if _is_bn(layer):
            _freeze_bn_layer(layer, name)
            for parameter in layer.parameters(recurse=False):
                parameter.requires_grad_(False)


def unfreeze(model: nn.Module) -> None:
    """Undo :func:`freeze` and :func:`freeze_bn`: every parameter trainable, BatchNorm normal.

    BatchNorm layers get their original class back and follow the model's current mode again
    (training if ``model.training``).

    Args:
        model: any module.

    Raises:
        ArgumentTypeError: ``model`` is not a torch module.

    Example:
        >>> import mnaszoo
        >>> from mnaszoo.tasks.finetune import freeze, unfreeze
        >>> model = mnaszoo.create("mnasnet_small", num_classes=10)
        >>> freeze(model, 2)
        >>> unfreeze(model)
        >>> all(p.requires_grad for p in model.parameters()), model.train().stem.bn.training
        (True, True)
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"unfreeze takes a torch module, got {type(model).__name__}.")
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    for layer in model.modules():
        original = layer.__dict__.pop(_FROZEN_FROM, None)
        if original is None and isinstance(layer, EvalModeBatchNorm2d):
            original = nn.BatchNorm2d  # built as such, not by freeze
        if original is not None:
            layer.__class__ = original
            layer.train(model.training)


def set_bn_momentum(model: nn.Module, momentum: float) -> int:
    """Set the momentum of every BatchNorm layer (PyTorch convention: ``1 - TF decay``).

    Args:
        model: any module.
        momentum: in ``[0, 0.5]``; :data:`FINETUNE_BN_MOMENTUM` (0.1) is the fine-tuning preset.
            A value such as 0.99 is TensorFlow's decay convention and is rejected.

    Returns:
        How many layers were changed.

    Raises:
        InvalidArgumentError: ``momentum`` is out of range.
        ArgumentTypeError: ``model`` is not a module or ``momentum`` is not a number.

    Example:
        >>> import mnaszoo
        >>> from mnaszoo.tasks.finetune import FINETUNE_BN_MOMENTUM, set_bn_momentum
        >>> model = mnaszoo.create("mnasnet_small", num_classes=10)
        >>> set_bn_momentum(model, FINETUNE_BN_MOMENTUM)
        46
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(
            f"set_bn_momentum takes a torch module, got {type(model).__name__}."
        )
    value = check_float("momentum", momentum, minimum=0.0)
    if value > MAX_BN_MOMENTUM:
        raise InvalidArgumentError(
            f"momentum={momentum!r} looks like TensorFlow's decay convention; PyTorch's momentum"
            f" is 1 - decay (decay 0.9 -> 0.1). Accepted: 0 <= momentum <= {MAX_BN_MOMENTUM}."
        )
    changed = 0
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.momentum = value
            changed += 1
    return changed


def _depths(model: Model) -> tuple[dict[str, tuple[int, str]], int]:
    # Layer depth from the input, per parameter-name prefix: the stem is 0, each block one more
    # (timm's per-block layer decay), then the head conv and the classifier.
    depths: dict[str, tuple[int, str]] = {"stem.": (0, "stem")}
    depth = 0
    for s, stage in enumerate(model.stages):
        for b in range(len(list(stage.children()))):
            depth += 1
            depths[f"stages.{s}.{b}."] = (depth, f"stages.{s}.{b}")
    if isinstance(model, MnasNet):
        depths["head."] = (depth + 1, "head")
        depths["classifier."] = (depth + 2, "classifier")
        depth += 2
    return depths, depth


def param_groups(
    model: MnasNet | MnasNetFeatures,
    *,
    lr: float,
    weight_decay: float,
    head_lr_mult: float = 1.0,
    layer_decay: float | None = None,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups for fine-tuning, for any ``torch.optim`` optimizer.

    * No weight decay on one-dimensional parameters: BatchNorm weights and biases, and every
      bias (classifier, squeeze-and-excitation); ``weight_decay`` on the rest.
    * The classifier's learning rate is ``lr * head_lr_mult`` (e.g. 10 for a fresh head on
      pretrained features).
    * ``layer_decay``: layer-wise learning-rate decay, as in timm and BEiT. Depth counts the
      stem as 0, each block (not stage) as one more, then the head conv and the classifier;
      a parameter at depth ``d`` gets ``lr * layer_decay ** (max_depth - d)``, so the
      classifier keeps ``lr`` and the stem, deepest from the head, gets the smallest rate
      (``mnasnet_a1`` has 16 blocks: with 0.8 the stem gets ``0.8 ** 18 = 1.8%``).
    * Frozen parameters (``requires_grad=False``, see :func:`freeze`) are left out.

    Each group holds ``params``, ``lr``, ``weight_decay``, ``lr_scale`` (its ``lr`` over
    ``lr``) and a ``name`` such as ``"body/decay"``, ``"classifier/no_decay"`` or, with layer
    decay, ``"stages.3.1/decay"``. PyTorch's LR schedulers scale each group's own ``lr``.

    Args:
        model: a :class:`~mnaszoo.models.mnasnet.MnasNet` or
            :class:`~mnaszoo.models.mnasnet.MnasNetFeatures` (not a ``DistributedDataParallel``
            wrapper: pass its ``.module``).
        lr: base learning rate, > 0.
        weight_decay: >= 0, for the weights that get it.
        head_lr_mult: classifier learning-rate multiplier, > 0.
        layer_decay: ``None`` (off) or a factor in ``(0, 1]``.

    Returns:
        The groups, shallow to deep, without empty ones.

    Raises:
        InvalidArgumentError: a value is out of range, or no parameter is trainable.
        ArgumentTypeError: a value has the wrong type.

    Example:
        >>> import torch, mnaszoo
        >>> from mnaszoo.tasks.finetune import param_groups
        >>> model = mnaszoo.create("mnasnet_small", num_classes=10)
        >>> groups = param_groups(model, lr=1e-3, weight_decay=0.05, head_lr_mult=10.0)
        >>> for group in groups:
        ...     print(group["name"], group["lr"], group["weight_decay"])
        body/decay 0.001 0.05
        body/no_decay 0.001 0.0
        classifier/decay 0.01 0.05
        classifier/no_decay 0.01 0.0
        >>> optimizer = torch.optim.AdamW(groups)
    """
    checked = _check_model(model, "param_groups")
    base_lr = check_float("lr", lr, minimum=0.0, min_inclusive=False)
    decay = check_float("weight_decay", weight_decay, minimum=0.0)
    head_mult = check_float("head_lr_mult", head_lr_mult, minimum=0.0, min_inclusive=False)
    if layer_decay is not None:
        layer_decay = check_float(
            "layer_decay", layer_decay, minimum=0.0, maximum=1.0, min_inclusive=False
        )
    depths, max_depth = _depths(checked)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, parameter in checked.named_parameters():
        if not parameter.requires_grad:
            continue
        prefix = next((p for p in depths if name.startswith(p)), None)
        depth, part = depths[prefix] if prefix is not None else (max_depth, "body")
        is_classifier = part == "classifier"
        scale = head_mult if is_classifier else 1.0
        if layer_decay is not None:
            scale *= layer_decay ** (max_depth - depth)
            label, order = part, depth
        else:
            label, order = ("classifier", 1) if is_classifier else ("body", 0)
        decayed = parameter.ndim > 1
        key = (order, not decayed)
        if key not in groups:
            groups[key] = {
                "name": f"{label}/{'decay' if decayed else 'no_decay'}",
                "params": [],
                "lr": base_lr * scale,
                "weight_decay": decay if decayed else 0.0,
                "lr_scale": scale,
            }
        groups[key]["params"].append(parameter)
    if not groups:
        raise InvalidArgumentError(
            "The model has no trainable parameters (everything is frozen); call"
            " mnaszoo.tasks.finetune.unfreeze(model) or freeze fewer stages."
        )
    return [groups[key] for key in sorted(groups)]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts, e.g. to log what :func:`freeze` left trainable.

    Args:
        model: any module.

    Returns:
        The number of elements in parameters that require gradients, and in all parameters.

    Raises:
        ArgumentTypeError: ``model`` is not a torch module.

    Example:
        >>> import mnaszoo
        >>> from mnaszoo.tasks.finetune import count_parameters, freeze
        >>> model = mnaszoo.create("mnasnet_small", num_classes=10)
        >>> freeze(model, "head")
        >>> count_parameters(model)
        (12810, 762074)
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(
            f"count_parameters takes a torch module, got {type(model).__name__}."
        )
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
