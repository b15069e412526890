"""The learning-rate schedule: linear warmup, then a half cosine down to a floor.

Defined per optimizer step for every run length, by construction: the warmup is clipped to
leave at least one cosine step, and no division has a denominator below 1, so one epoch of
one step is as valid as ten thousand.
"""

from __future__ import annotations

import math

from ..._validate import check_float, check_int

__all__ = ["Schedule", "epoch_steps", "warmup_steps"]


def epoch_steps(num_images: int, batch_size: int, world_size: int = 1) -> tuple[int, int]:
    """``(batch size, steps)`` of one epoch of each process.

    Each process gets ``share = ceil(num_images / world_size)`` images (``DistributedSampler``
    pads by repeating a few). From two batches up, every step takes a full batch and the
    remainder (fewer than ``batch_size`` images, a different few each epoch) waits for the
    next epoch: a last batch of one image would give BatchNorm a batch of one. Below two
    batches, the epoch is one step over the whole share.

    Raises:
        InvalidArgumentError: a count is below 1.
    """
    check_int("num_images", num_images, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_int("world_size", world_size, minimum=1)
    share = math.ceil(num_images / world_size)
    if share >= 2 * batch_size:
        return batch_size, share // batch_size
    return share, 1


def warmup_steps(warmup_epochs: float, steps_per_epoch: int, total_steps: int) -> int:
    """The warmup length in steps: ``round(warmup_epochs * steps_per_epoch)``, at most
    ``total_steps - 1`` (so the peak rate is reached) and at least 0."""
    check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    check_int("total_steps", total_steps, minimum=1)
    check_float("warmup_epochs", warmup_epochs, minimum=0.0)
    return max(0, min(round(warmup_epochs * steps_per_epoch), total_steps - 1))


class Schedule:
    """The learning-rate multiplier of each step, in ``(0, 1]``.

    Step ``s`` (from 0) of ``total_steps`` gets ``(s + 1) / (warmup + 1)`` during the warmup
    (PyTorch's ``LinearLR`` with ``start_factor = 1 / (warmup + 1)``), then
    ``min_ratio + (1 - min_ratio) * (1 + cos(pi * t)) / 2`` with ``t = (s - warmup) /
    (total_steps - warmup)`` (``CosineAnnealingLR``'s closed form): the first step after the
    warmup runs at the peak rate.

    Args:
        total_steps: optimizer steps in the whole run, >= 1.
        warmup: warmup steps, ``0 <= warmup < total_steps``.
        min_ratio: the floor, in ``[0, 1]``.

    Example:
        >>> schedule = Schedule(total_steps=6, warmup=2, min_ratio=0.0)
        >>> [round(schedule(s), 3) for s in range(6)]
        [0.333, 0.667, 1.0, 0.854, 0.5, 0.146]
    """

    def __init__(self, total_steps: int, warmup: int, min_ratio: float) -> None:
        self.total_steps = check_int("total_steps", total_steps, minimum=1)
        self.warmup = check_int("warmup", warmup, minimum=0, maximum=total_steps - 1)
        self.min_ratio = check_float("min_ratio", min_ratio, minimum=0.0, maximum=1.0)

    def __call__(self, step: int) -> float:
        """The multiplier of step ``step``; steps past the end keep the floor's value."""
        step = max(0, step)
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = min(1.0, (step - self.warmup) / (self.total_steps - self.warmup))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
