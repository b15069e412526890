"""Measured and predicted inference latency, the cost term of a platform-aware search.

MnasNet's search rewards accuracy *and* real latency on the target device. This module gives the
three pieces for that:

- :func:`measure_latency`: time a whole model (or a spec, built randomly initialised) end to end on
  one backend (``"torch"`` eager, ``"torch-optimized"`` BatchNorm-folded and ``channels_last`` via
  :func:`mnaszoo.optimize_for_inference`, or ``"onnxruntime"`` via an ONNX export), after warm-up,
  reporting the median and the 10th/90th percentiles.
- :class:`LatencyTable`: a per-layer lookup table. Every block of a network is timed in isolation
  once, keyed by its resolved configuration (kind, kernel, stride, widths, SE width, residual,
  input resolution); a network's latency is predicted as the sum of its stem, blocks and head.
  Searches evaluate thousands of candidates that share most of their layers, so the table costs
  a few seconds to fill and then predicts in microseconds. Per-layer sums miss what happens
  between layers (framework dispatch, cache effects), so an optional linear calibration
  (:meth:`LatencyTable.fit_calibration`) maps the sum onto end-to-end measurements.
- :func:`validate_predictor`: how well a predictor ranks and matches measurements (Spearman rank
  correlation, mean absolute percentage error, worst error).

Timings are wall-clock (:func:`time.perf_counter`) under :func:`torch.inference_mode` with a fixed
number of intra-op threads; on CUDA the device is synchronised around every timed call.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .._checks import check_bool, check_float, check_int
from ..atomic_files import write_text_atomic
from ..benchmark import _percentile, _threads
from ..errors import ArgumentTypeError, InvalidArgumentError, SearchStateError
from ..layers import ConvBnAct, make_block
from ..plan import BlockPlan, NetworkPlan, resolve_plan
from ..specs import NetworkSpec
from .state_files import read_json

__all__ = [
    "BACKENDS",
    "Backend",
    "LatencyStats",
    "LatencyTable",
    "PredictorReport",
    "measure_latency",
    "spearman_correlation",
    "validate_predictor",
]

Backend = Literal["torch", "torch-optimized", "onnxruntime"]
BACKENDS: tuple[str, ...] = ("torch", "torch-optimized", "onnxruntime")
"""The ways a network is run: eager PyTorch, optimised for inference, onnxruntime."""
_DEVICES = ("cpu", "cuda")
_TABLE_FORMAT = "mnaszoo-latency-table"
_TABLE_VERSION = 1

LayerTimer = Callable[[nn.Module, tuple[int, ...]], float]
"""Times one layer: ``(module in eval mode, input shape) -> milliseconds``."""


# --------------------------------------------------------------------------- argument checks


def _check_backend(backend: object) -> str:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InvalidArgumentError(
            f"Unknown latency backend {backend!r}; accepted: {', '.join(map(repr, BACKENDS))}."
        )
    return backend


def _check_device(device: object) -> str:
    if isinstance(device, torch.device):
        device = device.type
    if not isinstance(device, str) or device not in _DEVICES:
        raise InvalidArgumentError(
            f"Unknown device {device!r}; accepted: 'cpu' or 'cuda' (the current CUDA device)."
        )
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(
            "device='cuda' but torch.cuda.is_available() is False; use device='cpu' or install a"
            " CUDA build of PyTorch."
        )
    return device


def _check_threads(threads: object) -> int | None:
    return None if threads is None else check_int("threads", threads, minimum=1)


def _as_plan(spec: object, what: str = "spec") -> NetworkPlan:
    if isinstance(spec, NetworkPlan):
        return spec
    if isinstance(spec, NetworkSpec):
        return resolve_plan(spec)
    raise ArgumentTypeError(
        f"{what} must be a NetworkSpec or a NetworkPlan (mnaszoo.plan.resolve_plan), got"
        f" {type(spec).__name__}."
    )


# --------------------------------------------------------------------------- timing core


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock latency of one forward call.

    Attributes:
        median_ms: median over the timed calls, milliseconds.
        p10_ms: 10th percentile, milliseconds.
        p90_ms: 90th percentile, milliseconds.
        repeats: timed calls (after the untimed warm-up calls).
        backend: ``"torch"``, ``"torch-optimized"`` or ``"onnxruntime"``.
        device: ``"cpu"`` or ``"cuda"``.
        batch_size: images per call.
        image_size: square input resolution.
        threads: intra-op threads during the run.
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    backend: str
    device: str
    batch_size: int
    image_size: int
    threads: int

    @property
    def spread(self) -> float:
        """``(p90 - p10) / median``: how noisy the measurement was (0 is perfectly steady)."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready data."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.median_ms:.3f} ms median (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f};"
            f" {self.repeats} calls, {self.backend} on {self.device}, batch {self.batch_size},"
            f" {self.image_size} px, {self.threads} threads)"
        )


def _time_calls(
    call: Callable[[], object], *, warmup: int, repeats: int, cuda: bool
) -> list[float]:
    """Seconds per call of ``call``, ``repeats`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    for _ in range(repeats):
        if cuda:
            # Kernels run asynchronously: without a barrier on both sides the clock would time
            # the launch, not the work.
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def _onnx_session(module: nn.Module, example: torch.Tensor, device: str, tmpdir: Path) -> Any:
    """Export ``module`` for ``example``'s shape to ONNX and open an onnxruntime session."""
    from ..exporting import _export_onnx
    from ..runtime import open_session

    path = tmpdir / "model.onnx"
    cpu_module = module.to("cpu").eval()
    _export_onnx(cpu_module, example.to("cpu"), False, None, path)
    return open_session(path, threads=torch.get_num_threads(), device=device)


def _runner(
    module: nn.Module, shape: tuple[int, ...], backend: str, device: str, tmpdir: Path
) -> Callable[[], object]:
    """A no-argument callable running ``module`` once on a fixed random input of ``shape``."""
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(shape, generator=generator)
    module = module.eval()
    if backend == "onnxruntime":
        session = _onnx_session(module, example, device, tmpdir)
        name = session.get_inputs()[0].name
        feed = {name: example.numpy()}
        return lambda: session.run(None, feed)
    if backend == "torch-optimized":
        from ..inference import optimize_for_inference

        module = optimize_for_inference(module)
        example = example.contiguous(memory_format=torch.channels_last)
    module = module.to(device)
    x = example.to(device)

    def run() -> object:
        with torch.inference_mode():
            return module(x)

    return run


def _time_module(
    module: nn.Module,
    shape: tuple[int, ...],
    *,
    backend: str,
    device: str,
    warmup: int,
    repeats: int,
) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="mnaszoo-latency-") as tmpdir:
        run = _runner(module, shape, backend, device, Path(tmpdir))
        return _time_calls(run, warmup=warmup, repeats=repeats, cuda=device == "cuda")


def _build(plan: NetworkPlan, num_classes: int) -> nn.Module:
    from ..builder import build

    model = build(
        plan.spec, width_mult=plan.width_mult, depth_mult=plan.depth_mult, num_classes=num_classes
    )
    return model.eval()


def measure_latency(
    model_or_spec: nn.Module | NetworkSpec | NetworkPlan,
    *,
    backend: Backend = "torch",
    device: str = "cpu",
    image_size: int = 224,
    batch_size: int = 1,
    warmup: int = 5,
    repeats: int = 20,
    threads: int | None = None,
    num_classes: int = 1000,
) -> LatencyStats:
    """Time one forward call of a model end to end.

    Args:
        model_or_spec: a module taking one ``(N, C, H, W)`` tensor (``C`` is its
            ``config.in_chans``, else 3), or a :class:`~mnaszoo.specs.NetworkSpec` /
            :class:`~mnaszoo.plan.NetworkPlan`, built randomly initialised (latency does not
            depend on the weights' values).
        backend: ``"torch"`` (eager), ``"torch-optimized"`` (a BatchNorm-folded
            ``channels_last`` copy from :func:`mnaszoo.optimize_for_inference`, fed
            ``channels_last`` input) or ``"onnxruntime"`` (exported to ONNX in a temporary
            directory, needs ``pip install 'mnaszoo[onnx]'``).
        device: ``"cpu"`` or ``"cuda"``. A given module is moved there (not copied).
        image_size: square input resolution.
        batch_size: images per call.
        warmup: untimed calls first (allocator, caches, lazy initialisation).
        repeats: timed calls.
        threads: intra-op threads during the run (``None``: keep :func:`torch.get_num_threads`);
            onnxruntime gets the same number.
        num_classes: classifier outputs when a spec is built.

    Returns:
        The median and 10th/90th percentiles (:class:`LatencyStats`).

    Raises:
        InvalidArgumentError: an unknown backend or device, or a non-positive size or count.
        ArgumentTypeError: ``model_or_spec`` is neither a module nor a spec.
        MnaszooError: ``backend="onnxruntime"`` without the ``onnx`` extra installed.

    Example:
        >>> from mnaszoo.architectures import MNASNET_SMALL
        >>> stats = measure_latency(MNASNET_SMALL, image_size=64, repeats=5, threads=1)
        >>> stats.median_ms > 0
        True
    """
    backend_name = _check_backend(backend)
    device = _check_device(device)
    check_int("image_size", image_size, minimum=16)
    check_int("batch_size", batch_size, minimum=1)
    check_int("warmup", warmup, minimum=0)
    check_int("repeats", repeats, minimum=1)
    threads = _check_threads(threads)
    check_int("num_classes", num_classes, minimum=0)
    if isinstance(model_or_spec, nn.Module):
        module = model_or_spec
    elif isinstance(model_or_spec, (NetworkSpec, NetworkPlan)):
        module = _build(_as_plan(model_or_spec), num_classes)
    else:
        raise ArgumentTypeError(
            "model_or_spec must be an nn.Module, a NetworkSpec or a NetworkPlan, got"
            f" {type(model_or_spec).__name__}."
        )
    in_chans = int(getattr(getattr(module, "config", None), "in_chans", 3))
    shape = (batch_size, in_chans, image_size, image_size)
    with _threads(threads) as n_threads:
        times = _time_module(
            module, shape, backend=backend_name, device=device, warmup=warmup, repeats=repeats
        )
    return LatencyStats(
        median_ms=statistics.median(times) * 1e3,
        p10_ms=_percentile(times, 0.1) * 1e3,
        p90_ms=_percentile(times, 0.9) * 1e3,
        repeats=repeats,
        backend=backend_name,
        device=device,
        batch_size=batch_size,
        image_size=image_size,
        threads=n_threads,
    )


# --------------------------------------------------------------------------- lookup table


def _out_size(size: int, stride: int) -> int:
    # Every convolution pads kernel // 2 with an odd kernel, so the output side is ceil(in / s).
    return -(-size // stride)


def _block_key(block: BlockPlan, size: int) -> str:
    return (
        f"block:{block.kind.value}:k{block.kernel}:s{block.stride}:i{block.in_channels}"
        f":m{block.mid_channels}:o{block.out_channels}:se{block.se_channels}"
        f":r{int(block.residual)}:h{size}"
    )


@dataclass(frozen=True)
class _Layer:
    key: str
    make: Callable[[], nn.Module]
    shape: tuple[int, ...]


def _layers(plan: NetworkPlan, image_size: int, batch: int, num_classes: int) -> list[_Layer]:
    """The stem, every block and the head+classifier, each with its key and input shape."""
    layers: list[_Layer] = []
    stem = plan.stem_channels
    layers.append(
        _Layer(
            f"stem:i3:o{stem}:h{image_size}",
            lambda: ConvBnAct(3, stem, 3, 2),
            (batch, 3, image_size, image_size),
        )
    )
    size = _out_size(image_size, 2)
    for block in plan.blocks:
        layers.append(
            _Layer(
                _block_key(block, size),
                functools.partial(make_block, block, drop_path=0.0, bn_eps=1e-5, bn_momentum=0.01),
                (batch, block.in_channels, size, size),
            )
        )
        size = _out_size(size, block.stride)
    last, head = plan.blocks[-1].out_channels, plan.head_channels

    def make_head() -> nn.Module:
        classifier: nn.Module = nn.Linear(head, num_classes) if num_classes else nn.Identity()
        return nn.Sequential(
            ConvBnAct(last, head, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), classifier
        )

    layers.append(
        _Layer(f"head:i{last}:o{head}:c{num_classes}:h{size}", make_head, (batch, last, size, size))
    )
    return layers


def _device_name(device: str) -> str:
    if device == "cuda":
        return str(torch.cuda.get_device_name())
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def _runtime_version(backend: str) -> str:
    if backend != "onnxruntime":
        return ""
    try:
        import onnxruntime

        return str(onnxruntime.__version__)
    except ImportError:
        return "not installed"


@dataclass(frozen=True)
class Calibration:
    """A linear map from summed per-layer latency to end-to-end latency: ``scale * x + offset``.

    Attributes:
        scale: slope (> 0).
        offset: intercept, milliseconds.
        samples: how many measured networks it was fitted on.
    """

    scale: float
    offset: float
    samples: int


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
        >>> from mnaszoo.architectures import MNASNET_SMALL
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
        self.backend = _check_backend(backend)
        self.device = _check_device(device)
        self.image_size = check_int("image_size", image_size, minimum=16)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.num_classes = check_int("num_classes", num_classes, minimum=0)
        self.warmup = check_int("warmup", warmup, minimum=0)
        self.repeats = check_int("repeats", repeats, minimum=1)
        checked = _check_threads(threads)
        self.threads = torch.get_num_threads() if checked is None else checked
        if timer is not None and not callable(timer):
            raise ArgumentTypeError(f"timer must be callable, got {type(timer).__name__}.")
        self._timer = timer
        self._entries: dict[str, float] = {}
        self._calibration: Calibration | None = None
        self.measurements = 0

    # -- identity ----------------------------------------------------------------------------

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What the entries are valid for: this machine and the table's settings."""
        return {
            "torch": torch.__version__,
            "runtime": _runtime_version(self.backend),
            "device": self.device,
            "device_name": _device_name(self.device),
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
        times = _time_module(
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
        with _threads(self.threads):
            for key, layer in missing.items():
                self._entries[key] = self._measure_layer(layer)
        return len(missing)

    def _network_layers(self, spec: object) -> list[_Layer]:
        return _layers(_as_plan(spec), self.image_size, self.batch_size, self.num_classes)

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
        return self._calibration.scale * raw + self._calibration.offset

    def measure(self, spec: NetworkSpec | NetworkPlan, *, repeats: int | None = None) -> float:
        """The end-to-end median latency with this table's settings (:func:`measure_latency`)."""
        stats = measure_latency(
            _as_plan(spec),
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
        self._calibration = Calibration(scale=scale, offset=offset, samples=len(specs))
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
        source = Path(os.fspath(path))
        check_bool("force", force)
        data = read_json(source, "the latency table")
        if not isinstance(data, dict) or data.get("format") != _TABLE_FORMAT:
            raise SearchStateError(
                f"{source} is not a mnaszoo latency table (no format {_TABLE_FORMAT!r})."
            )
        if data.get("version") != _TABLE_VERSION:
            raise SearchStateError(
                f"{source} has latency-table version {data.get('version')!r}; this mnaszoo reads"
                f" version {_TABLE_VERSION}. Rebuild the table."
            )
        try:
            stored = dict(data["fingerprint"])
            settings = dict(data["settings"])
            table = cls(
                backend=stored["backend"],
                device=stored["device"],
                image_size=stored["image_size"],
                batch_size=stored["batch_size"],
                threads=stored["threads"],
                num_classes=settings["num_classes"],
                warmup=settings["warmup"],
                repeats=settings["repeats"],
                timer=timer,
            )
            entries = {
                str(k): check_float(f"entry {k!r}", v, minimum=0.0)
                for k, v in dict(data["entries"]).items()
            }
            calibration = data.get("calibration")
            if calibration is not None:
                calibration = Calibration(
                    scale=check_float("calibration scale", calibration["scale"], minimum=0.0),
                    offset=check_float("calibration offset", calibration["offset"]),
                    samples=check_int("calibration samples", calibration["samples"], minimum=2),
                )
        except (KeyError, TypeError, ValueError) as error:
            raise SearchStateError(f"Latency table {source} is corrupt: {error}") from error
        current = table.fingerprint
        differ = sorted(k for k in set(current) | set(stored) if current.get(k) != stored.get(k))
        if differ and not force:
            details = "; ".join(
                f"{k}: file {stored.get(k)!r}, here {current.get(k)!r}" for k in differ
            )
            raise SearchStateError(
                f"Latency table {source} was measured elsewhere ({details}). Its entries would"
                " mispredict this machine: build a new table here, or pass force=True to use it"
                " anyway."
            )
        table._entries = entries
        table._calibration = calibration
        return table


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
