"""``mnaszoo.optimize_for_inference``: a copy of a model folded and laid out for fast inference."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .._validate import check_bool
from ..errors import ArgumentTypeError, MnaszooError
from ..models.layers import ConvBnAct
from ..models.mnasnet import MnasNet, MnasNetFeatures

__all__ = [
    "InferenceMnasNet",
    "InferenceMnasNetFeatures",
    "InferenceOnlyError",
    "is_inference_optimized",
    "optimize_for_inference",
]


class InferenceOnlyError(MnaszooError, RuntimeError):
    """A model from :func:`optimize_for_inference` was put in training mode."""


_REFUSAL = (
    "This model was made by mnaszoo.optimize_for_inference: its BatchNorm layers are folded into"
    " the convolutions, so it cannot be trained. Train (or fine-tune) the original model and call"
    " optimize_for_inference again."
)


class _InferenceOnly(nn.Module):
    """Mixin: ``train(True)`` raises; ``eval()`` (``train(False)``) is allowed."""

    _mnaszoo_inference_only = True

    def train(self, mode: bool = True) -> _InferenceOnly:
        if mode:
            raise InferenceOnlyError(_REFUSAL)
        super().train(False)
        return self


class InferenceMnasNet(_InferenceOnly, MnasNet):
    """A :class:`~mnaszoo.models.mnasnet.MnasNet` made by :func:`optimize_for_inference`."""


class InferenceMnasNetFeatures(_InferenceOnly, MnasNetFeatures):
    """A :class:`~mnaszoo.models.mnasnet.MnasNetFeatures` made by :func:`optimize_for_inference`."""


_INFERENCE_CLASSES: dict[type[nn.Module], type[nn.Module]] = {
    MnasNet: InferenceMnasNet,
    MnasNetFeatures: InferenceMnasNetFeatures,
}


def _refuse_training_forward(module: nn.Module, args: object) -> None:
    """Forward pre-hook for modules of other classes: refuse to run in training mode."""
    if module.training:
        raise InferenceOnlyError(_REFUSAL)


def _mark_inference_only(model: nn.Module) -> None:
    """MnasNet models get a static inference-only class (``train()`` raises at once); other
    modules (single blocks, say) keep their class and refuse a forward pass in training mode."""
    cls = _INFERENCE_CLASSES.get(type(model))
    if cls is not None:
        model.__class__ = cls
    elif not is_inference_optimized(model):
        model.register_forward_pre_hook(_refuse_training_forward)
        model._mnaszoo_inference_only = True  # type: ignore[assignment]


def is_inference_optimized(model: nn.Module) -> bool:
    """Whether ``model`` (or the module a ``torch.compile`` wrapper holds) is inference-only."""
    inner = getattr(model, "_orig_mod", model)
    return bool(getattr(inner, "_mnaszoo_inference_only", False))


def _fuse(model: nn.Module) -> int:
    fused = 0
    for module in model.modules():
        if isinstance(module, ConvBnAct) and isinstance(module.bn, nn.BatchNorm2d):
            # ConvBnAct is a Sequential: assigning the attributes keeps the conv -> bn -> act order.
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.add_module("bn", nn.Identity())  # replaces it in place
            fused += 1
    return fused


def optimize_for_inference(
    model: nn.Module,
    *,
    channels_last: bool = True,
    fuse_bn: bool = True,
    compile: bool = False,
) -> nn.Module:
    """A new, inference-only copy of ``model``: BatchNorm folded, ``channels_last``, compiled.

    The original model is left untouched. The copy is in eval mode and:

    - ``fuse_bn``: every BatchNorm of a :class:`~mnaszoo.models.layers.ConvBnAct` (stem, blocks,
      head) is folded into its convolution, which gains a bias; the BatchNorm becomes
      ``nn.Identity``.
      Outputs equal the original's up to float rounding (the tests allow 1e-4 of the logit
      scale). The copy still scripts with TorchScript and exports with ``torch.export`` and ONNX
      (see :func:`mnaszoo.export`).
    - ``channels_last``: parameters use the ``channels_last`` memory format (NHWC), which
      PyTorch's CPU and GPU convolution kernels prefer; feed ``channels_last`` inputs
      (``x.to(memory_format=torch.channels_last)``) to avoid a conversion.
    - ``compile``: wrap the copy with ``torch.compile`` (the first call compiles; needs a working
      compiler toolchain).

    The copy is inference-only: for a MnasNet (an :class:`InferenceMnasNet`) ``train()``
    (``train(True)``) raises :class:`InferenceOnlyError`, and ``eval()`` is allowed; any other
    module refuses a forward pass in training mode. Its state dict lacks the BatchNorm keys, so it
    is not a checkpoint in mnaszoo's format: save (and fine-tune) the original model.

    Args:
        model: a :class:`~mnaszoo.models.mnasnet.MnasNet`,
            :class:`~mnaszoo.models.mnasnet.MnasNetFeatures`, or
            any module built from mnaszoo's layers.
        channels_last: convert the parameters to ``torch.channels_last``.
        fuse_bn: fold BatchNorm into the preceding convolution.
        compile: return ``torch.compile(copy)``.

    Returns:
        The optimised copy, in eval mode.

    Raises:
        ArgumentTypeError: ``model`` is not a torch module, or a flag is not a bool.

    Example:
        >>> import torch, mnaszoo
        >>> model = mnaszoo.create("mnasnet_small").eval()
        >>> fast = mnaszoo.optimize_for_inference(model)
        >>> type(fast.stem.bn).__name__, fast.stem.conv.bias is not None
        ('Identity', True)
        >>> x = torch.randn(1, 3, 96, 96)
        >>> torch.allclose(fast(x), model(x), atol=1e-4)
        True
        >>> fast.train()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        mnaszoo.deploy.optimize.InferenceOnlyError: This model was made by ...
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be a torch module, got {type(model).__name__}.")
    for flag, value in (
        ("channels_last", channels_last),
        ("fuse_bn", fuse_bn),
        ("compile", compile),
    ):
        check_bool(flag, value)
    optimized = copy.deepcopy(getattr(model, "_orig_mod", model))
    optimized.eval()
    with torch.no_grad():
        if fuse_bn:
            _fuse(optimized)
        if channels_last:
            # nn.Module.to accepts memory_format; torch's stubs omit it.
            optimized = optimized.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    _mark_inference_only(optimized)
    if compile:
        compiled: Any = torch.compile(optimized)
        result: nn.Module = compiled
        return result
    return optimized
