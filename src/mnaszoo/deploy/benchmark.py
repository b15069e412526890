"""Latency and throughput of the registered models on this machine.

:func:`run_benchmark` times each model at each batch size as a plain eager module, optimised for
inference (:func:`mnaszoo.deploy.optimize.optimize_for_inference`, when that module is
present) and exported to ONNX and run by onnxruntime (when :mod:`mnaszoo.deploy.exporting` and
``onnxruntime`` are installed). When ``timm`` or ``torchvision`` is installed, their builds of the
same architecture (random weights) are timed in the same loop, call for call, so machine noise
hits both alike.

Every candidate at one batch size is timed round-robin: one call of each, ``repeats`` times, after
``warmup`` untimed calls each. Times are wall-clock per call (:func:`time.perf_counter`) under
:func:`torch.inference_mode` with a fixed number of intra-op threads; rows report the median and
the 90th percentile. Achieved GFLOP/s is ``2 * MACs * batch / median``, set against this
machine's measured single-precision matrix-multiply peak (:func:`measure_matmul_peak`).
"""

from __future__ import annotations

import importlib
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._validate import check_int, renamed_input_size
from ..errors import InvalidArgumentError
from ..models.registry import get_entry
from ..models.summary import describe
from ..weights.manifest import load_manifest
from ._timing import intra_op_threads, percentile
from .runtimes import QUICK_RUNTIMES, RUNTIMES, Runner, make_runner

__all__ = [
    "DEFAULT_VARIANTS",
    "REFERENCE_MODELS",
    "REFERENCE_VARIANTS",
    "VARIANTS",
    "VARIANT_ALIASES",
    "Row",
    "measure_matmul_peak",
    "plot_accuracy_latency",
    "run_benchmark",
    "to_json",
    "to_markdown",
]

logger = logging.getLogger(__name__)


VARIANTS: tuple[str, ...] = RUNTIMES
"""The ways a mnaszoo model is timed: every runtime of :mod:`mnaszoo.deploy.runtimes` (eager,
optimised for inference, onnxruntime fp32, onnxruntime on the int8 model of
:func:`mnaszoo.quantize_int8`, and ExecuTorch's XNNPACK delegate on fp32 and int8 ``.pte``
programs; the int8 models are calibrated on random images: their speed is representative, their
accuracy is not; see docs/export.md and docs/deploy.md for accuracy)."""

DEFAULT_VARIANTS: tuple[str, ...] = QUICK_RUNTIMES
"""The variants timed unless others are asked for: ExecuTorch's take a minute or more to export
per model, so they are timed on request (``variants=``, ``mnaszoo bench --variants``)."""

VARIANT_ALIASES = {"plain": "torch", "optimized": "torch-optimized"}
"""Earlier names of two variants, still accepted."""

REFERENCE_VARIANTS = ("torch", "onnxruntime")
"""The variants timed for timm's and torchvision's models too (their own eager module, and their
export run by onnxruntime), when those variants are asked for."""

REFERENCE_MODELS: dict[str, tuple[tuple[str, str], ...]] = {
    "mnasnet_a1": (("timm", "semnasnet_100"),),
    "mnasnet_a1_050": (("timm", "semnasnet_050"),),
    "mnasnet_a1_075": (("timm", "semnasnet_075"),),
    "mnasnet_a1_140": (("timm", "semnasnet_140"),),
    "mnasnet_b1": (("timm", "mnasnet_100"), ("torchvision", "mnasnet1_0")),
    "mnasnet_b1_050": (("timm", "mnasnet_050"), ("torchvision", "mnasnet0_5")),
    "mnasnet_b1_075": (("timm", "mnasnet_075"), ("torchvision", "mnasnet0_75")),
    "mnasnet_b1_130": (("torchvision", "mnasnet1_3"),),
    "mnasnet_b1_140": (("timm", "mnasnet_140"),),
    "mnasnet_small": (("timm", "mnasnet_small"),),
}
"""The same architecture in timm and torchvision, by mnaszoo name: ``(library, model name)``."""


@dataclass(frozen=True)
class Row:
    """One timed candidate at one batch size.

    Attributes:
        model: the mnaszoo model name.
        implementation: ``"mnaszoo"``, ``"timm"`` or ``"torchvision"``.
        reference: the timm/torchvision model name (``""`` for mnaszoo's own rows).
        variant: one of :data:`VARIANTS` (references: one of :data:`REFERENCE_VARIANTS`).
        batch: images per call.
        image_size: input resolution (square); the name recorded in the JSON and CSV files.
        params: mnaszoo's parameter count (:func:`mnaszoo.describe`).
        macs: multiply-accumulates per image (:func:`mnaszoo.describe`).
        median_ms: median wall time of one call, milliseconds.
        p90_ms: 90th percentile of the wall time of one call, milliseconds.
        images_per_s: ``batch / median``.
        gflops: achieved GFLOP/s, ``2 * macs * batch / median``.
        peak_fraction: ``gflops`` over the measured matmul peak (``None`` without one).
        ratio: for a reference row, mnaszoo's median in the *same variant* over this row's
            median at the same batch (``< 1``: mnaszoo is faster); ``None`` for mnaszoo's own
            rows.
        top1: best reported ImageNet-1k top-1 of the model's published weights, if any.
        threads: :func:`torch.get_num_threads` during the run.
        repeats: timed calls.
        vs_onnxruntime: for mnaszoo's rows, this row's median over the onnxruntime (fp32)
            row's at the same batch (``< 1``: faster than onnxruntime); ``None`` without one.
        vs_torch: for mnaszoo's rows, this row's median over the eager (``torch``) row's.
    """

    model: str
    implementation: str
    reference: str
    variant: str
    batch: int
    image_size: int
    params: int
    macs: int
    median_ms: float
    p90_ms: float
    images_per_s: float
    gflops: float
    peak_fraction: float | None
    ratio: float | None
    top1: float | None
    threads: int
    repeats: int
    vs_onnxruntime: float | None = None
    vs_torch: float | None = None


def measure_matmul_peak(
    size: int = 2048, *, repeats: int = 10, threads: int | None = None
) -> float:
    """This machine's single-precision matrix-multiply rate, GFLOP/s.

    Args:
        size: the side of the square fp32 matrices multiplied.
        repeats: timed products (after two untimed ones); the median is reported.
        threads: intra-op threads (``None``: the current :func:`torch.get_num_threads`).

    Returns:
        ``2 * size**3 / median seconds / 1e9``.
    """
    check_int("size", size, minimum=1)
    check_int("repeats", repeats, minimum=1)
    import torch

    with intra_op_threads(threads), torch.inference_mode():
        a = torch.randn(size, size)
        b = torch.randn(size, size)
        out = torch.empty(size, size)
        for _ in range(2):
            torch.mm(a, b, out=out)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            times.append(time.perf_counter() - start)
    return 2.0 * size**3 / statistics.median(times) / 1e9


def _best_top1(model: str) -> float | None:
    values = [
        r.top1 for r in load_manifest().records.values() if r.model == model and r.top1 is not None
    ]
    return max(values) if values else None


def _reference(library: str, name: str) -> Any:
    """A timm or torchvision model in eval mode, random weights; ``None`` if not installed."""
    try:
        if library == "timm":
            import timm

            return timm.create_model(name, pretrained=False).eval()
        import torchvision.models

        return getattr(torchvision.models, name)(weights=None).eval()
    except ImportError:
        return None


@dataclass
class _Candidate:
    model: str
    implementation: str
    reference: str
    runner: Runner
    times: list[float]


def _try_runner(name: str, variant: str, model: Any, example: Any, threads: int, tmp: Path) -> Any:
    """A runner for ``model`` on ``variant``, or ``None`` (logged) when it cannot be made."""
    try:
        return make_runner(model, variant, example=example, workdir=tmp, threads=threads)
    except Exception as error:  # a missing extra, an export failure
        logger.warning("%s: skipping %r: %s", name, variant, error)
        return None


def _candidates(
    name: str,
    example: Any,
    variants: Sequence[str],
    compare_reference: bool,
    threads: int,
    tmp: Path,
) -> list[_Candidate]:
    from ..factory import create

    out: list[_Candidate] = []
    for variant in variants:
        runner = _try_runner(name, variant, create(name).eval(), example, threads, tmp)
        if runner is not None:
            out.append(_Candidate(name, "mnaszoo", "", runner, []))
    if compare_reference:
        for library, ref_name in REFERENCE_MODELS.get(name, ()):
            ref = _reference(library, ref_name)
            if ref is None:
                logger.info("%s: %s is not installed; no %s row", name, library, ref_name)
                continue
            for variant in REFERENCE_VARIANTS:
                if variant in variants:
                    runner = _try_runner(ref_name, variant, ref, example, threads, tmp)
                    if runner is not None:
                        out.append(_Candidate(name, library, ref_name, runner, []))
    return out


def run_benchmark(
    models: Sequence[str],
    *,
    batch_sizes: Sequence[int] = (1, 32),
    input_size: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    compare_reference: bool = True,
    threads: int | None = None,
    peak_gflops: float | None = None,
    image_size: int | None = None,
) -> list[Row]:
    """Time registered models (and their timm/torchvision twins) on this machine.

    Args:
        models: registered model names.
        batch_sizes: images per call; each is a separate round.
        input_size: square input resolution (224).
        repeats: timed calls per candidate (round-robin over the candidates).
        warmup: untimed calls per candidate before timing.
        variants: any of :data:`VARIANTS` (default :data:`DEFAULT_VARIANTS`); a variant whose
            module or runtime is missing is skipped (logged at INFO on the ``mnaszoo`` logger).
        compare_reference: also time timm's / torchvision's build of the same architecture
            (:data:`REFERENCE_MODELS`) when that library is installed.
        threads: intra-op threads for the run (``None``: keep :func:`torch.get_num_threads`).
        peak_gflops: the matmul peak to compare against; ``None`` measures it
            (:func:`measure_matmul_peak`) once, before the models.
        image_size: deprecated spelling of ``input_size`` (warns; goes in the next release).

    Returns:
        One :class:`Row` per model, batch size and candidate, in that order.

    Raises:
        UnknownModelError: a name that is not registered.
        InvalidArgumentError: an unknown variant, a non-positive size or count, or both
            ``input_size`` and ``image_size``.
    """
    import torch

    for name in models:
        get_entry(name)
    variants = [VARIANT_ALIASES.get(v, v) for v in variants]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InvalidArgumentError(f"Unknown variant(s) {unknown}; choose from {list(VARIANTS)}.")
    for b in batch_sizes:
        check_int("batch size", b, minimum=1)
    size = renamed_input_size(input_size, image_size)
    check_int("input_size", size, minimum=1)
    check_int("repeats", repeats, minimum=1)
    check_int("warmup", warmup, minimum=0)

    rows: list[Row] = []
    with (
        intra_op_threads(threads) as n_threads,
        torch.inference_mode(),
        tempfile.TemporaryDirectory(prefix="mnaszoo-bench-") as tmpdir,
    ):
        peak = measure_matmul_peak() if peak_gflops is None else peak_gflops
        for name in models:
            summary = describe(name, input_size=size)
            top1 = _best_top1(name)
            for batch in batch_sizes:
                torch.manual_seed(0)
                x = torch.randn(batch, 3, size, size)
                cands = _candidates(name, x, variants, compare_reference, n_threads, Path(tmpdir))
                logger.info(
                    "timing %s at batch %d: %s",
                    name,
                    batch,
                    ", ".join(c.reference or c.runner.runtime for c in cands),
                )
                # Inputs are prepared (NumPy for onnxruntime, channels_last, ...) outside the
                # timed calls, and the candidates take turns call by call, so that a burst of
                # machine noise hits them all alike.
                inputs = [c.runner.prepare(x) for c in cands]
                for cand, prepared in zip(cands, inputs, strict=True):
                    for _ in range(warmup):
                        cand.runner.run(prepared)
                for _ in range(repeats):
                    for cand, prepared in zip(cands, inputs, strict=True):
                        start = time.perf_counter()
                        cand.runner.run(prepared)
                        cand.times.append(time.perf_counter() - start)
                medians = {
                    (c.implementation, c.runner.runtime): statistics.median(c.times) for c in cands
                }
                for cand in cands:
                    base = medians.get(("mnaszoo", cand.runner.runtime))
                    median = statistics.median(cand.times)
                    gflops = 2.0 * summary.macs * batch / median / 1e9
                    is_ref = cand.implementation != "mnaszoo"
                    ort = medians.get(("mnaszoo", "onnxruntime"))
                    eager = medians.get(("mnaszoo", "torch"))
                    rows.append(
                        Row(
                            model=name,
                            implementation=cand.implementation,
                            reference=cand.reference,
                            variant=cand.runner.runtime,
                            batch=batch,
                            image_size=size,
                            params=summary.params,
                            macs=summary.macs,
                            median_ms=median * 1e3,
                            p90_ms=percentile(cand.times, 0.9) * 1e3,
                            images_per_s=batch / median,
                            gflops=gflops,
                            peak_fraction=gflops / peak if peak > 0 else None,
                            ratio=base / median if is_ref and base is not None else None,
                            top1=top1,
                            threads=n_threads,
                            repeats=repeats,
                            vs_onnxruntime=None if is_ref or ort is None else median / ort,
                            vs_torch=None if is_ref or eager is None else median / eager,
                        )
                    )
    return rows


def to_json(rows: Sequence[Row], *, peak_gflops: float | None = None) -> str:
    """The rows as JSON: ``{"torch": version, "threads": n, "peak_gflops": x, "rows": [...]}``."""
    import torch

    threads = rows[0].threads if rows else torch.get_num_threads()
    data = {
        "torch": torch.__version__,
        "threads": threads,
        "peak_gflops": peak_gflops,
        "rows": [asdict(r) for r in rows],
    }
    return json.dumps(data, indent=2)


def to_markdown(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (one line per row)."""
    header = (
        "| model | impl | variant | batch | params | MACs | median ms | p90 ms | img/s"
        " | GFLOP/s | % peak | mnaszoo/ref | / ort fp32 | / torch |"
    )
    lines = [header, "|" + "---|" * 4 + "---:|" * 10]
    for r in rows:
        impl = r.implementation if not r.reference else f"{r.implementation} {r.reference}"
        peak = "" if r.peak_fraction is None else f"{100 * r.peak_fraction:.1f}"
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        vs_ort = "" if r.vs_onnxruntime is None else f"{r.vs_onnxruntime:.2f}"
        vs_torch = "" if r.vs_torch is None else f"{r.vs_torch:.2f}"
        lines.append(
            f"| {r.model} | {impl} | {r.variant} | {r.batch} | {r.params / 1e6:.2f}M"
            f" | {r.macs / 1e6:.1f}M | {r.median_ms:.2f} | {r.p90_ms:.2f}"
            f" | {r.images_per_s:.1f} | {r.gflops:.1f} | {peak} | {ratio} | {vs_ort}"
            f" | {vs_torch} |"
        )
    return "\n".join(lines)


def plot_accuracy_latency(rows: Sequence[Row], path: str | Path, *, batch: int = 1) -> Path:
    """Reported top-1 of each published weight against measured latency, saved to ``path``.

    Uses mnaszoo's fastest fp32 variant per model at ``batch`` (the paper's figure, on this
    machine).

    Raises:
        ImportError: matplotlib is not installed (``pip install matplotlib``).
        InvalidArgumentError: no mnaszoo row at ``batch``.
    """
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError as error:
        raise ImportError(
            "plot_accuracy_latency needs matplotlib: `pip install matplotlib`."
        ) from error
    best: dict[str, Row] = {}
    for r in rows:
        # int8 rows are left out: the reported top-1 is that of the fp32 weights.
        mine = r.implementation == "mnaszoo" and r.batch == batch and "int8" not in r.variant
        if mine and (r.model not in best or r.median_ms < best[r.model].median_ms):
            best[r.model] = r
    if not best:
        raise InvalidArgumentError(f"No mnaszoo row at batch {batch} to plot.")
    records = load_manifest().records.values()
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, row in sorted(best.items()):
        published = [r for r in records if r.model == name and r.top1 is not None]
        if not published:
            continue
        ax.scatter([row.median_ms] * len(published), [r.top1 for r in published], label=name)
        for record in published:
            text = f"{record.id} ({row.variant})"
            ax.annotate(text, (row.median_ms, record.top1), fontsize=8)
    ax.set_xlabel(
        f"median latency at batch {batch}, ms ({next(iter(best.values())).threads} threads)"
    )
    ax.set_ylabel("reported ImageNet-1k top-1, %")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out
