"""The in-context latency predictor: blocks timed as the runtime runs them, calibrated per backend.

A network's latency is predicted from one entry per layer (stem, every block, head), each the
median latency of that layer run *as its own small model* the way the backend runs it inside the
network: eager modules (``"torch"``), :func:`mnaszoo.optimize_for_inference` copies
(``"torch-optimized"``), ONNX graphs (``"onnxruntime"``, :mod:`.onnx_blocks`), XNNPACK ``.pte``
programs (``"executorch"``, :mod:`.executorch_blocks`); an entry covers a block's whole op sequence.

Summing isolated timings counts one call overhead per layer and misses what happens between
layers (layout conversions onnxruntime removes between consecutive blocks, caches), so a
calibration per backend maps the sum onto end-to-end measurements of a few networks::

    predicted = scale * sum(entries) + per_layer * layers + offset

fitted by least squares (:meth:`ContextLatencyTable.fit_calibration`). Every timing is
interleaved and re-measured while its spread is too wide (:mod:`.steady`); a calibration whose
networks stay noisy is refused.

A table can also come from a device (:mod:`.kit`); such a table is *frozen* (it cannot measure
missing layers here). What makes a prediction untrustworthy is named by :mod:`.trust`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..._io import read_json, write_text_atomic
from ..._validate import check_bool, check_choice, check_float, check_int
from ...errors import ArgumentTypeError, InvalidArgumentError, SearchStateError
from ...models.plan import NetworkPlan
from ...models.specs import NetworkSpec
from . import trust
from .calibration import (
    DEVICE_FORMAT,
    TABLE_FORMAT,
    Calibration,
    device_cpu,
    fit_context_calibration,
    runtime_version,
)
from .context_layers import ContextLayer, context_layers
from .steady import CLOCKS, ENTRY_STATISTICS, SteadyTiming, entry_ms, time_steady
from .timing import BACKENDS, as_plan

__all__ = ["ContextLatencyTable", "ContextLayer", "context_layers"]

_VERSION = 1


class ContextLatencyTable:
    """Per-layer latency entries timed in context, calibrated per backend (see the module notes).

    Args:
        backend: ``"torch"``, ``"torch-optimized"`` or ``"onnxruntime"``.
        image_size: square input resolution of the predicted networks.
        batch_size: images per call.
        num_classes: classifier outputs (the head entries).
        threads: intra-op CPU threads.
        clock: ``"thread"`` (CPU time of the calling thread; needs ``threads=1``; immune to other
            processes' load) or ``"wall"``; default ``"thread"`` with one thread, else ``"wall"``.
        rounds: interleaved timing rounds per measurement.
        per_round: timed calls of each model per round.
        warmup: untimed calls first.
        max_spread: largest accepted ``(p75 - p25) / median`` of an entry or calibration network.
        retries: re-measurements of what spread more.
        refuse_noisy: raise :class:`~mnaszoo.search.latency.steady.NoisyMeasurementError` for
            entries that stay noisy (default: keep them, marked ``noisy`` with their spread).

    Example:
        >>> from mnaszoo.models.architectures import MNASNET_SMALL
        >>> table = ContextLatencyTable(image_size=64, rounds=2, per_round=1)
        >>> table.predict(MNASNET_SMALL) > 0
        True
    """

    def __init__(
        self,
        *,
        backend: str = "torch",
        image_size: int = 224,
        batch_size: int = 1,
        num_classes: int = 1000,
        threads: int = 1,
        clock: str | None = None,
        rounds: int = 5,
        per_round: int = 3,
        warmup: int = 3,
        max_spread: float = 0.2,
        retries: int = 2,
        refuse_noisy: bool = False,
    ) -> None:
        self.backend = check_choice("latency backend", backend, BACKENDS)
        self.image_size = check_int("image_size", image_size, minimum=16)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.num_classes = check_int("num_classes", num_classes, minimum=0)
        self.threads = check_int("threads", threads, minimum=1)
        self.clock = check_choice("clock", clock or ("thread" if threads == 1 else "wall"), CLOCKS)
        if self.clock == "thread" and self.threads != 1:
            raise InvalidArgumentError(
                "clock='thread' times the calling thread only, so it needs threads=1; use"
                " clock='wall' with several threads."
            )
        self.timing = {
            "rounds": check_int("rounds", rounds, minimum=1),
            "per_round": check_int("per_round", per_round, minimum=1),
            "warmup": check_int("warmup", warmup, minimum=0),
            "retries": check_int("retries", retries, minimum=0),
        }
        self.max_spread = check_float("max_spread", max_spread, minimum=0.0, min_inclusive=False)
        self.refuse_noisy = check_bool("refuse_noisy", refuse_noisy)
        self._entries: dict[str, SteadyTiming] = {}
        self._calibration: Calibration | None = None
        self.frozen = False
        self.origin: dict[str, Any] = {
            "runtime": runtime_version(self.backend),
            "device_cpu": device_cpu(),
            "source": "measured by mnaszoo",
        }
        self.measurements = 0
        self.reference_ms: float | None = None
        self._reference: Callable[[], object] | None = None  # the reference network's call
        self.conditions: dict[str, float] = {}  # reference drift and load while measuring
        self.coverage: trust.Coverage | None = None  # what the calibration networks spanned
        self.sizes = (self.image_size, self.num_classes)
        # What each layer contributes to a sum (steady.ENTRY_STATISTICS); older tables: median.
        self.entry_statistic = ENTRY_STATISTICS[0]

    kind = "context"

    # -- identity ----------------------------------------------------------------------------

    @property
    def measured_on(self) -> dict[str, str]:
        """``{"device": ..., "runtime": ...}``: where and with what the entries were timed."""
        return {"device": str(self.origin["device_cpu"]), "runtime": str(self.origin["runtime"])}

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What the entries are valid for: runtime and version, CPU, threads, clock, settings."""
        return {
            **self.origin,
            "backend": self.backend,
            "threads": self.threads,
            "clock": self.clock,
            "image_size": self.image_size,
            "batch_size": self.batch_size,
            "num_classes": self.num_classes,
        }

    @property
    def entries(self) -> Mapping[str, SteadyTiming]:
        """A copy of the entries: layer key -> timing (median, percentiles, spread)."""
        return dict(self._entries)

    @property
    def calibration(self) -> Calibration | None:
        """The fitted calibration, or ``None`` (predictions are raw sums)."""
        return self._calibration

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"ContextLatencyTable({self.backend}, {self.image_size} px, {self.threads} threads,"
            f" {len(self)} entries, calibrated={self._calibration is not None},"
            f" frozen={self.frozen})"
        )

    # -- measuring ---------------------------------------------------------------------------

    def layers(self, spec: NetworkSpec | NetworkPlan) -> list[ContextLayer]:
        """The timed units of a network, input to output."""
        return context_layers(as_plan(spec), self.image_size, self.batch_size, self.num_classes)

    def time_calls(
        self, calls: Sequence[Callable[[], object]], names: Sequence[str], *, retry: bool = True
    ) -> list[SteadyTiming]:
        """Time ``calls`` interleaved with a fixed reference network, in this table's units:
        every batch's timings are rescaled by the reference network's drift from ``reference_ms``
        (its timing in the table's first batch, kept with the table), and the drift is recorded
        and warned about (:mod:`.reference`, :mod:`.trust`). ``retry=False``: no re-timing.
        """
        from ._runners import network_call
        from .reference import interleave_reference, reference_plan, rescale

        if self._reference is None:
            self._reference = network_call(
                reference_plan(), self.backend, self.image_size, self.batch_size,
                self.num_classes, self.threads,
            )  # fmt: skip
        merged, labels, positions = interleave_reference(calls, names, self._reference)
        timings, measured, factor = rescale(
            self._time(merged, labels, retry), positions, self.reference_ms
        )
        if self.reference_ms is None:
            self.reference_ms = measured
        trust.note_conditions(self, factor)
        return timings

    def _time(
        self, calls: Sequence[Callable[[], object]], names: Sequence[str], retry: bool
    ) -> list[SteadyTiming]:
        from ...deploy._timing import intra_op_threads
        from .heap import steady_heap

        with intra_op_threads(self.threads), steady_heap():
            return time_steady(
                calls,
                names=names,
                warmup=self.timing["warmup"],
                rounds=self.timing["rounds"],
                per_round=self.timing["per_round"],
                clock=self.clock,
                max_spread=self.max_spread,
                retries=self.timing["retries"] if retry else 0,
                refuse_noisy=self.refuse_noisy,
                settle=1,  # a round's first call runs cold: steady calls only (see time_steady)
            )

    def prefill(self, specs: Iterable[NetworkSpec | NetworkPlan], *, chunk: int = 64) -> int:
        """Measure every layer of ``specs`` not yet in the table, interleaved in chunks.

        Returns:
            How many entries were measured.

        Raises:
            SearchStateError: the table is frozen (measured on a device) and lacks a layer.
        """
        from ._runners import layer_call

        missing: dict[str, ContextLayer] = {}
        for spec in specs:
            for layer in self.layers(spec):
                if layer.key not in self._entries:
                    missing.setdefault(layer.key, layer)
        if missing and self.frozen:
            key = next(iter(missing))
            raise SearchStateError(
                f"The device latency table has no entry {key!r} ({len(missing)} layers missing):"
                " its kit was written for another search space, resolution or number of classes."
                " Write a kit for this search (mnaszoo latency-kit) and measure it again."
            )
        # In a fixed pseudo-random order: a network's layers land in different chunks, so one
        # chunk's error (its reference's drift, a burst of load) is not all on one network.
        items = sorted(missing.values(), key=lambda x: hashlib.sha256(x.key.encode()).digest())
        # A retry re-times a layer among fewer models, warmer than the first time, and the
        # fastest call a table sums needs none (measured side by side: no loss, a third the time).
        retry = self.entry_statistic != "fastest"
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            calls = [layer_call(layer, self.backend, self.threads) for layer in part]
            timed = self.time_calls(calls, [x.key for x in part], retry=retry)
            for layer, timing in zip(part, timed, strict=True):
                self._entries[layer.key] = timing
            self.measurements += len(part)
        return len(items)

    def predict_raw(self, spec: NetworkSpec | NetworkPlan) -> float:
        """The uncalibrated sum of the network's entries (:attr:`entry_statistic`), ms."""
        self.prefill([spec])
        statistic = self.entry_statistic
        return math.fsum(entry_ms(self._entries[x.key], statistic) for x in self.layers(spec))

    def predict(self, spec: NetworkSpec | NetworkPlan) -> float:
        """Predicted end-to-end latency of one call, milliseconds (calibrated if fitted)."""
        raw = self.predict_raw(spec)
        if self._calibration is None:
            return raw
        layers = trust.warn_outside(self, as_plan(spec), raw)
        return self._calibration.apply(raw, layers)

    def predict_checked(self, spec: NetworkSpec | NetworkPlan) -> trust.LatencyPrediction:
        """:meth:`predict`, with what may make it wrong as fields (:mod:`.trust`)."""
        return trust.predict_checked(self, spec)

    def measure_timing(self, specs: Sequence[NetworkSpec | NetworkPlan]) -> list[SteadyTiming]:
        """End-to-end timings of whole networks on this table's backend, interleaved.

        The networks are built as a user runs them: :func:`mnaszoo.build` (eager),
        :func:`mnaszoo.optimize_for_inference` (``channels_last``), or for onnxruntime a
        BatchNorm-folded ONNX graph of the whole network (:func:`.onnx_blocks.network_graph`).
        """
        from ._runners import network_call

        if self.frozen:
            raise SearchStateError(
                "This latency table was measured on another device; networks cannot be timed"
                " end to end here for it."
            )
        calls = [
            network_call(
                as_plan(s),
                self.backend,
                self.image_size,
                self.batch_size,
                self.num_classes,
                self.threads,
            )
            for s in specs
        ]
        names = [as_plan(s).spec.name for s in specs]
        return self.time_calls(calls, names)

    def measure(self, spec: NetworkSpec | NetworkPlan) -> float:
        """The end-to-end median latency of one network (:meth:`measure_timing`)."""
        return self.measure_timing([spec])[0].ms

    # -- calibration -------------------------------------------------------------------------

    def fit_calibration(
        self,
        specs: Sequence[NetworkSpec | NetworkPlan],
        timings: Sequence[SteadyTiming] | None = None,
    ) -> Calibration:
        """Fit ``measured = scale * sum + per_layer * layers + offset`` and use it.

        Args:
            specs: the calibration networks (at least 3, of different size).
            timings: their end-to-end timings; ``None`` measures them now.

        Raises:
            InvalidArgumentError: too few steady timings (the machine was too busy), networks
                too alike, or a non-positive slope; the table then stays as it was.
        """
        if isinstance(specs, (str, bytes)) or not isinstance(specs, Sequence):
            raise ArgumentTypeError(
                f"specs must be a sequence of NetworkSpec, got {type(specs).__name__}."
            )
        if timings is None:
            timings = self.measure_timing(specs)
        elif len(timings) != len(specs):
            raise InvalidArgumentError(
                f"{len(timings)} timings for {len(specs)} networks; pass one per network."
            )
        totals = [self.predict_raw(spec) for spec in specs]
        counts = [len(self.layers(spec)) for spec in specs]
        self._calibration = fit_context_calibration(
            totals, counts, timings, max_spread=self.max_spread
        )
        plans = [as_plan(s) for s in specs]
        self.coverage = trust.Coverage.from_networks(counts, totals, plans, *self.sizes)
        return self._calibration

    # -- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The table as JSON-ready data (what :meth:`save` writes)."""
        return {
            "format": TABLE_FORMAT,
            "version": _VERSION,
            "fingerprint": self.fingerprint,
            "frozen": self.frozen,
            "settings": {
                **self.timing,
                "max_spread": self.max_spread,
                "reference_ms": self.reference_ms,
                "entry_statistic": self.entry_statistic,
            },
            "calibration": None if self._calibration is None else asdict(self._calibration),
            **trust.table_fields(self),
            "entries": {k: v.to_dict() for k, v in sorted(self._entries.items())},
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as JSON, atomically. Returns the path."""
        target = Path(os.fspath(path))
        write_text_atomic(target, json.dumps(self.to_dict(), indent=1) + "\n")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ContextLatencyTable:
        """Read a table written by :meth:`save`, or by a latency kit's runner on a device.

        A device table is calibrated from its calibration networks (the noisy ones left out)
        and frozen: it predicts only networks whose layers the kit covered.

        Raises:
            SearchStateError: not a latency table, corrupt, or a calibration that cannot be fitted
                from it (the message names the file and what is wrong).
        """
        from ._io import table_from_data

        source = Path(os.fspath(path))
        data = read_json(source, "the latency table")
        if not isinstance(data, dict) or data.get("format") not in (TABLE_FORMAT, DEVICE_FORMAT):
            raise SearchStateError(f"{source} is not a mnaszoo in-context or device latency table.")
        try:
            table: ContextLatencyTable = table_from_data(cls, data)
        except (KeyError, TypeError, ValueError, InvalidArgumentError) as error:
            raise SearchStateError(f"Latency table {source} is unusable: {error}") from error
        trust.check_loaded(table, source)
        return table
