"""Scoring a latency predictor against end-to-end measurements, the way nn-Meter reports it.

The fraction of networks predicted within ±5% and ±10% of their measured latency, the mean
absolute percentage error, and Spearman's rank correlation (what a search needs: the right
order). ``benchmarks/latency_predictor_score.py`` writes them per backend as JSON and Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import InvalidArgumentError

__all__ = ["mape", "markdown_table", "score_predictions", "within_fraction"]


def _pairs(predicted: Sequence[float], measured: Sequence[float]) -> list[tuple[float, float]]:
    if len(predicted) != len(measured):
        raise InvalidArgumentError(
            f"{len(predicted)} predictions for {len(measured)} measurements; pass one each."
        )
    if not predicted:
        raise InvalidArgumentError("no predictions to score; pass at least one network.")
    pairs = [(float(p), float(m)) for p, m in zip(predicted, measured, strict=True)]
    for p, m in pairs:
        if not (math.isfinite(p) and math.isfinite(m)) or m <= 0:
            raise InvalidArgumentError(
                f"predicted {p} ms against measured {m} ms: latencies must be finite and the"
                " measurement positive."
            )
    return pairs


def within_fraction(
    predicted: Sequence[float], measured: Sequence[float], tolerance: float
) -> float:
    """The fraction of networks whose prediction is within ``tolerance`` (0.1 is ±10%) of the
    measurement; a relative error exactly at the tolerance counts as within."""
    pairs = _pairs(predicted, measured)
    # A tiny slack so that 110 against 100 counts as within 10% despite float rounding.
    inside = sum(abs(p - m) / m <= tolerance + 1e-12 for p, m in pairs)
    return inside / len(pairs)


def mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error as a fraction (0.04 is 4%)."""
    pairs = _pairs(predicted, measured)
    return math.fsum(abs(p - m) / m for p, m in pairs) / len(pairs)


def score_predictions(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, Any]:
    """Every figure of the score: ``networks``, ``within_5``, ``within_10``, ``mape``,
    ``spearman`` (``None`` for fewer than two networks or constant values), ``worst``."""
    from .validation import spearman_correlation

    pairs = _pairs(predicted, measured)
    rho: float | None = None
    if len(pairs) >= 2:
        value = spearman_correlation([p for p, _ in pairs], [m for _, m in pairs])
        rho = None if math.isnan(value) else value  # constant values: no ranking to compare
    return {
        "networks": len(pairs),
        "within_5": within_fraction(predicted, measured, 0.05),
        "within_10": within_fraction(predicted, measured, 0.10),
        "mape": mape(predicted, measured),
        "spearman": rho,
        "worst": max(abs(p - m) / m for p, m in pairs),
    }


def _cell(value: Any, percent: bool) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{100 * value:.1f}%" if percent else f"{value:.3f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The scores as a Markdown table, one row per ``(backend, set)``."""
    header = (
        "| backend | networks | set | within ±5% | within ±10% | MAPE | Spearman | worst"
        " | calibration s |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for row in rows:
        cells = [
            str(row["backend"]),
            str(row["networks"]),
            str(row["set"]),
            _cell(row["within_5"], True),
            _cell(row["within_10"], True),
            _cell(row["mape"], True),
            _cell(row["spearman"], False),
            _cell(row["worst"], True),
            _cell(row.get("calibration_s"), False),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
