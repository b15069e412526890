#!/usr/bin/env python3
"""Controller versus random search on synthetic rewards, over many seeds with equal budgets.

Training a proxy model costs seconds per trial, so a real search (examples/search_digits.py)
can afford only a few seeds of a few dozen trials. This script measures the search strategies
themselves on rewards that cost nothing, where the optimum is known:

* ``match``: accuracy = the fraction of the 42 tokens equal to a hidden target architecture
  (one random architecture per seed); the best possible reward is 1.0.
* ``mnas``: the paper's soft reward ACC x (LAT/T)^-0.07 with LAT = the analytic MACs of the
  sampled network at 224x224 (scaled to "ms") and ACC a hidden additive function of the choices
  (a random per-choice quality per seed, squashed into [0.5, 0.9]): accuracy and latency pull
  apart as in a real search.

    python benchmarks/search_synthetic.py --seeds 10 --budget 300 --json-out synthetic.json

For each strategy it prints the mean (and standard deviation) over seeds of the best reward
found, the mean reward of the last quarter of the trials, and the trial at which the best was
first reached.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnaszoo.models.counting import count_macs
from mnaszoo.models.plan import resolve_plan
from mnaszoo.models.specs import NetworkSpec
from mnaszoo.search import SearchSpace
from mnaszoo.search.reward import Reward
from mnaszoo.search.run.runner import run_search

STAGE_FIELDS = ("kind", "expansion", "kernel", "se_ratio", "skip", "out_channels", "repeats")


def match_task(space: SearchSpace, seed: int) -> tuple[Callable[[NetworkSpec], float], Any]:
    target = space.to_spec(space.sample(random.Random(10_000 + seed))).stages

    def score(spec: NetworkSpec) -> float:
        # The fraction of the target's stage fields this spec gets right (1.0 only for it).
        hits = sum(
            getattr(mine, name) == getattr(theirs, name)
            for mine, theirs in zip(spec.stages, target, strict=True)
            for name in STAGE_FIELDS
        )
        return hits / (len(target) * len(STAGE_FIELDS))

    return score, lambda spec: 1.0


def mnas_task(space: SearchSpace, seed: int) -> tuple[Callable[[NetworkSpec], float], Any]:
    quality: dict[str, float] = {}

    def q(index: int, name: str, value: object) -> float:
        # A hidden, seeded quality per (block, field, value): drawn on first use.
        key = f"{seed}/{index}/{name}/{value}"
        if key not in quality:
            quality[key] = random.Random(key).random()
        return quality[key]

    def score(spec: NetworkSpec) -> float:
        values = [
            q(index, name, getattr(stage, name))
            for index, stage in enumerate(spec.stages)
            for name in STAGE_FIELDS
        ]
        return 0.5 + 0.4 * statistics.fmean(values)

    def latency(spec: NetworkSpec) -> float:
        return count_macs(resolve_plan(spec), input_size=224) / 1e7  # ~30 "ms" for the base

    return score, latency


TASKS = {"match": match_task, "mnas": mnas_task}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--strategies", nargs="+", default=["controller", "ppo", "random"])
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    space = SearchSpace()
    base_latency = mnas_task(space, 0)[1](space.to_spec(space.base_tokens()))
    results: dict[str, Any] = {"budget": args.budget, "seeds": args.seeds, "tasks": {}}
    for task in args.tasks:
        rows: dict[str, dict[str, list[float]]] = {}
        for strategy in args.strategies:
            best, tail, first = [], [], []
            for seed in range(args.seeds):
                score, latency = TASKS[task](space, seed)
                reward = (
                    Reward(target_ms=1.0, alpha=0.0, beta=0.0)
                    if task == "match"
                    else Reward.soft(0.8 * base_latency)
                )
                result = run_search(
                    space,
                    latency=latency,
                    score=score,
                    reward=reward,
                    strategy=strategy,
                    budget=args.budget,
                    seed=seed,
                    progress=False,
                )
                rewards = [t.reward for t in result.trials]
                top = max(rewards)
                best.append(top)
                tail.append(statistics.fmean(rewards[-max(1, len(rewards) // 4) :]))
                first.append(float(rewards.index(top)))
            rows[strategy] = {"best": best, "last_quarter_mean": tail, "first_best_at": first}
            print(
                f"{task:6s} {strategy:10s} best {statistics.fmean(best):.4f}"
                f" ± {statistics.pstdev(best):.4f}   last-quarter mean"
                f" {statistics.fmean(tail):.4f} ± {statistics.pstdev(tail):.4f}"
                f"   best first at trial {statistics.fmean(first):.0f}",
                flush=True,
            )
        results["tasks"][task] = rows
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
