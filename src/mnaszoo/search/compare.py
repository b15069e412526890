"""Comparing search strategies: equal budgets over several seeds on the digits proxy."""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

from .._validate import check_choice, check_int
from ..errors import InvalidArgumentError
from ._session import (
    DEFAULT_BUDGET,
    checked_setup,
    run_one,
    run_settings,
    write_json,
)
from .context_fit import CALIBRATION_NETWORKS
from .distributed import check_placement
from .latency_setup import validate_latency
from .runner import STRATEGIES, SearchResult

__all__ = ["compare_strategies"]

logger = logging.getLogger(__name__)


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def _run_stats(result: SearchResult, target_ms: float) -> dict[str, Any]:
    trials = result.trials
    last_half = trials[len(trials) // 2 :]
    return {
        "trials": len(trials),
        "best_index": result.best.index,
        "best_reward": result.best.reward,
        "best_accuracy": result.best.accuracy,
        "best_latency_ms": result.best.latency_ms,
        "last_half_mean_reward": statistics.fmean(t.reward for t in last_half),
        "meeting_target": sum(t.latency_ms <= target_ms for t in trials),
        "seconds": math.fsum(t.seconds for t in trials),
    }


def _comparison_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# Search strategies on digits: {data['budget']} trials per run,"
        f" seeds {', '.join(map(str, data['seeds']))}",
        "",
        f"Target T = {data['target_ms']:g} ms ({data['target_source']}), {data['reward']} reward;"
        f" latency at {data['image_size']} px; the same latency table and proxy task for every"
        " run.",
        "Mean ± standard deviation over seeds.",
        "",
        "| strategy | runs | best reward | best accuracy | mean reward, last half"
        " | trials meeting target |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in data["strategies"].items():
        agg = row["aggregate"]
        lines.append(
            f"| {name} | {len(row['runs'])}"
            f" | {agg['best_reward']['mean']:.4f} ± {agg['best_reward']['std']:.4f}"
            f" | {100 * agg['best_accuracy']['mean']:.1f}"
            f" ± {100 * agg['best_accuracy']['std']:.1f} %"
            f" | {agg['last_half_mean_reward']['mean']:.4f}"
            f" ± {agg['last_half_mean_reward']['std']:.4f}"
            f" | {agg['meeting_target']['mean']:.1f} ± {agg['meeting_target']['std']:.1f}"
            f" / {data['budget']} |"
        )
    return "\n".join(lines) + "\n"


def compare_strategies(
    output: str | os.PathLike[str],
    *,
    strategies: Sequence[str] = ("controller", "random"),
    seeds: Sequence[int] = (0, 1, 2),
    budget: int = DEFAULT_BUDGET,
    target_ms: float | None = None,
    reward: str = "soft",
    latency_backend: str = "torch",
    image_size: int = 224,
    proxy_size: int = 16,
    proxy_epochs: int = 2,
    proxy_train_limit: int | None = 800,
    proxy_batch_size: int = 64,
    proxy_lr: float = 1e-2,
    proxy_seed: int = 0,
    threads: int = 1,
    table_path: str | os.PathLike[str] | None = None,
    calibrate: int = CALIBRATION_NETWORKS,
    validate: int = 0,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Run each strategy once per seed with equal budgets, and tabulate the results.

    Every run is a :func:`search_digits` run in ``output/<strategy>-seed<seed>/`` (resumable the
    same way), and all share one latency table, one target and one proxy task, so the strategies
    differ only in which networks they propose. ``output/comparison.json`` holds the per-run and
    aggregate figures, ``output/comparison.md`` a Markdown table: per strategy, the mean ±
    standard deviation over seeds of the best reward, the best reward's accuracy, the mean reward
    of the last half of the trials (how well the strategy has converged on good networks) and the
    number of trials meeting the target.

    Args:
        output: the output folder (created).
        strategies: strategy names (see :func:`search_digits`), each run for every seed.
        seeds: the seeds.
        budget: trials per run.
        target_ms: see :func:`search_digits`.
        reward: see :func:`search_digits`.
        latency_backend: see :func:`search_digits`.
        image_size: see :func:`search_digits`.
        proxy_size: see :func:`search_digits`.
        proxy_epochs: see :func:`search_digits`.
        proxy_train_limit: see :func:`search_digits`.
        proxy_batch_size: see :func:`search_digits`.
        proxy_lr: see :func:`search_digits`.
        proxy_seed: see :func:`search_digits`.
        threads: see :func:`search_digits`.
        table_path: see :func:`search_digits`; default ``output/latency_table.json``.
        calibrate: see :func:`search_digits`.
        validate: held-out networks to validate the latency table on, once, after all runs
            (stored in ``comparison.json``); 0 skips it.
        progress: show a progress line per run on stderr.
        workers: train this many trials at once on a local Ray cluster (``mnaszoo[distributed]``);
            ``None``: one after another in this process. The trials are the same either way.
        ray_address: train the trials on the running Ray cluster at this address instead (see
            :func:`~mnaszoo.search.runner.run_search`).

    Returns:
        The data written to ``comparison.json``.

    Raises:
        InvalidArgumentError: no strategies or seeds, a repeated one, or a bad setting.
    """
    if isinstance(strategies, str) or not strategies:
        raise InvalidArgumentError("strategies must be a non-empty sequence of strategy names.")
    if isinstance(seeds, (str, bytes)) or not seeds:
        raise InvalidArgumentError("seeds must be a non-empty sequence of integers.")
    names = [check_choice("strategy", s, sorted(STRATEGIES)) for s in strategies]
    check_placement(workers, ray_address, threads)
    seed_list = [check_int("seed", s, minimum=0) for s in seeds]
    if len(set(names)) != len(names) or len(set(seed_list)) != len(seed_list):
        raise InvalidArgumentError("strategies and seeds must not repeat.")
    folder, proxy, setup = checked_setup(
        output,
        reward=reward,
        budget=budget,
        validate=validate,
        progress=progress,
        proxy={
            "proxy_size": proxy_size,
            "proxy_epochs": proxy_epochs,
            "proxy_train_limit": proxy_train_limit,
            "proxy_batch_size": proxy_batch_size,
            "proxy_lr": proxy_lr,
            "proxy_seed": proxy_seed,
        },
        table_path=table_path,
        target_ms=target_ms,
        latency_backend=latency_backend,
        image_size=image_size,
        threads=threads,
        calibrate=calibrate,
    )
    started = time.perf_counter()
    rows: dict[str, Any] = {}
    for name in names:
        runs = []
        for seed in seed_list:
            if progress:
                logger.info("%s, seed %d", name, seed)
            settings = run_settings(
                setup,
                strategy=name,
                seed=seed,
                reward=reward,
                latency_backend=latency_backend,
                image_size=image_size,
                threads=threads,
                **proxy,
            )
            result = run_one(
                folder / f"{name}-seed{seed}",
                setup,
                strategy=name,
                budget=budget,
                seed=seed,
                reward=reward,
                progress=progress,
                validate=0,
                settings=settings,
                placement={"workers": workers, "ray_address": ray_address},
            )
            runs.append({"seed": seed, **_run_stats(result, setup.target_ms)})
        keys = ("best_reward", "best_accuracy", "last_half_mean_reward", "meeting_target")
        rows[name] = {
            "runs": runs,
            "aggregate": {k: _mean_std([float(r[k]) for r in runs]) for k in keys},
        }
    report = None
    if validate:
        report = validate_latency(setup.table, validate, seed=0)
        setup.table.save(setup.table_path)
    data = {
        "task": "digits",
        "budget": budget,
        "seeds": seed_list,
        "target_ms": setup.target_ms,
        "target_source": setup.target_source,
        "reward": reward,
        "image_size": image_size,
        "latency_backend": latency_backend,
        "latency_table": str(setup.table_path),
        "latency_validation": None if report is None else report.to_dict(),
        "strategies": rows,
        "seconds": time.perf_counter() - started,
        "timings": setup.timings,
    }
    write_json(folder / "comparison.json", data)
    (folder / "comparison.md").write_text(_comparison_markdown(data), encoding="utf-8")
    return data
