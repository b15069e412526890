"""Targets and losses (mnaszoo.tasks.training.losses) against PyTorch's own label smoothing and a
hand-written KL divergence; mixup and cutmix against their definitions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from mnaszoo.tasks.training.losses import (
    distillation_loss,
    mix_batch,
    smooth_targets,
    soft_cross_entropy,
)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_smoothed_targets_give_pytorchs_label_smoothing(smoothing: float) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 7, generator=generator)
    labels = torch.randint(0, 7, (16,), generator=generator)
    ours = soft_cross_entropy(logits, smooth_targets(labels, 7, smoothing))
    reference = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    assert torch.allclose(ours, reference, atol=1e-6)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(6, 3, 16, 16, generator=generator)
    targets = smooth_targets(torch.tensor([0, 1, 2, 0, 1, 2]), 3, 0.1)
    return images, targets


def test_mixup_blends_images_and_targets_with_one_lambda() -> None:
    images, targets = batch()
    mixed, mixed_targets, kind = mix_batch(
        images,
        targets,
        torch.Generator().manual_seed(0),
        mixup_alpha=1.0,
        cutmix_alpha=0.0,
        prob=1.0,
    )
    assert kind == "mixup"
    # Recover lambda from the first pixel, check it everywhere.
    lam = (mixed_targets[0, 0] - targets.flip(0)[0, 0]) / (targets[0, 0] - targets.flip(0)[0, 0])
    assert torch.allclose(mixed, lam * images + (1 - lam) * images.flip(0), atol=1e-6)
    assert torch.allclose(mixed_targets.sum(1), torch.ones(6))


def test_cutmix_lambda_is_the_share_of_pixels_kept() -> None:
    images, targets = batch()
    for seed in range(10):
        mixed, mixed_targets, kind = mix_batch(
            images,
            targets,
            torch.Generator().manual_seed(seed),
            mixup_alpha=0.0,
            cutmix_alpha=1.0,
            prob=1.0,
        )
        assert kind == "cutmix"
        pasted = (mixed[0] != images[0]).any(0).float().mean()
        kept = 1 - float(pasted)
        expected = kept * targets[0] + (1 - kept) * targets.flip(0)[0]
        assert torch.allclose(mixed_targets[0], expected, atol=1e-6)


def test_no_mixing_when_off_or_one_image() -> None:
    images, targets = batch()
    generator = torch.Generator().manual_seed(0)
    assert (
        mix_batch(images, targets, generator, mixup_alpha=0.8, cutmix_alpha=1.0, prob=0.0)[2]
        == "none"
    )
    assert (
        mix_batch(images[:1], targets[:1], generator, mixup_alpha=0.8, cutmix_alpha=0, prob=1)[2]
        == "none"
    )
    kinds = {
        mix_batch(
            images,
            targets,
            torch.Generator().manual_seed(s),
            mixup_alpha=0.8,
            cutmix_alpha=1.0,
            prob=1.0,
        )[2]
        for s in range(20)
    }
    assert kinds == {"mixup", "cutmix"}


def test_distillation_is_the_scaled_kl_divergence() -> None:
    generator = torch.Generator().manual_seed(2)
    student = torch.randn(5, 4, generator=generator)
    teacher = torch.randn(5, 4, generator=generator)
    t = 3.0
    p = torch.softmax(teacher / t, 1)
    q = torch.softmax(student / t, 1)
    reference = (p * (p.log() - q.log())).sum(1).mean() * t * t
    assert torch.allclose(distillation_loss(student, teacher, t), reference, atol=1e-6)
    assert float(distillation_loss(teacher, teacher, t)) == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(float(distillation_loss(student * 100, teacher, 0.5)))
