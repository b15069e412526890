"""Batched training augmentation on ``[0, 1]`` image tensors, drawn from an explicit generator.

Every random number comes from the ``torch.Generator`` passed in, so a run's augmentation is
fixed by its seed and the generator's state (saved in every checkpoint, for exact resumes).

* :func:`random_resized_crop`: a random crop of ``crop_scale`` of the area (aspect ratio 3/4 to
  4/3) resized back to the full size, and an optional left-right flip, as one affine resampling.
* :class:`RandAugment`: ``num_ops`` operations per image, each drawn from the policy below, at
  ``magnitude`` on timm's 0-10 scale. Two backends: ``"torch"`` (this module, always available)
  and ``"kornia"`` (``kornia.augmentation.auto.RandAugment``, with ``mnaszoo[train]``; it draws
  one set of operations per batch, the plain-torch policy one per image), seeded from the same
  generator.

The plain-torch policy: identity, brightness, contrast, saturation, solarize, posterize,
autocontrast, rotate (up to 30 degrees at magnitude 10), shear x / y (up to 0.3), translate x / y
(up to 45% of the side). Pixels moved in from outside the image are mid grey, as in timm.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from ..._validate import check_choice, check_float, check_int
from ...errors import InvalidArgumentError

__all__ = ["AUGMENT_BACKENDS", "RandAugment", "kornia_available", "random_resized_crop"]

AUGMENT_BACKENDS = ("auto", "torch", "kornia")
"""``auto`` takes kornia when it is installed, else the plain-torch policy."""

_FILL = 0.5  # mid grey for pixels moved in from outside (timm's fill of 128)
_OPS = (
    "identity",
    "brightness",
    "contrast",
    "saturation",
    "solarize",
    "posterize",
    "autocontrast",
    "rotate",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)


def kornia_available() -> bool:
    """Whether ``kornia`` can be imported (the ``mnaszoo[train]`` extra)."""
    try:
        importlib.import_module("kornia.augmentation")
    except ImportError:
        return False
    return True


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _affine(batch: torch.Tensor, theta: torch.Tensor, fill: float) -> torch.Tensor:
    """Resample every image of ``batch`` with its own 2x3 matrix (output -> input coordinates,
    in the [-1, 1] frame); uncovered pixels get ``fill``."""
    grid = F.affine_grid(
        theta.to(batch.device, batch.dtype), list(batch.shape), align_corners=False
    )
    moved = F.grid_sample(
        batch - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return moved + fill


def random_resized_crop(
    batch: torch.Tensor,
    generator: torch.Generator,
    *,
    scale: tuple[float, float] = (0.35, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: bool = True,
) -> torch.Tensor:
    """Crop a random region of every image and resize it back to the full size (bilinear).

    Args:
        batch: ``(N, C, H, W)`` floats.
        generator: the source of every random number.
        scale: range of the crop's share of the image area, ``0 < low <= high <= 1``.
        ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.
        hflip: also flip half of the images left-right.

    Returns:
        A new batch of the same shape.
    """
    n = batch.shape[0]
    if n == 0:
        return batch
    area = _uniform(n, scale[0], scale[1], generator)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator)
    aspect = torch.exp(log_ratio)
    # Crop side lengths as fractions of the image sides, clipped to the image.
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = (1 - width) * (torch.rand(n, generator=generator) * 2 - 1)
    centre_y = (1 - height) * (torch.rand(n, generator=generator) * 2 - 1)
    flip = torch.ones(n)
    if hflip:
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    zero = torch.zeros(n)
    theta = torch.stack(
        [
            torch.stack([width * flip, zero, centre_x], dim=1),
            torch.stack([zero, height, centre_y], dim=1),
        ],
        dim=1,
    )
    return _affine(batch, theta, _FILL).clamp_(0.0, 1.0)


def _grey(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device)
    weights = weights.view(1, 3, 1, 1)
    if images.shape[1] != 3:
        return images.mean(dim=1, keepdim=True)
    return (images * weights).sum(dim=1, keepdim=True)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    factor = factor.to(images.device, images.dtype).view(-1, 1, 1, 1)
    return (other + factor * (images - other)).clamp(0.0, 1.0)


def _signed(level: float, n: int, generator: torch.Generator) -> torch.Tensor:
    sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    return level * sign


def _apply(op: str, images: torch.Tensor, m: float, generator: torch.Generator) -> torch.Tensor:
    """One operation at strength ``m`` in [0, 1] on a sub-batch."""
    n = images.shape[0]
    if op == "identity":
        return images
    if op in ("brightness", "contrast", "saturation"):
        factor = 1.0 + _signed(0.9 * m, n, generator)
        if op == "brightness":
            return _blend(images, torch.zeros_like(images), factor)
        if op == "contrast":
            mean = _grey(images).mean(dim=(1, 2, 3), keepdim=True).expand_as(images)
            return _blend(images, mean, factor)
        return _blend(images, _grey(images).expand_as(images), factor)
    if op == "solarize":
        threshold = 1.0 - m
        return torch.where(images >= threshold, 1.0 - images, images)
    if op == "posterize":
        bits = max(1, 8 - round(4 * m))
        step = float(2 ** (8 - bits))
        posterized: torch.Tensor = torch.floor(images * 255 / step) * step / 255
        return posterized
    if op == "autocontrast":
        low = images.amin(dim=(2, 3), keepdim=True)
        high = images.amax(dim=(2, 3), keepdim=True)
        span = high - low
        stretched = (images - low) / span.clamp(min=1e-6)
        return torch.where(span > 1e-6, stretched, images)
    zero, one = torch.zeros(n), torch.ones(n)
    if op == "rotate":
        angle = _signed(math.radians(30.0) * m, n, generator)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rows = (torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1))
    elif op == "shear_x":
        rows = (
            torch.stack([one, _signed(0.3 * m, n, generator), zero], 1),
            torch.stack([zero, one, zero], 1),
        )
    elif op == "shear_y":
        rows = (
            torch.stack([one, zero, zero], 1),
            torch.stack([_signed(0.3 * m, n, generator), one, zero], 1),
        )
    elif op == "translate_x":
        rows = (
            torch.stack([one, zero, _signed(0.9 * m, n, generator)], 1),
            torch.stack([zero, one, zero], 1),
        )
    else:  # translate_y (0.9 of the [-1, 1] frame: 45% of the side)
        rows = (
            torch.stack([one, zero, zero], 1),
            torch.stack([zero, one, _signed(0.9 * m, n, generator)], 1),
        )
    return _affine(images, torch.stack(rows, dim=1), _FILL).clamp(0.0, 1.0)


class RandAugment:
    """RandAugment (Cubuk et al., 2020) on batches: ``num_ops`` random operations per image.

    Args:
        num_ops: operations applied to each image, one after the other (>= 1).
        magnitude: their strength on timm's 0-10 scale.
        backend: ``"torch"``, ``"kornia"`` or ``"auto"`` (see :data:`AUGMENT_BACKENDS`).

    Raises:
        InvalidArgumentError: a value is out of range, or ``backend="kornia"`` without kornia.

    Example:
        >>> import torch
        >>> augment = RandAugment(2, 9.0, backend="torch")
        >>> out = augment(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0))
        >>> out.shape, bool(out.min() >= 0), bool(out.max() <= 1)
        (torch.Size([4, 3, 32, 32]), True, True)
    """

    def __init__(self, num_ops: int, magnitude: float, backend: str = "auto") -> None:
        self.num_ops = check_int("randaugment_ops", num_ops, minimum=1, maximum=len(_OPS))
        self.magnitude = check_float("randaugment_magnitude", magnitude, minimum=0.0, maximum=10.0)
        check_choice("augment_backend", backend, AUGMENT_BACKENDS)
        if backend == "kornia" and not kornia_available():
            raise InvalidArgumentError(
                "augment_backend='kornia' needs kornia: pip install 'mnaszoo[train]', or use"
                " the plain-torch policy (augment_backend='torch')."
            )
        self.backend = "kornia" if backend == "auto" and kornia_available() else backend
        if self.backend == "auto":
            self.backend = "torch"
        self._kornia: Any = None
        if self.backend == "kornia":
            auto = importlib.import_module("kornia.augmentation.auto")
            # kornia's magnitude lies strictly between 0 and 30; timm's 0-10 scale times 3.
            strength = min(29, max(1, round(3 * self.magnitude)))
            self._kornia = auto.RandAugment(n=self.num_ops, m=strength)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a ``(N, 3, H, W)`` batch of floats in [0, 1]."""
        if images.shape[0] == 0:
            return images
        if self._kornia is not None:
            # kornia draws from the global generator: seed a private copy of it from ours,
            # so that the run stays a function of its own generator and resumes exactly.
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                augmented: torch.Tensor = self._kornia(images)
                return augmented.clamp(0.0, 1.0)
        m = self.magnitude / 10.0
        out = images.clone()
        for _ in range(self.num_ops):
            choice = torch.randint(0, len(_OPS), (images.shape[0],), generator=generator)
            for index, op in enumerate(_OPS):
                chosen = torch.nonzero(choice == index).flatten().to(images.device)
                if len(chosen):
                    out[chosen] = _apply(op, out[chosen], m, generator)
        return out

    def __repr__(self) -> str:
        return (
            f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude},"
            f" backend={self.backend!r})"
        )
