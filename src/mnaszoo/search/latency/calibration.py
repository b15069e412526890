"""The per-backend calibration of the in-context latency table, and what identifies a table.

``predicted = scale * sum(entries) + per_layer * layers + offset``, fitted by least squares on
networks timed end to end; networks whose timings spread too widely are left out, and too few
steady ones refuse the fit (a calibration measured on a busy machine must not be saved into every
later search).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import InvalidArgumentError
from ._kit_runner import cpu_name as device_cpu
from .steady import SteadyTiming
from .timing import runtime_version

__all__ = [
    "CALIBRATION_NETWORKS",
    "FORMS",
    "Calibration",
    "ContextCalibration",
    "device_cpu",
    "fit_context_calibration",
    "runtime_version",
]

TABLE_FORMAT = "mnaszoo-context-latency-table"
DEVICE_FORMAT = "mnaszoo-device-latency-table"


@dataclass(frozen=True)
class Calibration:
    """``predicted = scale * sum + per_layer_ms * layers + offset``: the one calibration type of
    both predictors (the per-layer table fits ``scale`` and ``offset`` only, form
    ``"scale+offset"``; the in-context table chooses among :data:`FORMS` per backend).

    Attributes:
        scale: slope on the summed entries (> 0).
        per_layer_ms: milliseconds per layer (negative: isolated timings over-count a call
            overhead per layer).
        offset: intercept, milliseconds.
        samples: calibration networks it was fitted on.
        fit_mape: mean absolute percentage error of the fit on those networks.
        max_spread: the largest spread among their end-to-end timings.
        form: which of :data:`FORMS` was chosen (the smallest leave-one-out error).
        loo_mape: its leave-one-out error: the error to expect on networks it did not see.
    """

    scale: float
    per_layer_ms: float = 0.0
    offset: float = 0.0
    samples: int = 0
    fit_mape: float = 0.0
    max_spread: float = 0.0
    form: str = "scale+per_layer"
    loo_mape: float = 0.0

    def apply(self, total: float, layers: int) -> float:
        """The calibrated prediction for a summed ``total`` over ``layers`` layers."""
        return self.scale * total + self.per_layer_ms * layers + self.offset


ContextCalibration = Calibration
"""The name the in-context table's calibration had before both predictors shared one type."""


def _solve(rows: list[list[float]], targets: list[float]) -> list[float]:
    """Least squares by the normal equations (3 unknowns; no numpy needed)."""
    n = len(rows[0])
    a = [[math.fsum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
    b = [math.fsum(r[i] * t for r, t in zip(rows, targets, strict=True)) for i in range(n)]
    for col in range(n):  # Gauss-Jordan with partial pivoting
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            raise InvalidArgumentError("singular")
        a[col], a[pivot], b[col], b[pivot] = a[pivot], a[col], b[pivot], b[col]
        for row in range(n):
            if row != col:
                factor = a[row][col] / a[col][col]
                a[row] = [x - factor * y for x, y in zip(a[row], a[col], strict=True)]
                b[row] -= factor * b[col]
    return [b[i] / a[i][i] for i in range(n)]


# The calibration forms, simplest first: (name, fits scale?, fits per-layer?, fits offset?).
FORMS: tuple[tuple[str, bool, bool, bool], ...] = (
    ("sum", False, False, False),
    # Eager torch: each layer's allocations and dispatch cost more inside a network than alone,
    # in proportion to the layer's work (its end-to-end time is about 1.3x the sum, any size).
    ("scale", True, False, False),
    ("sum+offset", False, False, True),
    ("sum+per_layer", False, True, True),
    ("scale+offset", True, False, True),
    ("scale+per_layer", True, True, True),
)


CALIBRATION_NETWORKS = 32
"""Networks timed end to end to calibrate a new table (``--calibrate``, a kit's
``--calibration``). Measured on an idle 2-core VM: fitted on the first 8 of 16 calibration
networks, torch-optimized's predictions of 30 held-out networks missed by 20.8% on average and
onnxruntime's by 21.1%; on all 16, by 9.2% and 6.1%. With 32 (every third at another width, see
:func:`mnaszoo.search.latency.open.calibration_networks`) the fit also spans networks far smaller
and larger than the space's; an ExecuTorch table's build stays within minutes."""

PARSIMONY = 1.0
"""A richer calibration form must beat a simpler one's leave-one-out error by this factor.

Leave-one-out already charges a form for the terms it fits; with 32 calibration networks an
extra margin only kept forms that were worse. Scored offline on three benchmark runs' recorded
timings (100 + 20 held-out networks, three backends), choosing the smallest leave-one-out error
(1.0) gave a mean MAPE of 3.6% against 3.9% with a margin of 1.2."""


def _fit_form(
    form: tuple[str, bool, bool, bool], points: list[tuple[float, int, float]]
) -> tuple[float, float, float]:
    """``(scale, per_layer, offset)`` of one form by least squares on ``(sum, layers, ms)``."""
    _, fit_scale, fit_layers, fit_offset = form
    rows = [
        [
            value
            for value, used in ((t, fit_scale), (float(n), fit_layers), (1.0, fit_offset))
            if used
        ]
        for t, n, _ in points
    ]
    # A term that is not fitted keeps its fixed value (scale 1, per-layer 0, offset 0).
    targets = [y - (0.0 if fit_scale else t) for t, _, y in points]
    solution = iter(_solve(rows, targets)) if rows[0] else iter(())
    scale = next(solution) if fit_scale else 1.0
    per_layer = next(solution) if fit_layers else 0.0
    offset = next(solution) if fit_offset else 0.0
    return scale, per_layer, offset


def _mape(params: tuple[float, float, float], points: list[tuple[float, int, float]]) -> float:
    scale, per_layer, offset = params
    return math.fsum(abs(scale * t + per_layer * n + offset - y) / y for t, n, y in points) / len(
        points
    )


def _loo_error(form: tuple[str, bool, bool, bool], points: list[tuple[float, int, float]]) -> float:
    """Leave-one-out error: how well the form predicts a network it was not fitted on."""
    unknowns = sum(form[1:])
    if len(points) - 1 < unknowns + 1:
        return math.inf  # too few points to fit it and still leave one out
    errors: list[float] = []
    for index, point in enumerate(points):
        rest = points[:index] + points[index + 1 :]
        try:
            errors.append(_mape(_fit_form(form, rest), [point]))
        except InvalidArgumentError:
            return math.inf
    return math.fsum(errors) / len(errors)


def fit_context_calibration(
    totals: Sequence[float],
    layers: Sequence[int],
    timings: Sequence[SteadyTiming],
    *,
    max_spread: float,
) -> ContextCalibration:
    """Fit a :class:`ContextCalibration` on steady end-to-end timings; noisy ones are left out.

    Several forms are tried, from the plain sum to ``scale * sum + per_layer * layers +
    offset`` (:data:`FORMS`, simplest first); the one with the smallest leave-one-out error on
    the calibration networks is kept (the simplest among equals; :data:`PARSIMONY`), so that
    a fit is chosen by how well it predicts networks it did not see.

    Raises:
        InvalidArgumentError: fewer than 3 steady networks, or no form that can be fitted.
    """
    steady = [i for i, t in enumerate(timings) if t.spread <= max_spread]
    if len(steady) < 3:
        raise InvalidArgumentError(
            f"Only {len(steady)} of {len(timings)} calibration networks were timed steadily"
            f" (spread <= {max_spread:.0%}); a calibration needs at least 3. The machine is too"
            " busy: calibrate again when it is quieter (the spreads are"
            f" {', '.join(f'{t.spread:.0%}' for t in timings)})."
        )
    points = [(float(totals[i]), int(layers[i]), timings[i].ms) for i in steady]
    errors = [_loo_error(form, points) for form in FORMS]
    best = min(errors)
    # The simplest form whose leave-one-out error is within PARSIMONY of the best;
    # eight noisy networks cannot tell a slightly better fit of a richer form from noise.
    candidates = [i for i, e in enumerate(errors) if e <= best * PARSIMONY + 1e-12]
    candidates += [i for i in sorted(range(len(FORMS)), key=errors.__getitem__)]
    for index in candidates:
        error = errors[index]
        if math.isinf(error):
            break
        params = _fit_form(FORMS[index], points)
        if params[0] > 0:
            return ContextCalibration(
                scale=params[0],
                per_layer_ms=params[1],
                offset=params[2],
                samples=len(steady),
                fit_mape=_mape(params, points),
                max_spread=max(timings[i].spread for i in steady),
                form=FORMS[index][0],
                loo_mape=error,
            )
    raise InvalidArgumentError(
        "No calibration could be fitted: the end-to-end timings do not grow with the summed"
        " entries. Measure again with more rounds, on a quieter machine."
    )
