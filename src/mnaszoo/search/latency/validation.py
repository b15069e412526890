"""How well a latency predictor ranks and matches measurements: Spearman rank correlation, mean
absolute percentage error and the worst error on held-out networks."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..._validate import check_float
from ...errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["PredictorReport", "spearman_correlation", "validate_predictor"]


# --------------------------------------------------------------------------- validation


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n, ties sharing the mean of the ranks they span (as in scipy's rankdata)."""
    order = torch.argsort(values, stable=True)
    ordered = values[order]
    ranks = torch.empty_like(values)
    n = values.numel()
    start = 0
    while start < n:
        end = start
        while end + 1 < n and ordered[end + 1] == ordered[start]:
            end += 1
        # Positions start..end (0-based) hold equal values: each gets the mean 1-based rank.
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: the Pearson correlation of the (tie-averaged) ranks.

    Args:
        x: first sample.
        y: second sample, the same length.

    Returns:
        A value in [-1, 1]; ``nan`` when either sample is constant (the rank correlation is
        undefined then).

    Raises:
        InvalidArgumentError: fewer than two values, lengths that differ, or non-finite values.

    Example:
        >>> spearman_correlation([1, 2, 3, 4], [10, 20, 30, 25])
        0.8
    """
    if len(x) != len(y):
        raise InvalidArgumentError(f"x and y differ in length: {len(x)} and {len(y)}.")
    if len(x) < 2:
        raise InvalidArgumentError(f"Spearman correlation needs at least two pairs, got {len(x)}.")
    a = torch.tensor([float(v) for v in x], dtype=torch.float64)
    b = torch.tensor([float(v) for v in y], dtype=torch.float64)
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise InvalidArgumentError("Spearman correlation needs finite values (no nan or inf).")
    ra = _average_ranks(a)
    rb = _average_ranks(b)
    ra = ra - ra.mean()
    rb = rb - rb.mean()
    denominator = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    if denominator == 0.0:
        return math.nan
    return round(float((ra * rb).sum()) / denominator, 12)


@dataclass(frozen=True)
class PredictorReport:
    """How well a latency predictor matches measurement on a set of networks.

    Attributes:
        n: networks compared.
        spearman: Spearman rank correlation of predicted and measured latency (1 = same order).
        mape: mean absolute percentage error, as a fraction of the measurement (0.1 = 10%).
        max_abs_error_ms: the largest ``|predicted - measured|``, milliseconds.
        max_relative_error: the largest ``|predicted - measured| / measured``.
        predicted_ms: the predictions, in the order of the networks.
        measured_ms: the measurements, in the same order.
    """

    n: int
    spearman: float
    mape: float
    max_abs_error_ms: float
    max_relative_error: float
    predicted_ms: tuple[float, ...]
    measured_ms: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready data (lists for the per-network values)."""
        data = asdict(self)
        data["predicted_ms"] = list(self.predicted_ms)
        data["measured_ms"] = list(self.measured_ms)
        return data

    def __str__(self) -> str:
        return (
            f"latency predictor on {self.n} networks: Spearman {self.spearman:.3f},"
            f" MAPE {100 * self.mape:.1f}%, max error {self.max_abs_error_ms:.3f} ms"
            f" ({100 * self.max_relative_error:.1f}%)"
        )


def validate_predictor(
    predict: Callable[[Any], float],
    measure: Callable[[Any], float],
    specs: Iterable[Any],
) -> PredictorReport:
    """Compare a latency predictor with measurements on held-out networks.

    Args:
        predict: ``spec -> predicted milliseconds`` (e.g. :meth:`LatencyTable.predict`).
        measure: ``spec -> measured milliseconds`` (e.g. :meth:`LatencyTable.measure`, or
            ``lambda s: measure_latency(s, ...).median_ms``).
        specs: the networks (at least two), not those the predictor was calibrated on.

    Returns:
        A :class:`PredictorReport`; ``print`` it for one line.

    Raises:
        InvalidArgumentError: fewer than two networks, or a non-positive measurement.
        ArgumentTypeError: ``predict`` or ``measure`` is not callable.
    """
    if not callable(predict) or not callable(measure):
        raise ArgumentTypeError("predict and measure must be callables taking one spec.")
    predicted: list[float] = []
    measured: list[float] = []
    for index, spec in enumerate(specs):
        predicted.append(check_float(f"predict(specs[{index}])", predict(spec)))
        measured.append(
            check_float(f"measure(specs[{index}])", measure(spec), minimum=0.0, min_inclusive=False)
        )
    if len(predicted) < 2:
        raise InvalidArgumentError(
            f"validate_predictor needs at least two networks, got {len(predicted)}."
        )
    errors = [abs(p - m) for p, m in zip(predicted, measured, strict=True)]
    relative = [e / m for e, m in zip(errors, measured, strict=True)]
    return PredictorReport(
        n=len(predicted),
        spearman=spearman_correlation(predicted, measured),
        mape=math.fsum(relative) / len(relative),
        max_abs_error_ms=max(errors),
        max_relative_error=max(relative),
        predicted_ms=tuple(predicted),
        measured_ms=tuple(measured),
    )
