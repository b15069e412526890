"""Opening the search's latency table (measured, calibrated, shared between runs) and checking
how well it predicts held-out networks."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

from ..._validate import check_choice, check_int
from ...errors import ArgumentTypeError, InvalidArgumentError
from ...models.plan import NetworkPlan, resolve_plan
from ...models.specs import NetworkSpec
from ..space import SearchSpace
from .calibration import CALIBRATION_NETWORKS, DEVICE_FORMAT, TABLE_FORMAT
from .context_table import ContextLatencyTable
from .layer_table import LatencyTable
from .predictor import LatencyPredictor
from .timing import BACKENDS
from .validation import PredictorReport, validate_predictor

__all__ = [
    "calibration_networks",
    "is_context_table",
    "latency_function",
    "open_context_table",
    "open_latency_table",
    "open_predictor",
    "sample_specs",
    "spec_key",
    "validate_latency",
]

logger = logging.getLogger(__name__)

NUM_CLASSES = 10  # digits
CALIBRATION_SEED = "mnaszoo-latency-calibration"


def spec_key(spec: NetworkSpec) -> str:
    # The trial name differs between identical networks; everything else identifies one.
    return json.dumps({**spec.to_dict(), "name": ""}, sort_keys=True)


def sample_specs(space: SearchSpace, n: int, seed: str, prefix: str) -> list[NetworkSpec]:
    rng = random.Random(seed)  # a string seed: independent of the search's integer seeds
    return [space.to_spec(space.sample(rng), name=f"{prefix}_{i:03d}") for i in range(n)]


CALIBRATION_WIDTHS = (0.35, 0.5, 0.75, 1.3, 1.4)
"""Width multipliers of every third calibration network (:func:`calibration_networks`)."""


def calibration_networks(space: SearchSpace, n: int) -> list[NetworkPlan]:
    """The ``n`` networks an in-context table is calibrated on: random networks of ``space``,
    every third one at the next width multiplier of :data:`CALIBRATION_WIDTHS`.

    A calibration fitted on networks of one width only has to guess a fixed cost (the offset)
    from a narrow band of latencies, and misses networks much smaller or larger than the space's
    (a width-0.35 model, ``mnasnet_d1_320``) by 10% on ExecuTorch; spanning the widths puts such
    networks inside the range the fit saw. Two in three stay at width 1, where the search
    predicts. The same ``n`` always gives the same networks.
    """
    specs = sample_specs(space, n, CALIBRATION_SEED, "calibration")
    widths = iter(CALIBRATION_WIDTHS * (n // 3 + 1))
    return [
        resolve_plan(spec, width_mult=next(widths) if index % 3 == 2 else 1.0)
        for index, spec in enumerate(specs)
    ]


def open_latency_table(
    path: str | os.PathLike[str],
    *,
    backend: str = "torch",
    image_size: int = 224,
    threads: int = 1,
    calibrate: int = CALIBRATION_NETWORKS,
) -> LatencyTable:
    """Load the latency table at ``path`` (or start one), calibrate it once, and save it.

    Args:
        path: the table's JSON file; created if missing.
        backend: ``"torch"``, ``"torch-optimized"`` or ``"onnxruntime"``.
        image_size: the input resolution latency is predicted at.
        threads: intra-op CPU threads while measuring.
        calibrate: when the table has no calibration yet and ``calibrate >= 2``, measure that many
            random networks of the default space end to end and fit
            :meth:`~mnaszoo.search.latency.layer_table.LatencyTable.fit_calibration` (the same
            networks
            for every table, so repeated calls agree). A fit that fails (too noisy) is logged and
            the table stays uncalibrated. 0 skips calibration.

    Returns:
        The table, saved to ``path``.

    Raises:
        InvalidArgumentError: the file holds a table for another backend, resolution or number of
            threads, or an argument is out of range.
        SearchStateError: the file is not a latency table or was measured on another machine.
    """
    backend = check_choice("latency backend", backend, BACKENDS)
    check_int("image_size", image_size, minimum=16)
    check_int("threads", threads, minimum=1)
    check_int("calibrate", calibrate, minimum=0)
    target = Path(os.fspath(path))
    if target.exists():
        table = LatencyTable.load(target)
        wanted = {"backend": backend, "image_size": image_size, "threads": threads}
        found = {"backend": table.backend, "image_size": table.image_size, "threads": table.threads}
        if wanted != found:
            differ = ", ".join(f"{k} {found[k]!r} (wanted {wanted[k]!r})" for k in wanted)
            raise InvalidArgumentError(
                f"The latency table {target} was built with {differ}; use the table's settings or"
                " another table file."
            )
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        table = LatencyTable(
            backend=backend,  # type: ignore[arg-type]
            image_size=image_size,
            threads=threads,
            num_classes=NUM_CLASSES,
        )
    if calibrate >= 2 and table.calibration is None:
        specs = sample_specs(SearchSpace(), calibrate, CALIBRATION_SEED, "calibration")
        started = time.perf_counter()
        try:
            fit = table.fit_calibration(specs)
        except InvalidArgumentError as error:
            logger.warning("latency calibration failed, predictions stay raw sums: %s", error)
        else:
            logger.info(
                "latency table calibrated on %d networks in %.1f s: measured = %.3f x sum %+.3f ms",
                fit.samples,
                time.perf_counter() - started,
                fit.scale,
                fit.offset,
            )
    table.save(target)
    return table


def validate_latency(table: LatencyPredictor, n: int = 10, seed: int = 0) -> PredictorReport:
    """Measure ``n`` random networks end to end and compare the table's predictions with them.

    The networks are drawn from the default :class:`~mnaszoo.search.space.SearchSpace` with a
    stream independent of the calibration networks, so they are held out.

    Args:
        table: the latency table (its settings decide how the networks are measured).
        n: networks to measure (>= 2).
        seed: picks the networks.

    Returns:
        A :class:`~mnaszoo.search.latency.validation.PredictorReport` (Spearman correlation, MAPE,
        errors).
    """
    if not all(callable(getattr(table, name, None)) for name in ("predict", "measure")):
        raise ArgumentTypeError(
            f"table must be a latency predictor (LatencyTable, ContextLatencyTable), got"
            f" {type(table).__name__}."
        )
    check_int("n", n, minimum=2)
    check_int("seed", seed, minimum=0)
    specs = sample_specs(SearchSpace(), n, f"mnaszoo-latency-validation-{seed}", "validation")
    return validate_predictor(table.predict, table.measure, specs)


def latency_function(table: LatencyPredictor) -> Any:
    def latency(spec: NetworkSpec) -> float:
        # A calibration with a negative offset could push a tiny network to <= 0 ms, which the
        # reward cannot take; such a network is simply "as fast as it gets".
        return max(table.predict(spec), 1e-3)

    return latency


def is_context_table(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds an in-context or device latency table (not a per-layer one)."""
    target = Path(os.fspath(path))
    if not target.is_file():
        return False
    try:
        with open(target, encoding="utf-8") as file:
            head = file.read(4096)
    except OSError:
        return False
    return any(f'"format": "{name}"' in head for name in (TABLE_FORMAT, DEVICE_FORMAT))


def open_context_table(
    path: str | os.PathLike[str],
    *,
    backend: str = "torch",
    image_size: int = 224,
    threads: int = 1,
    calibrate: int = CALIBRATION_NETWORKS,
    num_classes: int = NUM_CLASSES,
) -> ContextLatencyTable:
    """Load the in-context latency table at ``path`` (a device table from a kit too), or measure
    one here and calibrate it on ``calibrate`` (>= 3) networks; save it unless it is a device's.

    Raises:
        InvalidArgumentError: the table was measured at another resolution, or a calibration
            could not be fitted (too noisy; the message says so).
        SearchStateError: the file is not a latency table.
    """
    check_choice("latency backend", backend, BACKENDS)
    check_int("image_size", image_size, minimum=16)
    target = Path(os.fspath(path))
    if target.exists():
        table = ContextLatencyTable.load(target)
        if table.image_size != image_size:
            raise InvalidArgumentError(
                f"The latency table {target} was measured at {table.image_size} px, not"
                f" {image_size}; pass --image-size {table.image_size} or write a kit at"
                f" {image_size} px."
            )
        if table.frozen:
            logger.info("latency from the device table %s (%s)", target, table.origin["source"])
            return table
        if table.backend != backend or table.threads != threads:
            raise InvalidArgumentError(
                f"The latency table {target} was measured with {table.backend} and"
                f" {table.threads} threads, not {backend} and {threads}; use another table file."
            )
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        table = ContextLatencyTable(
            backend=backend, image_size=image_size, threads=threads, num_classes=num_classes
        )
    if table.calibration is None and calibrate:
        networks = calibration_networks(SearchSpace(), max(3, calibrate))
        started = time.perf_counter()
        fit = table.fit_calibration(networks)
        logger.info(
            "latency table calibrated on %d networks in %.1f s: %.3f x sum %+.4f ms/layer %+.3f ms"
            " (fit error %.1f%%)",
            fit.samples,
            time.perf_counter() - started,
            fit.scale,
            fit.per_layer_ms,
            fit.offset,
            100 * fit.fit_mape,
        )
    table.save(target)
    return table


def open_predictor(
    path: str | os.PathLike[str],
    *,
    predictor: str,
    backend: str,
    image_size: int,
    threads: int,
    calibrate: int,
    num_classes: int,
) -> LatencyPredictor:
    """Open the latency predictor at ``path``: the kind the file holds, else ``predictor``.

    A file holding an in-context or device table opens as one whatever ``predictor`` says; a new
    file is measured and calibrated as ``predictor`` (``"layers"`` or ``"context"``).
    """
    if predictor == "context" or is_context_table(path):
        return open_context_table(
            path,
            backend=backend,
            image_size=image_size,
            threads=threads,
            calibrate=calibrate,
            num_classes=num_classes,
        )
    return open_latency_table(
        path, backend=backend, image_size=image_size, threads=threads, calibrate=calibrate
    )
