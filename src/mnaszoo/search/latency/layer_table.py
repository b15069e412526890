"""A per-layer latency lookup table: the search's fast latency predictor.

Every block of a network is timed in isolation once, keyed by its resolved configuration (kind,
kernel, stride, widths, SE width, residual, input resolution); a network's latency is predicted as
the sum of its stem, blocks and head. Searches evaluate thousands of candidates that share most of
their layers, so the table costs a few seconds to fill and then predicts in microseconds.
Per-layer sums miss what happens between layers (framework dispatch, cache effects), so an
optional linear calibration (:meth:`LatencyTable.fit_calibration`) maps the sum onto end-to-end
measurements.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..._io import write_text_atomic
from ..._validate import check_float, check_int
from ...deploy._timing import intra_op_threads
from ...errors import ArgumentTypeError, InvalidArgumentError
from ...models.plan import NetworkPlan
from ...models.specs import NetworkSpec
from .layer_units import _Layer, _layers
from .timing import (
    Backend,
    as_plan,
    check_backend,
    check_device,
    check_threads,
    device_name,
    measure_latency,
    runtime_version,
    time_module,
)

__all__ = ["Calibration", "LatencyTable", "LayerTimer"]

from ._layer_io import TABLE_FORMAT as _TABLE_FORMAT, TABLE_VERSION as _TABLE_VERSION
from .calibration import Calibration

LayerTimer = Callable[[nn.Module, tuple[int, ...]], float]
"""Times one layer: ``(module in eval mode, input shape) -> milliseconds``."""


class LatencyTable:
    """A per-layer latency lookup table for one device, backend, input size and batch size.

    A network's latency is predicted as the sum of its layers' entries: the stem, each block
    and the head with the classifier. A block's entry is keyed by its resolved configuration
    (kind, kernel, stride, input/expanded/output channels, SE channels, residual, input
    resolution); the table-wide settings (device, backend, image and batch size, threads, torch
    version, CPU or GPU model) form its :attr:`fingerprint`. A missing entry is measured on
    demand, by timing the layer in isolation as a module (warm-up, then the median of
    ``repeats`` calls), and cached.

    Summed isolated layers miss the cost between layers and double-count nothing, so they
    usually under-predict by a roughly constant factor and offset; :meth:`fit_calibration` fits
    ``measured = scale * sum + offset`` by least squares on a few networks timed end to end,
    and :meth:`predict` applies it. Ranking (what a search needs) is unaffected by a positive
    linear map; the calibration makes the numbers comparable with a latency target.

    Args:
        backend: ``"torch"``, ``"torch-optimized"`` or ``"onnxruntime"`` (each block is exported
            to ONNX to be timed, which takes about a second per new entry).
        device: ``"cpu"`` or ``"cuda"``.
        image_size: square network input resolution the table is for.
        batch_size: images per call.
        num_classes: classifier outputs of the head entries.
        warmup: untimed calls before each layer is timed.
        repeats: timed calls per layer (the median is kept).
        threads: intra-op threads while measuring (``None``: :func:`torch.get_num_threads` at
            construction, recorded in the fingerprint).
        timer: a custom ``(module, input_shape) -> milliseconds`` layer timer (another device, a
            simulator, or a stub in tests); default: wall-clock timing on ``backend``/``device``.

    Attributes:
        measurements: how many layers this table has timed (cache hits do not count).

    Example:
        >>> from mnaszoo.models.architectures import MNASNET_SMALL
        >>> table = LatencyTable(image_size=64, repeats=3, threads=1)
        >>> first = table.predict(MNASNET_SMALL)  # times every distinct layer once
        >>> measured = table.measurements
        >>> table.predict(MNASNET_SMALL) == first, table.measurements == measured
        (True, True)
    """

    def __init__(
        self,
        *,
        backend: Backend = "torch",
        device: str = "cpu",
        image_size: int = 224,
        batch_size: int = 1,
        num_classes: int = 1000,
        warmup: int = 3,
        repeats: int = 15,
        threads: int | None = None,
        timer: LayerTimer | None = None,
    ) -> None:
        self.backend = check_backend(backend, per_layer=True)
        self.device = check_device(device)
        self.image_size = check_int("image_size", image_size, minimum=16)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.num_classes = check_int("num_classes", num_classes, minimum=0)
        self.warmup = check_int("warmup", warmup, minimum=0)
        self.repeats = check_int("repeats", repeats, minimum=1)
        checked = check_threads(threads)
        self.threads = torch.get_num_threads() if checked is None else checked
        if timer is not None and not callable(timer):
            raise ArgumentTypeError(f"timer must be callable, got {type(timer).__name__}.")
        self._timer = timer
        self._entries: dict[str, float] = {}
        self._calibration: Calibration | None = None
        self.measurements = 0
        self.frozen = False  # a per-layer table always times what it lacks here

    kind = "layers"

    # -- identity ----------------------------------------------------------------------------

    @property
    def measured_on(self) -> dict[str, str]:
        """``{"device": ..., "runtime": ...}``: where and with what the entries were timed."""
        return {"device": device_name(self.device), "runtime": runtime_version(self.backend)}

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What the entries are valid for: this machine and the table's settings."""
        return {
            "torch": torch.__version__,
            # Saved per-layer tables record onnxruntime's bare version ("" for torch, whose
            # version has its own field), so the fingerprint keeps that form.
            "runtime": (
                runtime_version(self.backend).removeprefix("onnxruntime ")
                if self.backend == "onnxruntime"
                else ""
            ),
            "device": self.device,
            "device_name": device_name(self.device),
            "backend": self.backend,
            "threads": self.threads,
            "image_size": self.image_size,
            "batch_size": self.batch_size,
        }

    @property
    def entries(self) -> Mapping[str, float]:
        """A copy of the cached entries: layer key -> milliseconds."""
        return dict(self._entries)

    @property
    def calibration(self) -> Calibration | None:
        """The fitted calibration, or ``None`` (predictions are raw per-layer sums)."""
        return self._calibration

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"LatencyTable({self.backend} on {self.device}, {self.image_size} px, batch"
            f" {self.batch_size}, {self.threads} threads, {len(self)} entries,"
            f" calibrated={self._calibration is not None})"
        )

    # -- measuring ---------------------------------------------------------------------------

    def keys(self, spec: NetworkSpec | NetworkPlan) -> list[str]:
        """The layer keys a network's prediction sums, input to output (repeats included)."""
        return [layer.key for layer in self._network_layers(spec)]

    def _measure_layer(self, layer: _Layer) -> float:
        module = layer.make().eval()
        self.measurements += 1
        if self._timer is not None:
            value = check_float("timer result", self._timer(module, layer.shape), minimum=0.0)
            return value
        times = time_module(
            module,
            layer.shape,
            backend=self.backend,
            device=self.device,
            warmup=self.warmup,
            repeats=self.repeats,
        )
        return statistics.median(times) * 1e3

    def _fill(self, layers: Iterable[_Layer]) -> int:
        missing = {layer.key: layer for layer in layers if layer.key not in self._entries}
        if not missing:
            return 0
        with intra_op_threads(self.threads):
            for key, layer in missing.items():
                self._entries[key] = self._measure_layer(layer)
        return len(missing)

    def _network_layers(self, spec: object) -> list[_Layer]:
        return _layers(as_plan(spec), self.image_size, self.batch_size, self.num_classes)

    def prefill(self, specs: Iterable[NetworkSpec | NetworkPlan]) -> int:
        """Measure every layer of ``specs`` not yet in the table.

        Args:
            specs: networks (e.g. a sample of the search space, or every choice per block).

        Returns:
            How many new entries were measured.
        """
        return sum(self._fill(self._network_layers(spec)) for spec in specs)

    def predict_raw(self, spec: NetworkSpec | NetworkPlan) -> float:
        """The uncalibrated sum of the network's layer entries, milliseconds."""
        layers = self._network_layers(spec)
        self._fill(layers)
        return math.fsum(self._entries[layer.key] for layer in layers)

    def predict(self, spec: NetworkSpec | NetworkPlan) -> float:
        """Predicted latency of one forward call, milliseconds.

        Missing entries are measured first and cached. With a :attr:`calibration`, the result is
        ``scale * sum + offset``; otherwise the raw sum (:meth:`predict_raw`).

        Args:
            spec: the network (a spec at width 1.0, or a plan at any multipliers).

        Raises:
            ArgumentTypeError: ``spec`` is neither a NetworkSpec nor a NetworkPlan.
        """
        raw = self.predict_raw(spec)
        if self._calibration is None:
            return raw
        return self._calibration.apply(raw, 0)

    def measure(self, spec: NetworkSpec | NetworkPlan, *, repeats: int | None = None) -> float:
        """The end-to-end median latency with this table's settings (:func:`measure_latency`)."""
        stats = measure_latency(
            as_plan(spec),
            backend=self.backend,  # type: ignore[arg-type]
            device=self.device,
            image_size=self.image_size,
            batch_size=self.batch_size,
            warmup=self.warmup,
            repeats=self.repeats if repeats is None else repeats,
            threads=self.threads,
            num_classes=self.num_classes,
        )
        return stats.median_ms

    # -- calibration -------------------------------------------------------------------------

    def fit_calibration(
        self,
        specs: Sequence[NetworkSpec | NetworkPlan],
        measured_ms: Sequence[float] | None = None,
    ) -> Calibration:
        """Fit ``measured = scale * per-layer sum + offset`` by least squares and use it.

        A handful (3-10) of networks spanning the costs the search will see is enough; the
        calibration corrects the per-layer sum for inter-layer overhead, which grows with the
        number of layers and their size roughly linearly.

        Args:
            specs: the calibration networks (at least two with different per-layer sums).
            measured_ms: their end-to-end latencies in milliseconds, measured with the same
                settings; ``None`` measures them now (:meth:`measure`).

        Returns:
            The fitted :class:`Calibration` (also stored, and saved by :meth:`save`).

        Raises:
            InvalidArgumentError: fewer than two networks, lengths that differ, a negative
                measurement, all sums equal, or a fit with a non-positive slope (measurements
                too noisy for the spread of the networks: measure with more repeats, or choose
                networks of more different cost).
        """
        if isinstance(specs, (str, bytes)) or not isinstance(specs, Sequence):
            raise ArgumentTypeError(
                f"specs must be a sequence of NetworkSpec, got {type(specs).__name__}."
            )
        if len(specs) < 2:
            raise InvalidArgumentError(
                f"fit_calibration needs at least two networks, got {len(specs)}."
            )
        if measured_ms is None:
            measured = [self.measure(spec) for spec in specs]
        else:
            if len(measured_ms) != len(specs):
                raise InvalidArgumentError(
                    f"measured_ms has {len(measured_ms)} values for {len(specs)} specs; pass one"
                    " measurement per spec."
                )
            measured = [
                check_float(f"measured_ms[{i}]", v, minimum=0.0) for i, v in enumerate(measured_ms)
            ]
        raw = [self.predict_raw(spec) for spec in specs]
        x = torch.tensor(raw, dtype=torch.float64)
        y = torch.tensor(measured, dtype=torch.float64)
        centred = x - x.mean()
        variance = float((centred * centred).sum())
        if variance <= 1e-12 * max(1.0, float((x * x).sum())):
            raise InvalidArgumentError(
                "fit_calibration needs networks of different per-layer cost; all calibration"
                " networks have the same predicted latency."
            )
        scale = float((centred * (y - y.mean())).sum()) / variance
        offset = float(y.mean()) - scale * float(x.mean())
        if scale <= 0:
            raise InvalidArgumentError(
                f"The calibration slope came out {scale:.3g} <= 0: the measurements do not grow"
                " with the per-layer sums. Measure with more repeats, or use networks of more"
                " different cost."
            )
        self._calibration = Calibration(
            scale=scale, offset=offset, samples=len(specs), form="scale+offset"
        )
        return self._calibration

    def reset_calibration(self) -> None:
        """Drop the calibration: :meth:`predict` returns raw per-layer sums again."""
        self._calibration = None

    # -- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The table as JSON-ready data (what :meth:`save` writes)."""
        calibration = None if self._calibration is None else asdict(self._calibration)
        return {
            "format": _TABLE_FORMAT,
            "version": _TABLE_VERSION,
            "fingerprint": self.fingerprint,
            "settings": {
                "num_classes": self.num_classes,
                "warmup": self.warmup,
                "repeats": self.repeats,
            },
            "calibration": calibration,
            "entries": dict(sorted(self._entries.items())),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as JSON (atomically: a partial file never replaces a good one).

        Returns:
            The path written.
        """
        target = Path(os.fspath(path))
        write_text_atomic(target, json.dumps(self.to_dict(), indent=1) + "\n")
        return target

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        force: bool = False,
        timer: LayerTimer | None = None,
    ) -> LatencyTable:
        """Read a table written by :meth:`save` on this machine and configuration.

        Args:
            path: the JSON file.
            force: accept a table whose fingerprint (torch or runtime version, CPU/GPU model)
                differs from this machine's; its entries then describe the other machine.
            timer: the layer timer for entries still missing (see :class:`LatencyTable`).

        Returns:
            The table, with its entries and calibration.

        Raises:
            SearchStateError: the file is not a latency table, is corrupt, or was measured on
                another machine or software stack (without ``force``); the message names the
                file and the fields that differ.
        """
        from ._layer_io import read_layer_table

        table: LatencyTable = read_layer_table(cls, path, force=force, timer=timer)
        return table
