"""Calibration images for post-training quantization, checked once for every int8 path
(:func:`mnaszoo.quantize_int8` for onnxruntime, ``format="executorch-int8"`` for ExecuTorch)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["MIN_CALIBRATION_IMAGES", "calibration_batches"]

_CHUNK = 16  # images per calibration call: bounds the calibrator's memory
MIN_CALIBRATION_IMAGES = 16
"""Fewer calibration images than this are refused: activation ranges from a handful of images
clip the others (an empty set gave a model whose logits were constant)."""


def calibration_batches(calibration: object) -> list[torch.Tensor]:
    """The calibration images as CPU float32 batches of at most 16 images, checked.

    Accepts an NCHW (or CHW) float tensor, or an iterable of them or of ``(images, labels)``
    batches (a DataLoader).

    Raises:
        ArgumentTypeError: not tensors, or not float tensors.
        InvalidArgumentError: fewer than :data:`MIN_CALIBRATION_IMAGES` images, not NCHW, NaN
            or infinite values, or mixed shapes.
    """
    if isinstance(calibration, torch.Tensor):
        items: list[object] = [calibration]
    elif isinstance(calibration, Iterable) and not isinstance(calibration, (str, bytes)):
        items = list(calibration)
    else:
        raise ArgumentTypeError(
            "calibration must be an NCHW float tensor of preprocessed images or an iterable of"
            f" them, got {type(calibration).__name__}; build it with mnaszoo.make_transform."
        )
    batches: list[torch.Tensor] = []
    for index, item in enumerate(items):
        # A (batch, labels) pair from a DataLoader: keep the images.
        if isinstance(item, (tuple, list)) and item and isinstance(item[0], torch.Tensor):
            item = item[0]
        if not isinstance(item, torch.Tensor) or not item.is_floating_point():
            raise ArgumentTypeError(
                f"calibration item {index} must be a float tensor, got {type(item).__name__}."
            )
        if item.ndim == 3:
            item = item.unsqueeze(0)
        if item.ndim != 4:
            raise InvalidArgumentError(
                f"calibration item {index} must be NCHW (or CHW), got shape {tuple(item.shape)}."
            )
        if not torch.isfinite(item).all():
            raise InvalidArgumentError(f"calibration item {index} holds NaN or infinite values.")
        batches.extend(torch.split(item.detach().to("cpu", torch.float32), _CHUNK))
    # A tensor of zero images splits into one empty batch: it is as empty as no batch at all.
    batches = [b for b in batches if len(b)]
    shapes = {tuple(b.shape[1:]) for b in batches}
    if len(shapes) > 1:
        raise InvalidArgumentError(
            f"calibration images must share one shape, got {sorted(shapes)}; use one transform."
        )
    count = sum(len(b) for b in batches)
    if count < MIN_CALIBRATION_IMAGES:
        what = "is empty" if count == 0 else f"has only {count} image(s)"
        raise InvalidArgumentError(
            f"calibration {what}; at least {MIN_CALIBRATION_IMAGES} are needed (a few hundred"
            " preprocessed images from your data are best)."
        )
    return batches
