"""The one-cycle schedule of proxy training and finalize (mnaszoo.search.proxy.schedule):
identical to
torch's OneCycleLR wherever that one is defined, and defined for every dataset size, batch size
and epoch count (torch's divides by zero when the warm-up is one step long)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from mnaszoo.search.proxy.schedule import OneCycle, cycle_position, planned_steps

PCT = st.sampled_from([0.25, 0.1]) | st.floats(0.01, 0.99)


def _optimizer(kind: str = "adamw", groups: int = 1) -> torch.optim.Optimizer:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)]
    if kind == "sgd":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(params, lr=0.1)


def _values(optimizer: torch.optim.Optimizer) -> list[tuple[float, float]]:
    return [
        (float(g["lr"]), float(g["betas"][0] if "betas" in g else g["momentum"]))
        for g in optimizer.param_groups
    ]


@settings(max_examples=150, deadline=None)
@given(total=st.integers(1, 120), pct=PCT, kind=st.sampled_from(["adamw", "sgd"]))
def test_identical_to_torch_wherever_torch_is_defined(total: int, pct: float, kind: str) -> None:
    reference_optimizer = _optimizer(kind, groups=2)
    try:
        reference = torch.optim.lr_scheduler.OneCycleLR(
            reference_optimizer, max_lr=[0.01, 0.003], total_steps=total, pct_start=pct
        )
    except ZeroDivisionError:
        assert float(pct * total) - 1 == 0  # the only case torch cannot compute
        return
    ours_optimizer = _optimizer(kind, groups=2)
    ours = OneCycle(ours_optimizer, max_lr=[0.01, 0.003], total_steps=total, pct_start=pct)
    for _ in range(total - 1):
        assert _values(ours_optimizer) == _values(reference_optimizer)  # to the last bit
        reference_optimizer.step()
        reference.step()
        ours_optimizer.step()
        ours.step()
    assert _values(ours_optimizer) == _values(reference_optimizer)


@settings(max_examples=300, deadline=None)
@given(
    images=st.integers(1, 3000),
    batch=st.integers(2, 512),
    epochs=st.integers(1, 60),
    pct=PCT,
)
def test_every_size_gives_a_bounded_schedule(
    images: int, batch: int, epochs: int, pct: float
) -> None:
    total = planned_steps(images, batch, epochs)
    # Training takes at most one step per batch, a skipped one-image batch included.
    assert total == epochs * math.ceil(images / batch) + 1
    lr = 0.01
    floor = lr / 25 / 1e4
    for step in {0, 1, total // 2, total - 2, total - 1} - {-1}:
        phase, fraction = cycle_position(step, total, pct)
        assert phase in (0, 1) and 0.0 <= fraction <= 1.0
    optimizer = _optimizer()
    schedule = OneCycle(optimizer, max_lr=lr, total_steps=total, pct_start=pct)
    seen = [schedule.lrs()[0]]
    for _ in range(min(total - 1, 200)):
        schedule.step()
        seen.append(schedule.lrs()[0])
    assert all(math.isfinite(v) and floor * (1 - 1e-9) <= v <= lr * (1 + 1e-12) for v in seen)


@pytest.mark.parametrize(("images", "batch", "epochs", "pct"), [(64, 64, 3, 0.25), (9, 64, 9, 0.1)])
def test_a_one_step_warm_up_starts_at_the_peak(
    images: int, batch: int, epochs: int, pct: float
) -> None:
    """The sizes on which search (3 epochs, 64 images) and finalize (9 epochs) used to fail."""
    total = planned_steps(images, batch, epochs)
    with pytest.raises(ZeroDivisionError):
        torch.optim.lr_scheduler.OneCycleLR(
            _optimizer(), max_lr=0.01, total_steps=total, pct_start=pct
        )
    schedule = OneCycle(_optimizer(), max_lr=0.01, total_steps=total, pct_start=pct)
    assert schedule.lrs() == [0.01]
    for _ in range(total - 1):
        schedule.step()
    assert schedule.lrs()[0] == pytest.approx(0.01 / 25 / 1e4)
    with pytest.raises(ValueError, match="stepped"):
        schedule.step()


def test_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        planned_steps(0, 64, 3)
    with pytest.raises(ValueError, match="pct_start"):
        OneCycle(_optimizer(), max_lr=0.01, total_steps=5, pct_start=1.0)
