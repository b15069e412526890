#!/usr/bin/env python3
"""A search that predicts ExecuTorch latency, checked against its best network's real ``.pte``.

Runs two searches with ``latency_backend="executorch"`` at the deployment resolution (224 by
default, one thread): one on the digits, one on a folder of synthetic photos (three classes of
shapes, as in ``train_from_search.py``). For each, the best network is built from its spec,
written with ``mnaszoo.export(..., format="executorch")`` exactly as a user ships it, and timed in
ExecuTorch's own runtime: the median of ``--calls`` calls on one thread, wall clock and the
calling thread's CPU time. The table compares that with the latency the search predicted::

    python benchmarks/search_executorch.py --work /tmp/search_et --output search_executorch.json

Run it on an idle machine. Lowered layer programs are cached (``$MNASZOO_CACHE``), so a second
run costs the proxy training and the timing only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _environment import machine
from train_from_search import make_folders

import mnaszoo
from mnaszoo.models.specs import NetworkSpec
from mnaszoo.search import search_digits, search_images


def time_pte(path: Path, size: int, calls: int) -> dict[str, float]:
    """Median wall and thread-CPU milliseconds of ``calls`` runs of ``path``'s ``forward``."""
    from mnaszoo.search.latency.executorch_blocks import pte_call

    run = pte_call(path.read_bytes(), (1, 3, size, size), threads=1)  # as the search times it
    for _ in range(5):
        run()
    wall, cpu = [], []
    for _ in range(calls):
        began, began_cpu = time.perf_counter(), time.thread_time()
        run()
        cpu.append(time.thread_time() - began_cpu)
        wall.append(time.perf_counter() - began)
    return {"wall_ms": statistics.median(wall) * 1e3, "cpu_ms": statistics.median(cpu) * 1e3}


def check(
    label: str, spec: NetworkSpec, predicted: float, args: argparse.Namespace
) -> dict[str, Any]:
    """Export ``spec`` to ``.pte`` and compare its measured latency with ``predicted``."""
    model = mnaszoo.build(spec, num_classes=args.num_classes).eval()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "best.pte"
        mnaszoo.export(model, path, format="executorch", input_size=args.input_size)
        measured = time_pte(path, args.input_size, args.calls)
    error = predicted / measured["cpu_ms"] - 1.0
    return {"search": label, "predicted_ms": predicted, **measured, "error": error}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("search_executorch"))
    parser.add_argument("--budget", type=int, default=8, help="trials per search (8)")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--calls", type=int, default=50, help="timed calls of the .pte (50)")
    parser.add_argument("--per-class", type=int, default=40, help="photos per class (40)")
    parser.add_argument("--output", type=Path, default=None, help="write the JSON record here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    common = {
        "budget": args.budget,
        "latency_backend": "executorch",
        "input_size": args.input_size,
        "threads": 1,
        "progress": False,
    }
    rows = []
    digits = search_digits(args.work / "digits", **common)
    args.num_classes = 10
    rows.append(check("digits", digits.best.network_spec(), digits.best.latency_ms, args))
    photos, _ = make_folders(args.work / "photos", args.per_class, 0.0, seed=0)
    images, _ = search_images(args.work / "images", photos, **common)
    args.num_classes = 3
    rows.append(check("image folder", images.best.network_spec(), images.best.latency_ms, args))
    print(f"\n{machine()}, executorch, 1 thread, {args.input_size} px\n")
    print("| search | predicted | measured (CPU) | measured (wall) | error |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['search']} | {row['predicted_ms']:.2f} ms | {row['cpu_ms']:.2f} ms |"
            f" {row['wall_ms']:.2f} ms | {100 * row['error']:+.1f}% |"
        )
    if args.output is not None:
        record = {"machine": machine(), "settings": {k: str(v) for k, v in vars(args).items()}}
        args.output.write_text(json.dumps({**record, "rows": rows}, indent=1) + "\n")
    return 0 if all(abs(r["error"]) <= 0.10 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
