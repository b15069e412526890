"""Targets and losses: label smoothing, mixup / cutmix, and distillation from a teacher.

Targets are class-probability rows: a smoothed one-hot vector, mixed between two images when a
batch is mixed. Every random draw comes from the run's generator (see :mod:`.augment`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

__all__ = ["distillation_loss", "mix_batch", "smooth_targets", "soft_cross_entropy"]


def smooth_targets(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot rows with ``smoothing`` spread uniformly over all classes (PyTorch's
    ``label_smoothing`` convention: the true class keeps ``1 - smoothing + smoothing / C``)."""
    one_hot = F.one_hot(labels, num_classes).float()
    return one_hot * (1.0 - smoothing) + smoothing / num_classes


def _beta(alpha: float, generator: torch.Generator) -> float:
    # torch's Beta sampler takes no generator; numpy's does, seeded from ours.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mix_batch(
    images: torch.Tensor,
    targets: torch.Tensor,
    generator: torch.Generator,
    *,
    mixup_alpha: float,
    cutmix_alpha: float,
    prob: float,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Mix a batch with its reverse (timm's "batch" mode), with mixup or cutmix.

    With probability ``prob`` the batch is mixed: by cutmix or mixup, half and half when both
    alphas are positive. Mixup blends whole images, ``lam * x + (1 - lam) * x.flip(0)``;
    cutmix pastes a box of area ``1 - lam`` from the reversed batch, and ``lam`` is then
    corrected to the box actually pasted (clipped at the border). Targets mix with the same
    ``lam``.

    Returns:
        ``(images, targets, kind)``, ``kind`` being ``"none"``, ``"mixup"`` or ``"cutmix"``.
    """
    use_mixup, use_cutmix = mixup_alpha > 0, cutmix_alpha > 0
    if images.shape[0] < 2 or prob <= 0 or not (use_mixup or use_cutmix):
        return images, targets, "none"
    if float(torch.rand(1, generator=generator)) >= prob:
        return images, targets, "none"
    if use_mixup and use_cutmix:
        cutmix = float(torch.rand(1, generator=generator)) < 0.5
    else:
        cutmix = use_cutmix
    lam = _beta(cutmix_alpha if cutmix else mixup_alpha, generator)
    reverse_images, reverse_targets = images.flip(0), targets.flip(0)
    if cutmix:
        height, width = images.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        box_h, box_w = int(height * cut), int(width * cut)
        cy = int(torch.randint(0, height, (1,), generator=generator))
        cx = int(torch.randint(0, width, (1,), generator=generator))
        top, bottom = max(cy - box_h // 2, 0), min(cy + box_h // 2, height)
        left, right = max(cx - box_w // 2, 0), min(cx + box_w // 2, width)
        mixed = images.clone()
        mixed[..., top:bottom, left:right] = reverse_images[..., top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / float(height * width)
        kind = "cutmix"
    else:
        mixed = images * lam + reverse_images * (1.0 - lam)
        kind = "mixup"
    return mixed, targets * lam + reverse_targets * (1.0 - lam), kind


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy against probability rows (``F.cross_entropy``'s soft targets)."""
    return F.cross_entropy(logits.float(), targets)


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Hinton et al.'s soft-target loss: ``T^2 * KL(teacher_T || student_T)``, batch mean."""
    t = temperature
    student = F.log_softmax(student_logits.float() / t, dim=1)
    teacher = F.log_softmax(teacher_logits.float() / t, dim=1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * (t * t)
