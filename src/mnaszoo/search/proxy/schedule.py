"""The one-cycle learning-rate schedule of proxy training and ``finalize``, defined for every
number of steps.

The schedule is torch's ``OneCycleLR`` (linear in name only: a cosine warm-up from
``max_lr / 25`` to ``max_lr`` over the first ``pct_start`` of the steps, then a cosine decay to
``max_lr / 25e4``, with AdamW's beta1 or SGD's momentum cycled between 0.95 and 0.85 the other
way round), computed with the same arithmetic so that the values are identical wherever torch's
is defined. Torch's divides by the length of the warm-up, which is zero when
``pct_start * total_steps == 1`` (a search on 64 images or fewer at the default settings): here a
phase of no length is simply complete, so the first step runs at ``max_lr``.

:func:`planned_steps` is the one place the number of steps of a training run is counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["OneCycle", "cycle_position", "planned_steps"]

DIV_FACTOR = 25.0
FINAL_DIV_FACTOR = 1e4
MAX_MOMENTUM = 0.95
BASE_MOMENTUM = 0.85


def planned_steps(num_images: int, batch_size: int, epochs: int) -> int:
    """The schedule's length for ``epochs`` passes over ``num_images`` in batches of ``batch_size``.

    One step per batch, counting a last batch of one image that training skips (BatchNorm cannot
    train on it), plus one: the schedule reaches its floor one step after the last update. So a
    run never steps past the end, whatever the sizes.
    """
    if num_images < 1 or batch_size < 1 or epochs < 1:
        raise ValueError(
            f"planned_steps needs positive sizes, got {num_images} images, batch {batch_size},"
            f" {epochs} epochs"
        )
    return epochs * math.ceil(num_images / batch_size) + 1


def cycle_position(step: int, total_steps: int, pct_start: float) -> tuple[int, float]:
    """``(phase, fraction)`` of ``step``: phase 0 is the warm-up, 1 the decay; fraction in [0, 1].

    The phase boundaries are torch's (the warm-up ends at step ``pct_start * total_steps - 1``,
    the decay at ``total_steps - 1``); a phase of no length counts as complete (fraction 1).
    """
    ends = (float(pct_start * total_steps) - 1, float(total_steps - 1))
    start = 0.0
    for phase, end in enumerate(ends):
        if step <= end or phase == len(ends) - 1:
            span = end - start
            return phase, ((step - start) / span if span > 0 else 1.0)
        start = end
    raise AssertionError("unreachable")  # pragma: no cover


def _anneal(start: float, end: float, fraction: float) -> float:
    # torch's _annealing_cos, term for term, so that the values agree to the last bit.
    cos_out = math.cos(math.pi * fraction) + 1
    return end + (start - end) / 2.0 * cos_out


class OneCycle:
    """One-cycle learning rate and momentum for ``optimizer`` (see the module notes).

    Args:
        optimizer: an optimizer with ``betas`` (Adam family) or ``momentum`` (SGD).
        max_lr: the peak learning rate, one for all parameter groups or one per group.
        total_steps: the schedule's length (:func:`planned_steps`), >= 1.
        pct_start: the warm-up's share of the steps, in (0, 1).
    """

    _PHASES = (
        ("initial_lr", "max_lr", "max_momentum", "base_momentum"),
        ("max_lr", "min_lr", "base_momentum", "max_momentum"),
    )

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        max_lr: float | Sequence[float],
        total_steps: int,
        pct_start: float,
    ) -> None:
        if total_steps < 1 or not 0.0 < pct_start < 1.0:
            raise ValueError(
                f"OneCycle needs total_steps >= 1 and pct_start in (0, 1), got {total_steps}"
                f" and {pct_start}"
            )
        groups = optimizer.param_groups
        peaks = [float(max_lr)] * len(groups) if isinstance(max_lr, (int, float)) else max_lr
        if len(peaks) != len(groups):
            raise ValueError(f"max_lr has {len(peaks)} values for {len(groups)} groups")
        self.optimizer = optimizer
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.use_beta1 = "betas" in optimizer.defaults
        for peak, group in zip(peaks, groups, strict=True):
            group["initial_lr"] = peak / DIV_FACTOR
            group["max_lr"] = peak
            group["min_lr"] = group["initial_lr"] / FINAL_DIV_FACTOR
            group["max_momentum"] = MAX_MOMENTUM
            group["base_momentum"] = BASE_MOMENTUM
        self.last_step = 0
        self._apply()

    def _apply(self) -> None:
        phase, fraction = cycle_position(self.last_step, self.total_steps, self.pct_start)
        lr_from, lr_to, momentum_from, momentum_to = self._PHASES[phase]
        for group in self.optimizer.param_groups:
            group["lr"] = _anneal(group[lr_from], group[lr_to], fraction)
            momentum = _anneal(group[momentum_from], group[momentum_to], fraction)
            if self.use_beta1:
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum

    def step(self) -> None:
        """Advance one step (after ``optimizer.step()``)."""
        if self.last_step + 1 >= self.total_steps:  # its last step is total_steps - 1
            raise ValueError(
                f"OneCycle stepped {self.last_step + 1} times, past the end of its"
                f" {self.total_steps} steps"
            )
        self.last_step += 1
        self._apply()

    def lrs(self) -> list[Any]:
        """The current learning rate of every parameter group."""
        return [group["lr"] for group in self.optimizer.param_groups]
