"""The MnasNet reward ACC x (LAT / T) ** w against hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError
from mnaszoo.search.reward import Reward


def test_soft_reward_under_at_and_over_target() -> None:
    reward = Reward.soft(80.0)
    assert (reward.alpha, reward.beta) == (-0.07, -0.07)
    # 0.75 x 0.5 ** -0.07 = 0.75 x 2 ** 0.07 = 0.75 x 1.049717 = 0.787288
    assert reward(0.75, 40.0) == pytest.approx(0.7872875, abs=1e-6)
    assert reward(0.75, 80.0) == 0.75
    # 0.75 x 2 ** -0.07 = 0.75 x 0.952638 = 0.714478
    assert reward(0.75, 160.0) == pytest.approx(0.7144785, abs=1e-6)
    # 0.6 x 1.2 ** -0.07 = 0.6 x 0.987319 = 0.592391
    assert reward(0.6, 96.0) == pytest.approx(0.5923912, abs=1e-6)


def test_hard_reward_under_at_and_over_target() -> None:
    reward = Reward.hard(100.0)
    assert (reward.alpha, reward.beta) == (0.0, -1.0)
    assert reward(0.6, 50.0) == 0.6  # no bonus for being faster
    assert reward(0.6, 100.0) == 0.6
    assert reward(0.6, 120.0) == pytest.approx(0.5)  # 0.6 x 100 / 120
    assert reward(0.6, 200.0) == pytest.approx(0.3)


def test_custom_exponents_and_round_trip() -> None:
    reward = Reward(50.0, alpha=-0.5, beta=-2.0)
    assert reward(0.8, 12.5) == pytest.approx(0.8 * 0.25**-0.5)  # 1.6
    assert reward(0.8, 100.0) == pytest.approx(0.8 * 2.0**-2.0)  # 0.2
    assert Reward.from_dict(reward.to_dict()) == reward
    assert reward(0.0, 100.0) == 0.0


@pytest.mark.parametrize(
    ("accuracy", "latency", "error", "message"),
    [
        (75.0, 80.0, InvalidArgumentError, "accuracy must be <= 1.0"),
        (-0.1, 80.0, InvalidArgumentError, "accuracy must be >= 0.0"),
        (math.nan, 80.0, InvalidArgumentError, "accuracy must be a finite"),
        (0.5, 0.0, InvalidArgumentError, "latency_ms must be > 0.0"),
        (0.5, -3.0, InvalidArgumentError, "latency_ms must be > 0.0"),
        (0.5, math.inf, InvalidArgumentError, "latency_ms must be a finite"),
        ("0.5", 80.0, ArgumentTypeError, "accuracy must be a number"),
        (0.5, True, ArgumentTypeError, "latency_ms must be a number"),
    ],
)
def test_invalid_inputs(
    accuracy: object, latency: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Reward.soft(80.0)(accuracy, latency)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0, -0.07, -0.07), "target_ms must be > 0.0"),
        ((math.inf, -0.07, -0.07), "target_ms must be a finite"),
        ((80.0, 0.5, -0.07), "alpha must be <= 0.0"),
        ((80.0, 0.0, 1.0), "beta must be <= 0.0"),
    ],
)
def test_invalid_reward_settings(args: tuple[float, float, float], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        Reward(*args)
    with pytest.raises(InvalidArgumentError, match="keys"):
        Reward.from_dict({"target_ms": 1.0})
