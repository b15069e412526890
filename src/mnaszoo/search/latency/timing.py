"""Measured inference latency: time a whole model (or a spec) end to end on one backend.

MnasNet's search rewards accuracy *and* real latency on the target device. :func:`measure_latency`
times a model on ``"torch"`` (eager), ``"torch-optimized"`` (BatchNorm-folded and
``channels_last`` via :func:`mnaszoo.optimize_for_inference`) or ``"onnxruntime"`` (an ONNX export),
after warm-up, reporting the median and the 10th/90th percentiles. The lookup-table predictor
(:mod:`.latency_table`) and its validation (:mod:`.validation`) build on it.

Timings are wall-clock (:func:`time.perf_counter`) under :func:`torch.inference_mode` with a fixed
number of intra-op threads; on CUDA the device is synchronised around every timed call.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn

from ..._validate import check_choice, check_device as validate_device, check_int
from ...deploy._timing import intra_op_threads, percentile, time_calls
from ...deploy.runtimes import LATENCY_BACKENDS, make_runner
from ...errors import ArgumentTypeError, InvalidArgumentError
from ...models.plan import NetworkPlan, resolve_plan
from ...models.specs import NetworkSpec
from ._kit_runner import cpu_name

__all__ = ["BACKENDS", "Backend", "LatencyStats", "measure_latency"]

Backend = Literal["torch", "torch-optimized", "onnxruntime", "executorch"]
BACKENDS: tuple[str, ...] = LATENCY_BACKENDS
"""The ways a network is run: eager PyTorch, optimised for inference, onnxruntime, ExecuTorch
(:data:`mnaszoo.deploy.runtimes.LATENCY_BACKENDS`, derived from the one list of runtimes)."""
if set(get_args(Backend)) != set(BACKENDS):  # pragma: no cover - a developer's mistake
    raise ImportError("timing.Backend must list the runtimes of LATENCY_BACKENDS")
_DEVICES = ("cpu", "cuda")


# --------------------------------------------------------------------------- argument checks


def check_backend(backend: object, *, per_layer: bool = False) -> str:
    """A latency backend's name; ``per_layer``: for the per-layer table, which cannot time
    ExecuTorch programs (they are timed in context only)."""
    name = check_choice("latency backend", backend, BACKENDS)
    if per_layer and name == "executorch":
        raise InvalidArgumentError(
            "The per-layer table does not time ExecuTorch programs; use the in-context"
            " predictor (predictor='context', --predictor context) for the executorch backend."
        )
    return name


def check_device(device: object) -> str:
    """``"cpu"`` or ``"cuda"`` (the current CUDA device), checked by the package's one device
    check; latency is timed on the current device only."""
    accepted = "accepted: 'cpu' or 'cuda' (the current CUDA device)"
    try:
        parsed = validate_device(device)
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"{error} Latency devices: {accepted}.") from error
    if parsed.type not in _DEVICES or parsed.index not in (None, 0):
        raise InvalidArgumentError(f"Unknown device {device!r}; {accepted}.")
    return str(parsed.type)


def check_threads(threads: object) -> int | None:
    return None if threads is None else check_int("threads", threads, minimum=1)


def as_plan(spec: object, what: str = "spec") -> NetworkPlan:
    if isinstance(spec, NetworkPlan):
        return spec
    if isinstance(spec, NetworkSpec):
        return resolve_plan(spec)
    raise ArgumentTypeError(
        f"{what} must be a NetworkSpec or a NetworkPlan (mnaszoo.models.plan.resolve_plan), got"
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


def time_module(
    module: nn.Module,
    shape: tuple[int, ...],
    *,
    backend: str,
    device: str,
    warmup: int,
    repeats: int,
) -> list[float]:
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(shape, generator=generator)
    with tempfile.TemporaryDirectory(prefix="mnaszoo-latency-") as tmpdir:
        runner = make_runner(
            module.eval(),
            backend,
            example=example,
            workdir=Path(tmpdir),
            threads=torch.get_num_threads(),
            device=device,
        )
        prepared = runner.prepare(example)
        return time_calls(
            lambda: runner.run(prepared), warmup=warmup, repeats=repeats, cuda=device == "cuda"
        )


def build_random(plan: NetworkPlan, num_classes: int) -> nn.Module:
    from ...models.factory import build

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
            ``config.in_chans``, else 3), or a :class:`~mnaszoo.models.specs.NetworkSpec` /
            :class:`~mnaszoo.models.plan.NetworkPlan`, built randomly initialised (latency does not
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
        >>> from mnaszoo.models.architectures import MNASNET_SMALL
        >>> stats = measure_latency(MNASNET_SMALL, image_size=64, repeats=5, threads=1)
        >>> stats.median_ms > 0
        True
    """
    backend_name = check_backend(backend)
    device = check_device(device)
    check_int("image_size", image_size, minimum=16)
    check_int("batch_size", batch_size, minimum=1)
    check_int("warmup", warmup, minimum=0)
    check_int("repeats", repeats, minimum=1)
    threads = check_threads(threads)
    check_int("num_classes", num_classes, minimum=0)
    if isinstance(model_or_spec, nn.Module):
        module = model_or_spec
    elif isinstance(model_or_spec, (NetworkSpec, NetworkPlan)):
        module = build_random(as_plan(model_or_spec), num_classes)
    else:
        raise ArgumentTypeError(
            "model_or_spec must be an nn.Module, a NetworkSpec or a NetworkPlan, got"
            f" {type(model_or_spec).__name__}."
        )
    in_chans = int(getattr(getattr(module, "config", None), "in_chans", 3))
    shape = (batch_size, in_chans, image_size, image_size)
    with intra_op_threads(threads) as n_threads:
        times = time_module(
            module, shape, backend=backend_name, device=device, warmup=warmup, repeats=repeats
        )
    return LatencyStats(
        median_ms=statistics.median(times) * 1e3,
        p10_ms=percentile(times, 0.1) * 1e3,
        p90_ms=percentile(times, 0.9) * 1e3,
        repeats=repeats,
        backend=backend_name,
        device=device,
        batch_size=batch_size,
        image_size=image_size,
        threads=n_threads,
    )


def device_name(device: str) -> str:
    """The GPU's name, or the CPU model as the OS reports it (the one definition, shared with
    the latency kit's runner)."""
    if device == "cuda":
        return str(torch.cuda.get_device_name())
    return cpu_name()


def runtime_version(backend: str) -> str:
    """What runs ``backend``, with its version: ``"torch 2.x"`` or ``"onnxruntime 1.x"``."""
    if backend == "onnxruntime":
        try:
            import onnxruntime

            return f"onnxruntime {onnxruntime.__version__}"
        except ImportError:
            return "onnxruntime not installed"
    if backend == "executorch":
        from .executorch_blocks import executorch_version

        return executorch_version()
    return f"torch {torch.__version__}"
