"""The warmup + cosine schedule and the epoch arithmetic (mnaszoo.tasks.training.schedule),
against PyTorch's own LinearLR and CosineAnnealingLR, at every size down to one step."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from mnaszoo.errors import InvalidArgumentError
from mnaszoo.tasks.training.schedule import Schedule, epoch_steps, warmup_steps


def torch_reference(total: int, warmup: int, min_ratio: float) -> list[float]:
    """The multipliers PyTorch's schedulers give: LinearLR warmup, then CosineAnnealingLR."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=total - warmup, eta_min=min_ratio
    )
    if warmup:
        # Built first, LinearLR would set the rate the cosine scheduler then takes as its base.
        optimizer = torch.optim.SGD([parameter], lr=1.0)
        linear = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=1 / (warmup + 1), end_factor=1.0, total_iters=warmup
        )
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=total - warmup, eta_min=min_ratio
        )
        optimizer.param_groups[0]["lr"] = 1 / (warmup + 1)
        scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.SequentialLR(
            optimizer, [linear, cosine], milestones=[warmup]
        )
    else:
        scheduler = cosine
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(1, 300),
    warmup_share=st.floats(0.0, 1.0),
    min_ratio=st.floats(0.0, 1.0),
)
def test_matches_pytorch_schedulers(total: int, warmup_share: float, min_ratio: float) -> None:
    warmup = min(int(warmup_share * total), total - 1)
    schedule = Schedule(total, warmup, min_ratio)
    ours = [schedule(step) for step in range(total)]
    assert ours == pytest.approx(torch_reference(total, warmup, min_ratio), rel=1e-6, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    images_per_class=st.integers(1, 50),
    classes=st.integers(2, 20),
    batch_size=st.integers(1, 256),
    world_size=st.integers(1, 8),
    epochs=st.integers(1, 100),
    warmup_epochs=st.floats(0.0, 200.0),
    min_ratio=st.floats(0.0, 1.0),
)
def test_every_run_length_has_a_valid_schedule(
    images_per_class: int,
    classes: int,
    batch_size: int,
    world_size: int,
    epochs: int,
    warmup_epochs: float,
    min_ratio: float,
) -> None:
    images = images_per_class * classes
    batch, steps = epoch_steps(images, batch_size, world_size)
    share = math.ceil(images / world_size)
    assert 1 <= batch <= max(batch_size, share) and steps >= 1
    assert batch * steps <= share  # every step is a full batch of real (or padded) images
    assert share - batch * steps < batch_size  # at most a partial batch waits
    if batch > batch_size:
        assert steps == 1 and batch < 2 * batch_size
    total = epochs * steps
    warmup = warmup_steps(warmup_epochs, steps, total)
    assert 0 <= warmup < total
    schedule = Schedule(total, warmup, min_ratio)
    factors = [schedule(step) for step in range(total)]
    assert all(math.isfinite(f) and 0.0 < f <= 1.0 for f in factors)
    assert all(f >= min_ratio - 1e-12 for f in factors[warmup:])
    assert factors[warmup] == 1.0  # the first step after the warmup runs at the peak
    assert factors[:warmup] == sorted(factors[:warmup])
    assert factors[warmup:] == sorted(factors[warmup:], reverse=True)


def test_smallest_run() -> None:
    assert epoch_steps(1, 1) == (1, 1)
    assert epoch_steps(2, 32) == (2, 1)
    assert warmup_steps(5.0, 1, 1) == 0
    assert Schedule(1, 0, 0.0)(0) == 1.0
    # Past the end the rate stays at the floor rather than rising again.
    assert Schedule(4, 1, 0.1)(100) == pytest.approx(0.1)


def test_epoch_steps_drop_only_a_partial_batch() -> None:
    assert epoch_steps(100, 32) == (32, 3)
    assert epoch_steps(63, 32) == (63, 1)  # under two batches: one step over everything
    assert epoch_steps(64, 32) == (32, 2)
    assert epoch_steps(10, 4, world_size=2) == (5, 1)


@pytest.mark.parametrize(
    ("total", "warmup", "min_ratio"), [(0, 0, 0.0), (3, 3, 0.0), (3, -1, 0.0), (3, 0, 1.5)]
)
def test_rejects_impossible_schedules(total: int, warmup: int, min_ratio: float) -> None:
    with pytest.raises(InvalidArgumentError):
        Schedule(total, warmup, min_ratio)
