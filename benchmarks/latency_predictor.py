"""How right is the in-context latency predictor? MAPE and Spearman on held-out networks.

For each backend, a :class:`mnaszoo.search.latency.context_table.ContextLatencyTable` times every
layer of
the networks in context. Then 8 calibration networks and 30 other random networks of the default
search space are measured end to end as a user runs them (``mnaszoo.build``;
``optimize_for_inference``; for onnxruntime the real ``mnaszoo.export`` ONNX file of the
BatchNorm-folded model), in one interleaved batch; the calibration is fitted on the 8, and the
predictions for the 30 held-out networks are compared with their measurements.

    python benchmarks/latency_predictor.py --backends torch torch-optimized onnxruntime

Prints one Markdown row per backend and writes ``--out`` (JSON with every prediction and
measurement). Timings use one thread; ``--clock thread`` (CPU time of the timing thread) makes
them robust to other processes on a shared machine, ``--clock wall`` is elapsed time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from mnaszoo.models.factory import build
from mnaszoo.models.specs import NetworkSpec
from mnaszoo.search.latency._runners import Call, ort_call, torch_call
from mnaszoo.search.latency.calibration import CALIBRATION_NETWORKS
from mnaszoo.search.latency.context_table import ContextLatencyTable
from mnaszoo.search.latency.open import CALIBRATION_SEED, sample_specs
from mnaszoo.search.latency.steady import SteadyTiming
from mnaszoo.search.latency.validation import spearman_correlation
from mnaszoo.search.space import SearchSpace


def exported_call(spec: NetworkSpec, image_size: int, num_classes: int, folder: Path) -> Call:
    """The network as ``mnaszoo export`` writes it (BatchNorm folded), in onnxruntime."""
    from mnaszoo.deploy.onnx_runtime import export_folded

    with torch.random.fork_rng(devices=[]):
        model = build(spec, num_classes=num_classes).eval()
    path = folder / f"{spec.name}.onnx"
    export_folded(model, path, (image_size, image_size))
    return ort_call(path.read_bytes(), (1, 3, image_size, image_size), 1)


def end_to_end(
    specs: list[NetworkSpec],
    table: ContextLatencyTable,
    args: argparse.Namespace,
    folder: Path,
) -> list[SteadyTiming]:
    backend = table.backend
    calls: list[Call] = []
    for spec in specs:
        if backend == "onnxruntime":
            calls.append(exported_call(spec, args.input_size, args.num_classes, folder))
        else:
            with torch.random.fork_rng(devices=[]):
                model = build(spec, num_classes=args.num_classes)
            shape = (1, 3, args.input_size, args.input_size)
            calls.append(torch_call(model, shape, backend == "torch-optimized"))
    # In the table's units: interleaved with its reference block (see time_calls).
    timings = table.time_calls(calls, [s.name for s in specs])
    noisy = sum(t.noisy for t in timings)
    if noisy:
        print(f"  {backend}: {noisy} of {len(timings)} end-to-end timings stayed noisy")
    return timings


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    space = SearchSpace()
    calibration = sample_specs(space, args.calibration, CALIBRATION_SEED, "calibration")
    held_out = sample_specs(space, args.held_out, "mnaszoo-latency-held-out", "held_out")
    table = ContextLatencyTable(
        backend=backend,
        image_size=args.input_size,
        num_classes=args.num_classes,
        clock=args.clock,
        rounds=args.rounds,
        per_round=args.per_round,
        max_spread=args.max_spread,
        retries=args.retries,
    )
    started = time.perf_counter()
    table.prefill(calibration + held_out)
    table_seconds = time.perf_counter() - started
    # The calibration and held-out networks are timed end to end in one interleaved batch, all
    # as users run them (for onnxruntime: the real export); the fit sees the calibration ones.
    with tempfile.TemporaryDirectory(prefix="mnaszoo-bench-") as folder:
        timings = end_to_end(calibration + held_out, table, args, Path(folder))
    fit = table.fit_calibration(calibration, timings[: len(calibration)])
    predicted = [table.predict(spec) for spec in held_out]
    measured = [t.ms for t in timings[len(calibration) :]]
    errors = [abs(p - m) / m for p, m in zip(predicted, measured, strict=True)]
    noisy_entries = sum(t.noisy for t in table.entries.values())
    return {
        "backend": backend,
        "networks": len(held_out),
        "mape": sum(errors) / len(errors),
        "max_error": max(errors),
        "within_10pct": sum(e <= 0.10 for e in errors) / len(errors),
        "spearman": spearman_correlation(predicted, measured),
        "measured_ms": measured,
        "predicted_ms": predicted,
        "calibration": {
            "scale": fit.scale,
            "per_layer_ms": fit.per_layer_ms,
            "offset": fit.offset,
            "fit_mape": fit.fit_mape,
            "samples": fit.samples,
            "form": fit.form,
            "loo_mape": fit.loo_mape,
        },
        # Everything needed to refit offline: raw sums, layer counts, all end-to-end timings.
        "raw_sums_ms": [table.predict_raw(s) for s in calibration + held_out],
        "layers": [len(table.layers(s)) for s in calibration + held_out],
        "end_to_end": [t.to_dict() for t in timings],
        "entries": len(table),
        "noisy_entries": noisy_entries,
        "table_seconds": table_seconds,
        "fingerprint": table.fingerprint,
    }


def refit(path: str) -> list[dict[str, Any]]:
    """Recompute the figures of a saved run with the current calibration code (no timing)."""
    from mnaszoo.search.latency.calibration import fit_context_calibration

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = []
    for row in data["results"]:
        n = data["args"]["calibration"]
        raw, layers = row["raw_sums_ms"], row["layers"]
        timings = [SteadyTiming.from_dict(t, "timing") for t in row["end_to_end"]]
        fit = fit_context_calibration(
            raw[:n], layers[:n], timings[:n], max_spread=data["args"]["max_spread"]
        )
        predicted = [fit.apply(t, k) for t, k in zip(raw[n:], layers[n:], strict=True)]
        measured = [t.ms for t in timings[n:]]
        errors = [abs(p - m) / m for p, m in zip(predicted, measured, strict=True)]
        rows.append(
            {
                **row,
                "mape": sum(errors) / len(errors),
                "max_error": max(errors),
                "within_10pct": sum(e <= 0.10 for e in errors) / len(errors),
                "spearman": spearman_correlation(predicted, measured),
                "predicted_ms": predicted,
                "calibration": {
                    "form": fit.form,
                    "loo_mape": fit.loo_mape,
                    "scale": fit.scale,
                    "per_layer_ms": fit.per_layer_ms,
                    "offset": fit.offset,
                },
            }
        )
    return rows


def _print_row(row: dict[str, Any]) -> None:
    print(
        f"| {row['backend']} | {row['networks']} | {row['mape']:.1%} | {row['max_error']:.1%} |"
        f" {row['within_10pct']:.0%} | {row['spearman']:.3f} | {row['calibration']['form']} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="+", default=["torch", "torch-optimized", "onnxruntime"]
    )
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--held-out", type=int, default=30)
    parser.add_argument("--calibration", type=int, default=CALIBRATION_NETWORKS)
    parser.add_argument("--clock", choices=("wall", "thread"), default="thread")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--max-spread", type=float, default=0.2)
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--out", default="latency_predictor.json")
    parser.add_argument(
        "--refit", nargs="+", metavar="JSON", help="recompute saved runs' figures, no timing"
    )
    args = parser.parse_args()
    print("| backend | networks | MAPE | worst | within 10% | Spearman | calibration |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    if args.refit:
        for path in args.refit:
            for row in refit(path):
                _print_row(row)
        return
    torch.set_num_threads(1)
    results = []
    for backend in args.backends:
        row = run_backend(backend, args)
        results.append(row)
        _print_row(row)
    Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
