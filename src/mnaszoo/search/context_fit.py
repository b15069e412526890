"""The per-backend calibration of the in-context latency table, and what identifies a table.

``predicted = scale * sum(entries) + per_layer * layers + offset``, fitted by least squares on
networks timed end to end; networks whose timings spread too widely are left out, and too few
steady ones refuse the fit (a calibration measured on a busy machine must not be saved into every
later search).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidArgumentError
from .steady import SteadyTiming

__all__ = ["ContextCalibration", "device_cpu", "fit_context_calibration", "runtime_version"]

TABLE_FORMAT = "mnaszoo-context-latency-table"
DEVICE_FORMAT = "mnaszoo-device-latency-table"


@dataclass(frozen=True)
class ContextCalibration:
    """``predicted = scale * sum + per_layer_ms * layers + offset``, fitted per backend.

    Attributes:
        scale: slope on the summed entries (> 0).
        per_layer_ms: milliseconds per layer (negative: isolated timings over-count a call
            overhead per layer).
        offset: intercept, milliseconds.
        samples: calibration networks it was fitted on.
        fit_mape: mean absolute percentage error of the fit on those networks.
        max_spread: the largest spread among their end-to-end timings.
    """

    scale: float
    per_layer_ms: float
    offset: float
    samples: int
    fit_mape: float
    max_spread: float

    def apply(self, total: float, layers: int) -> float:
        """The calibrated prediction for a summed ``total`` over ``layers`` layers."""
        return self.scale * total + self.per_layer_ms * layers + self.offset


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


def fit_context_calibration(
    totals: Sequence[float],
    layers: Sequence[int],
    timings: Sequence[SteadyTiming],
    *,
    max_spread: float,
) -> ContextCalibration:
    """Fit :class:`ContextCalibration` on steady end-to-end timings; noisy ones are left out.

    Raises:
        InvalidArgumentError: fewer than 3 steady networks, networks that do not differ enough,
            or a fit with a non-positive slope.
    """
    steady = [i for i, t in enumerate(timings) if t.spread <= max_spread]
    if len(steady) < 3:
        raise InvalidArgumentError(
            f"Only {len(steady)} of {len(timings)} calibration networks were timed steadily"
            f" (spread <= {max_spread:.0%}); a calibration needs at least 3. The machine is too"
            " busy: calibrate again when it is quieter (the spreads are"
            f" {', '.join(f'{t.spread:.0%}' for t in timings)})."
        )
    rows = [[totals[i], float(layers[i]), 1.0] for i in steady]
    y = [timings[i].ms for i in steady]
    if len(steady) < 5 or len({layers[i] for i in steady}) < 2:
        # Too few networks (or all of one depth) to identify a per-layer term too: 3 unknowns
        # from 3 or 4 points would fit the noise exactly.
        rows = [[r[0], r[2]] for r in rows]
    try:
        solution = _solve(rows, y)
    except InvalidArgumentError:
        raise InvalidArgumentError(
            "The calibration networks are too alike to fit a calibration; use networks of"
            " different size."
        ) from None
    scale, per_layer, offset = solution if len(solution) == 3 else (solution[0], 0.0, solution[1])
    if scale <= 0:
        raise InvalidArgumentError(
            f"The calibration slope came out {scale:.3g} <= 0: the end-to-end timings do not grow"
            " with the summed entries. Measure again with more rounds."
        )
    predicted = [
        scale * r[0] + per_layer * layers[i] + offset for r, i in zip(rows, steady, strict=True)
    ]
    mape = math.fsum(abs(p - t) / t for p, t in zip(predicted, y, strict=True)) / len(y)
    return ContextCalibration(
        scale=scale,
        per_layer_ms=per_layer,
        offset=offset,
        samples=len(steady),
        fit_mape=mape,
        max_spread=max(timings[i].spread for i in steady),
    )


def device_cpu() -> str:
    """The CPU model as the OS reports it (``/proc/cpuinfo``), else the platform's guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("model name", "hardware", "cpu model"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def runtime_version(backend: str) -> str:
    """The version of what runs the backend (torch or onnxruntime)."""
    if backend == "onnxruntime":
        try:
            import onnxruntime

            return f"onnxruntime {onnxruntime.__version__}"
        except ImportError:
            return "onnxruntime not installed"
    import torch

    return f"torch {torch.__version__}"
