"""Batched augmentation (mnaszoo.tasks.training.augment): the crop, the plain-torch RandAugment
against PIL's ImageEnhance and ImageOps, the kornia backend, and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from mnaszoo.errors import InvalidArgumentError
from mnaszoo.tasks.training import augment
from mnaszoo.tasks.training.augment import RandAugment, kornia_available, random_resized_crop


def photo(n: int = 4, size: int = 24, seed: int = 0) -> torch.Tensor:
    # Whole grey levels, so that PIL (8-bit) sees the same image.
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=generator).float() / 255


def to_pil(image: torch.Tensor) -> Image.Image:
    array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array)


def from_pil(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


def test_full_crop_without_flip_is_the_identity() -> None:
    images = photo()
    out = random_resized_crop(
        images, torch.Generator().manual_seed(1), scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=False
    )
    assert torch.allclose(out, images, atol=1e-5)


def test_full_crop_flips_exactly_left_right() -> None:
    images = photo(n=64)
    out = random_resized_crop(
        images, torch.Generator().manual_seed(2), scale=(1.0, 1.0), ratio=(1.0, 1.0)
    )
    flipped = [
        bool(torch.allclose(o, i.flip(-1), atol=1e-5)) for o, i in zip(out, images, strict=False)
    ]
    kept = [bool(torch.allclose(o, i, atol=1e-5)) for o, i in zip(out, images, strict=False)]
    assert all(f or k for f, k in zip(flipped, kept, strict=False))
    assert 16 < sum(flipped) < 48  # about half


def test_small_crops_zoom_in() -> None:
    # A left-to-right ramp: a crop of a quarter of the area spans about half the ramp.
    ramp = torch.linspace(0, 1, 64).expand(8, 3, 64, 64).contiguous()
    out = random_resized_crop(
        ramp, torch.Generator().manual_seed(0), scale=(0.25, 0.25), ratio=(1.0, 1.0), hflip=False
    )
    spans = out[:, 0, 32, -1] - out[:, 0, 32, 0]
    assert torch.allclose(spans, torch.full((8,), 0.5), atol=0.03)


def test_same_generator_state_same_augmentation() -> None:
    images = photo()
    policy = RandAugment(2, 9.0, backend="torch")
    first = policy(random_resized_crop(images, g := torch.Generator().manual_seed(5)), g)
    second = policy(random_resized_crop(images, h := torch.Generator().manual_seed(5)), h)
    assert torch.equal(first, second)
    third = policy(images, torch.Generator().manual_seed(6))
    assert not torch.equal(policy(images, torch.Generator().manual_seed(5)), third)


@pytest.mark.parametrize(
    ("op", "enhancer"),
    [("brightness", ImageEnhance.Brightness), ("saturation", ImageEnhance.Color)],
)
def test_colour_ops_match_pil(op: str, enhancer: type[ImageEnhance._Enhance]) -> None:
    images = photo(n=6)
    m = 0.6
    out = augment._apply(op, images, m, torch.Generator().manual_seed(3))
    for image, result in zip(images, out, strict=False):
        # The sign of the change is random: one of the two PIL factors must match.
        errors = [
            (from_pil(enhancer(to_pil(image)).enhance(factor)) - result).abs().max()
            for factor in (1 + 0.9 * m, 1 - 0.9 * m)
        ]
        assert min(errors) <= 2.5 / 255


def test_solarize_posterize_autocontrast_match_pil_ops() -> None:
    images = photo(n=3)
    image = to_pil(images[0])
    solarized = augment._apply("solarize", images, 0.5, torch.Generator())
    assert (solarized[0] - from_pil(ImageOps.solarize(image, 128))).abs().max() <= 1.5 / 255
    posterized = augment._apply("posterize", images, 1.0, torch.Generator())
    assert torch.allclose(posterized[0], from_pil(ImageOps.posterize(image, 4)), atol=1e-6)
    low_contrast = images * 0.5 + 0.25
    stretched = augment._apply("autocontrast", low_contrast, 1.0, torch.Generator())
    reference = from_pil(ImageOps.autocontrast(to_pil(low_contrast[0])))
    assert (stretched[0] - reference).abs().max() <= 1.5 / 255


def test_rotation_by_magnitude_keeps_the_centre() -> None:
    images = photo(n=4, size=33)
    out = augment._apply("rotate", images, 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, :, 16, 16], images[:, :, 16, 16], atol=1e-5)
    assert not torch.allclose(out, images)
    # Corners rotated in from outside the image are mid grey.
    assert torch.allclose(out[:, :, 0, 0], torch.full((4, 3), 0.5), atol=0.05)


def test_policy_keeps_range_shape_and_empty_batches() -> None:
    policy = RandAugment(3, 10.0, backend="torch")
    out = policy(photo(n=32), torch.Generator().manual_seed(0))
    assert out.shape == (32, 3, 24, 24) and out.min() >= 0 and out.max() <= 1
    assert policy(torch.zeros(0, 3, 8, 8), torch.Generator()).shape == (0, 3, 8, 8)
    assert random_resized_crop(torch.zeros(0, 3, 8, 8), torch.Generator()).shape[0] == 0


def test_rejects_bad_settings() -> None:
    with pytest.raises(InvalidArgumentError):
        RandAugment(0, 5.0)
    with pytest.raises(InvalidArgumentError):
        RandAugment(2, 11.0)
    with pytest.raises(InvalidArgumentError):
        RandAugment(2, 5.0, backend="albumentations")


def test_kornia_refused_clearly_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(augment, "kornia_available", lambda: False)
    with pytest.raises(InvalidArgumentError, match=r"mnaszoo\[train\]"):
        RandAugment(2, 5.0, backend="kornia")
    assert RandAugment(2, 5.0, backend="auto").backend == "torch"


@pytest.mark.skipif(not kornia_available(), reason="kornia is not installed")
def test_kornia_backend_is_seeded_by_the_run_generator() -> None:
    policy = RandAugment(2, 9.0, backend="kornia")
    assert policy.backend == "kornia"
    images = photo(n=8)
    before = torch.get_rng_state()
    first = policy(images, torch.Generator().manual_seed(7))
    # The global generator is untouched: dropout streams do not depend on the backend.
    assert torch.equal(before, torch.get_rng_state())
    second = policy(images, torch.Generator().manual_seed(7))
    assert torch.equal(first, second)
    assert first.shape == images.shape and first.min() >= 0 and first.max() <= 1
