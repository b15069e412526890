"""``mnaszoo bench``: latency and throughput of the models on this machine."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from .._io import check_writable
from ..deploy.runtimes import QUICK_RUNTIMES as DEFAULT_VARIANTS, RUNTIMES as VARIANTS
from ..errors import InvalidArgumentError
from ..models.registry import get_entry, list_models
from ._format import write_output
from ._options import GLOB, add_input_size, non_negative_int, positive_int

NAME = "bench"
HELP = "latency and throughput on this machine"
DESCRIPTION = (
    "Time models at each batch size on each runtime: torch (eager), torch-optimized"
    " (BatchNorm folded), onnxruntime and onnxruntime-int8 (where available; executorch and"
    " executorch-int8 on request), plus timm's"
    " and torchvision's builds of the same architecture (random weights) when installed,"
    " call for call in the same loop. Prints a Markdown table: median/p90 ms, images/s,"
    " GFLOP/s against the measured fp32 matmul peak, mnaszoo/reference latency ratios, and each"
    " row's time over onnxruntime fp32's and eager torch's."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument(
        "models", nargs="*", metavar="MODEL", help="names or shell patterns (default: all)"
    )
    sub.add_argument(
        "--batch-sizes",
        type=positive_int,
        nargs="+",
        default=[1, 32],
        metavar="N",
        help="(1 32)",
    )
    add_input_size(sub, help="input resolution (224)")
    sub.add_argument("--repeats", type=positive_int, default=20, metavar="N", help="(20)")
    sub.add_argument("--warmup", type=non_negative_int, default=3, metavar="N", help="(3)")
    sub.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        metavar="LIST",
        help=f"comma-separated, of {','.join(VARIANTS)} (default: all but executorch's, which"
        " need mnaszoo[edge] and take minutes to export)",
    )
    sub.add_argument(
        "--no-reference", action="store_true", help="skip the timm/torchvision comparison"
    )
    sub.add_argument(
        "--threads", type=positive_int, metavar="N", help="intra-op threads (default: torch's)"
    )
    sub.add_argument(
        "--peak-size",
        type=positive_int,
        default=2048,
        metavar="N",
        help="side of the fp32 matmul that measures the peak (2048)",
    )
    sub.add_argument("--json", action="store_true", help="print JSON instead of the table")
    sub.add_argument("--json-out", metavar="FILE", help="also write the JSON to FILE")
    sub.add_argument(
        "--plot", metavar="FILE", help="save a top-1 vs latency plot (needs matplotlib)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from ..deploy import benchmark

    names: list[str] = []
    for pattern in args.models or ["*"]:
        matched = list_models(pattern) if GLOB & set(pattern) else [pattern]
        if not matched:
            raise InvalidArgumentError(f"No model matches {pattern!r}; `mnaszoo list` shows them.")
        names += [n for n in matched if n not in names]
    for name in names:  # fail before the (slow) peak measurement
        get_entry(name)
    if args.json_out is not None:  # before the (long) benchmark, not after it
        check_writable(Path(args.json_out), "--json-out")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    peak = benchmark.measure_matmul_peak(args.peak_size, threads=args.threads)
    rows = benchmark.run_benchmark(
        names,
        batch_sizes=args.batch_sizes,
        input_size=args.input_size,
        repeats=args.repeats,
        warmup=args.warmup,
        variants=variants,
        compare_reference=not args.no_reference,
        threads=args.threads,
        peak_gflops=peak,
    )
    text = benchmark.to_json(rows, peak_gflops=peak)
    if args.plot is not None:
        benchmark.plot_accuracy_latency(rows, args.plot)
    if args.json:
        print(text)
    else:
        threads = rows[0].threads if rows else args.threads
        print(
            f"torch {importlib.import_module('torch').__version__}, {threads} threads,"
            f" fp32 matmul peak {peak:.1f} GFLOP/s"
        )
        print(benchmark.to_markdown(rows))
    if args.json_out is not None:
        write_output(Path(args.json_out), text + "\n")
    return 0
