"""The MnasNet multi-objective reward: accuracy traded against latency.

``reward = ACC(m) x (LAT(m) / T) ** w`` with ``w = alpha`` where ``LAT(m) <= T`` and ``w = beta``
otherwise (paper, Eq. 2). The paper's *soft* constraint uses ``alpha = beta = -0.07`` (about 5%
more accuracy is worth doubling the latency); the *hard* constraint uses ``alpha = 0, beta = -1``
(no reward for being faster than the target, a steep penalty for being slower).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._validate import check_float
from ..errors import InvalidArgumentError

__all__ = ["Reward"]

SOFT_EXPONENT = -0.07


@dataclass(frozen=True)
class Reward:
    """The MnasNet reward ``ACC x (LAT / T) ** w``.

    Args:
        target_ms: the target latency ``T`` in milliseconds (> 0).
        alpha: exponent where the latency meets the target (``LAT <= T``); at most 0.
        beta: exponent where it exceeds the target; at most 0.

    Raises:
        InvalidArgumentError: a value is not finite, ``target_ms <= 0`` or an exponent is > 0.
        ArgumentTypeError: a value is not a number.

    Example:
        >>> reward = Reward.soft(80.0)
        >>> round(reward(0.75, 80.0), 6), round(reward(0.75, 160.0), 4)
        (0.75, 0.7145)
        >>> Reward.hard(80.0)(0.75, 40.0)
        0.75
    """

    target_ms: float
    alpha: float
    beta: float

    def __post_init__(self) -> None:
        target = check_float("Reward.target_ms", self.target_ms, minimum=0.0, min_inclusive=False)
        alpha = check_float("Reward.alpha", self.alpha, maximum=0.0)
        beta = check_float("Reward.beta", self.beta, maximum=0.0)
        object.__setattr__(self, "target_ms", target)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "beta", beta)

    @classmethod
    def soft(cls, target_ms: float) -> Reward:
        """The paper's soft constraint: ``alpha = beta = -0.07``."""
        return cls(target_ms, SOFT_EXPONENT, SOFT_EXPONENT)

    @classmethod
    def hard(cls, target_ms: float) -> Reward:
        """The paper's hard constraint: ``alpha = 0``, ``beta = -1``."""
        return cls(target_ms, 0.0, -1.0)

    def __call__(self, accuracy: float, latency_ms: float) -> float:
        """Return the reward of a model with ``accuracy`` (in [0, 1]) and ``latency_ms`` (> 0).

        Raises:
            InvalidArgumentError: accuracy outside [0, 1] (pass a fraction, not a percentage) or
                latency not a finite positive number.
            ArgumentTypeError: a value is not a number.
        """
        acc = check_float("accuracy", accuracy, minimum=0.0, maximum=1.0)
        latency = check_float("latency_ms", latency_ms, minimum=0.0, min_inclusive=False)
        exponent = self.alpha if latency <= self.target_ms else self.beta
        value = float(acc * (latency / self.target_ms) ** exponent)
        if not math.isfinite(value):  # only reachable with extreme ratios; say so clearly
            raise InvalidArgumentError(
                f"Reward overflowed for latency_ms={latency!r} against"
                f" target_ms={self.target_ms!r}; use a latency and target of comparable scale."
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        """Return the reward's parameters as JSON-ready data."""
        return {"target_ms": self.target_ms, "alpha": self.alpha, "beta": self.beta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reward:
        """Rebuild a reward from :meth:`to_dict` data."""
        if set(data) != {"target_ms", "alpha", "beta"}:
            raise InvalidArgumentError(
                "Reward data must have the keys ['alpha', 'beta', 'target_ms'],"
                f" got {sorted(data)}."
            )
        return cls(data["target_ms"], data["alpha"], data["beta"])
