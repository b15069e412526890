"""Comparing search strategies: equal budgets over several seeds on the digits proxy."""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..._validate import check_choice, check_int
from ...errors import InvalidArgumentError
from ..config import SearchConfig
from ..latency.open import validate_latency
from .launch import open_setup, run_configured_one
from .resume import check_resume
from .runner import STRATEGIES, SearchResult
from .session import write_json

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
    config: SearchConfig | None = None,
    **settings: Any,
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
        output: the output folder; each run goes to ``output/<strategy>-seed<seed>/``.
        strategies: strategy names, each run once per seed.
        seeds: the strategies' seeds.
        config: the shared settings (:class:`~mnaszoo.search.config.SearchConfig`, digits);
            its strategy and seed are replaced by each run's.
        **settings: a shorthand for fields of ``config`` as in :func:`search_digits`;
            ``validate`` times held-out networks once, after all runs (in
            ``comparison.json``).

    Returns:
        The data written to ``comparison.json``.

    Raises:
        InvalidArgumentError: no strategies or seeds, a repeated one, or a bad setting.

    Example:
        A demonstration budget (one trial per run, 32 training images, no calibration):

        >>> import os, tempfile
        >>> output = tempfile.mkdtemp()
        >>> table = compare_strategies(
        ...     output, strategies=("controller", "random"), seeds=(0,), budget=1,
        ...     proxy_epochs=1, proxy_train_limit=32, input_size=32, calibrate=0, progress=False,
        ... )
        >>> runs = table["strategies"]["random"]["runs"]
        >>> sorted(table["strategies"]), [run["trials"] for run in runs]
        (['controller', 'random'], [1])
        >>> sorted(os.listdir(output))  # doctest: +NORMALIZE_WHITESPACE
        ['comparison.json', 'comparison.md', 'controller-seed0', 'latency_table.json',
         'random-seed0']
    """
    if isinstance(strategies, str) or not strategies:
        raise InvalidArgumentError("strategies must be a non-empty sequence of strategy names.")
    if isinstance(seeds, (str, bytes)) or not seeds:
        raise InvalidArgumentError("seeds must be a non-empty sequence of integers.")
    names = [check_choice("strategy", s, sorted(STRATEGIES)) for s in strategies]
    seed_list = [check_int("seed", s, minimum=0) for s in seeds]
    if len(set(names)) != len(names) or len(set(seed_list)) != len(seed_list):
        raise InvalidArgumentError("strategies and seeds must not repeat.")
    shared = (config or SearchConfig()).replace(**settings).resolved()
    if shared.data.folder is not None:
        raise InvalidArgumentError("compare_strategies compares on the digits; drop the folder.")
    # The runs validate nothing; the comparison validates once, after all of them.
    validate = shared.latency.validate
    shared = shared.replace(validate=0)
    runs_of = {
        (name, seed): shared.replace(strategy=name, seed=seed)
        for name in names
        for seed in seed_list
    }
    folder = Path(os.fspath(output))
    for (name, seed), run_config in runs_of.items():
        check_resume(folder / f"{name}-seed{seed}", run_config)
    folder, setup, _ = open_setup(output, shared.replace(validate=validate))
    started = time.perf_counter()
    rows: dict[str, Any] = {}
    for name in names:
        runs = []
        for seed in seed_list:
            if shared.execution.progress:
                logger.info("%s, seed %d", name, seed)
            result = run_configured_one(folder / f"{name}-seed{seed}", setup, runs_of[name, seed])
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
    budget, reward = shared.controller.budget, shared.controller.reward
    image_size, latency_backend = shared.latency.input_size, shared.latency.backend
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
