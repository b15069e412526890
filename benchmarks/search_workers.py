#!/usr/bin/env python3
"""Search trials per hour in-process and on local Ray clusters of 1 and 2 workers, side by side.

    python benchmarks/search_workers.py --budget 8 --output runs/workers

Every configuration runs the same digits search (random strategy, so one batch holds all
trials) from scratch in its own folder, sharing one latency table that is filled beforehand, so
what is timed is the training and scoring of the trials plus, for Ray, starting the cluster and
its workers. The configurations run in rounds (``--rounds``), one after another inside a round,
so load from elsewhere hits them alike. Prints and writes ``workers.json``: per configuration the
wall time of each search, the cluster start, and trials per hour with and without the start.
Needs ``mnaszoo[distributed,examples]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from mnaszoo.search.run.digits import search_digits
from mnaszoo.search.run.distributed import RayExecutor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("runs/workers"))
    parser.add_argument("--budget", type=int, default=8, help="trials per search (8)")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions of every setup (1)")
    parser.add_argument("--proxy-epochs", type=int, default=2, help="as mnaszoo search (2)")
    parser.add_argument("--train-limit", type=int, default=800, help="as mnaszoo search (800)")
    args = parser.parse_args()

    settings: dict[str, Any] = {
        "strategy": "random",
        "budget": args.budget,
        "seed": 0,
        "target_ms": 25.0,
        "proxy_epochs": args.proxy_epochs,
        "proxy_train_limit": args.train_limit,
        "calibrate": 0,
        "progress": False,
        "table_path": args.output / "latency_table.json",
    }
    args.output.mkdir(parents=True, exist_ok=True)
    # Fill the latency table (every layer of every proposal) so that no run measures latency.
    search_digits(args.output / "warmup", **{**settings, "proxy_epochs": 1, "proxy_train_limit": 2})

    setups: dict[str, dict[str, Any]] = {
        "in-process": {},
        "1 worker": {"workers": 1},
        "2 workers": {"workers": 2},
    }
    rows: dict[str, dict[str, list[float]]] = {
        name: {"seconds": [], "start_seconds": []} for name in setups
    }
    reference: list[Any] | None = None
    for round_ in range(args.rounds):
        for name, placement in setups.items():
            start_seconds = 0.0
            if placement:
                # The cluster start on its own, to tell it apart from the trials' time.
                started = time.perf_counter()
                RayExecutor(workers=placement["workers"]).close()
                start_seconds = time.perf_counter() - started
            folder = args.output / f"{name.replace(' ', '-')}-{round_}"
            shutil.rmtree(folder, ignore_errors=True)
            started = time.perf_counter()
            result = search_digits(folder, **settings, **placement)
            seconds = time.perf_counter() - started
            trials = [{**t.to_dict(), "seconds": None} for t in result.trials]
            if reference is None:
                reference = trials
            elif trials != reference:
                raise SystemExit(f"{name} found other trials than the first run")
            rows[name]["seconds"].append(seconds)
            rows[name]["start_seconds"].append(start_seconds)
            print(f"round {round_}: {name}: {seconds:.1f} s (cluster start {start_seconds:.1f} s)")

    summary = {}
    for name, row in rows.items():
        seconds = statistics.median(row["seconds"])
        start = statistics.median(row["start_seconds"])
        summary[name] = {
            **row,
            "trials_per_hour": 3600 * args.budget / seconds,
            "trials_per_hour_without_start": 3600 * args.budget / max(seconds - start, 1e-9),
        }
    data = {"budget": args.budget, "settings": {k: str(v) for k, v in settings.items()}, **summary}
    (args.output / "workers.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print("| setup | search (s) | cluster start (s) | trials/hour | without start |")
    print("|---|---:|---:|---:|---:|")
    for name, row in summary.items():
        print(
            f"| {name} | {statistics.median(row['seconds']):.1f}"
            f" | {statistics.median(row['start_seconds']):.1f}"
            f" | {row['trials_per_hour']:.0f} | {row['trials_per_hour_without_start']:.0f} |"
        )


if __name__ == "__main__":
    main()
