"""How repeatable is a network's measured latency? The ceiling for any latency predictor.

Times the latency predictor's 30 held-out networks (224 px, batch 1, one thread) end to end
twice, in two interleaved passes of the same process, exactly as ``latency_predictor.py``
measures them, and compares the passes: a predictor cannot rank networks better than the
measurement it is checked against agrees with itself.

    python benchmarks/eager_repeatability.py --backend torch
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 \\
        python benchmarks/eager_repeatability.py --backend torch

The second line runs the same with glibc's allocator told to keep freed memory instead of
returning it to the OS (no ``mmap`` per large tensor, no trimming): eager torch allocates every
layer's output anew, and the page faults of fresh mappings make its latency vary.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import torch

from mnaszoo.models.factory import build
from mnaszoo.search.latency._runners import torch_call
from mnaszoo.search.latency.context_table import ContextLatencyTable
from mnaszoo.search.latency.open import sample_specs
from mnaszoo.search.latency.validation import spearman_correlation
from mnaszoo.search.space import SearchSpace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=["torch", "torch-optimized"], default="torch")
    parser.add_argument("--networks", type=int, default=30)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--out", help="write both passes' timings here (JSON)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    specs = sample_specs(SearchSpace(), args.networks, "mnaszoo-latency-held-out", "held_out")
    table = ContextLatencyTable(
        backend=args.backend,
        image_size=args.input_size,
        num_classes=1000,
        clock="thread",
        retries=1,  # as latency_predictor.py
    )
    calls = []
    for spec in specs:
        with torch.random.fork_rng(devices=[]):
            model = build(spec, num_classes=1000)
        shape = (1, 3, args.input_size, args.input_size)
        calls.append(torch_call(model, shape, args.backend == "torch-optimized"))
    names = [spec.name for spec in specs]
    started = time.perf_counter()
    first = [t.ms for t in table.time_calls(calls, names)]
    second = [t.ms for t in table.time_calls(calls, names)]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    apart = statistics.fmean(abs(a - b) / b for a, b in zip(first, second, strict=True))
    allocator = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    result = {
        "backend": args.backend,
        "networks": len(specs),
        "allocator": allocator or "glibc defaults",
        "spearman": spearman_correlation(first, second),
        "mean_abs_difference": apart,
        "mean_ms": [statistics.fmean(first), statistics.fmean(second)],
        "kernel_seconds": usage.ru_stime,
        "seconds": time.perf_counter() - started,
    }
    print(
        f"{args.backend} ({result['allocator']}): two passes over {len(specs)} networks agree"
        f" with Spearman {result['spearman']:.3f}, {apart:.1%} apart on average; mean"
        f" {result['mean_ms'][0]:.1f} / {result['mean_ms'][1]:.1f} ms; {usage.ru_stime:.1f} s"
        " in the kernel"
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            json.dump({**result, "first_ms": first, "second_ms": second}, out, indent=1)


if __name__ == "__main__":
    main()
