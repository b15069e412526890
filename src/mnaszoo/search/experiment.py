"""A complete platform-aware search on the digits proxy task, and strategy comparisons.

:func:`search_digits` wires the pieces of :mod:`mnaszoo.search` together the way the MnasNet
paper does on a laptop scale: architectures from the default
:class:`~mnaszoo.search.space.SearchSpace`, latency predicted by a per-layer
:class:`~mnaszoo.search.latency.LatencyTable` measured on this machine (calibrated against a few
end-to-end measurements), accuracy from a short training run on scikit-learn's handwritten digits
(:class:`~mnaszoo.search.proxy.ProxyTrainer`), and the paper's reward. Everything lands in one
output folder::

    config.json          the experiment's settings (a rerun must use the same ones)
    state.json           the resumable search state: rerunning the same call continues it
    trials.jsonl         one JSON object per trial
    best_spec.json       the best trial's NetworkSpec (load_spec() / mnaszoo.build rebuild it)
    summary.json         space size, budget, best trial, Pareto front, latency table, timings
    pareto.png           accuracy against latency (needs matplotlib: mnaszoo[bench])
    latency_table.json   the latency lookup table, unless ``table_path`` names a shared one

:func:`compare_strategies` runs several strategies for several seeds with equal budgets, the same
latency table, target and proxy task, and tabulates the results (``comparison.json``,
``comparison.md``).

The proxy trainer's seed is fixed (``proxy_seed``), so a network's proxy accuracy is a function of
the network alone: runs of different strategies and seeds see the same accuracy for the same
network, and networks met again are not retrained (their accuracy is cached).
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._checks import check_bool, check_float, check_int
from ..atomic_files import write_text_atomic
from ..errors import ArgumentTypeError, InvalidArgumentError, SearchStateError
from ..specs import NetworkSpec
from .latency import BACKENDS, LatencyTable, PredictorReport, validate_predictor
from .proxy import ProxyTrainer, load_digits_proxy
from .reward import Reward
from .runner import STRATEGIES, SearchResult, Trial, run_search
from .space import SearchSpace
from .state_files import read_json, read_json_object

__all__ = [
    "DEFAULT_BUDGET",
    "REWARDS",
    "compare_strategies",
    "load_spec",
    "open_latency_table",
    "search_digits",
    "validate_latency",
]

_LOG = logging.getLogger("mnaszoo")

DEFAULT_BUDGET = 30
"""Trials of a :func:`search_digits` run unless told otherwise."""

REWARDS: tuple[str, ...] = ("soft", "hard")
"""Reward names: the paper's soft (``alpha = beta = -0.07``) and hard (``0, -1``) constraints."""

NUM_CLASSES = 10  # digits
_CONFIG_FORMAT = 1
_CALIBRATION_SEED = "mnaszoo-latency-calibration"
_TARGET_BASE = "the base (MobileNetV2 skeleton) architecture's predicted latency"


# --------------------------------------------------------------------------- small helpers


def load_spec(path: str | os.PathLike[str]) -> NetworkSpec:
    """Read a ``best_spec.json`` (:meth:`NetworkSpec.to_dict` data) back into a spec.

    ``mnaszoo.build(load_spec(path), num_classes=10)`` rebuilds the searched network.

    Raises:
        SearchStateError: the file cannot be read or does not hold a network spec.
    """
    source = Path(os.fspath(path))
    data = read_json(source, "the network spec", hint="")
    try:
        return NetworkSpec.from_dict(data)
    except (TypeError, ValueError) as error:
        raise SearchStateError(f"{source} does not hold a network spec: {error}") from error


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def _spec_key(spec: NetworkSpec) -> str:
    # The trial name differs between identical networks; everything else identifies one.
    return json.dumps({**spec.to_dict(), "name": ""}, sort_keys=True)


def _sample_specs(space: SearchSpace, n: int, seed: str, prefix: str) -> list[NetworkSpec]:
    rng = random.Random(seed)  # a string seed: independent of the search's integer seeds
    return [space.to_spec(space.sample(rng), name=f"{prefix}_{i:03d}") for i in range(n)]


def _check_choice(name: str, value: object, accepted: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in accepted:
        raise InvalidArgumentError(
            f"Unknown {name} {value!r}; accepted: {', '.join(map(repr, accepted))}."
        )
    return value


def _make_reward(kind: str, target_ms: float) -> Reward:
    return Reward.soft(target_ms) if kind == "soft" else Reward.hard(target_ms)


# --------------------------------------------------------------------------- latency


def open_latency_table(
    path: str | os.PathLike[str],
    *,
    backend: str = "torch",
    image_size: int = 224,
    threads: int = 1,
    calibrate: int = 8,
) -> LatencyTable:
    """Load the latency table at ``path`` (or start one), calibrate it once, and save it.

    Args:
        path: the table's JSON file; created if missing.
        backend: ``"torch"``, ``"torch-optimized"`` or ``"onnxruntime"``.
        image_size: the input resolution latency is predicted at.
        threads: intra-op CPU threads while measuring.
        calibrate: when the table has no calibration yet and ``calibrate >= 2``, measure that many
            random networks of the default space end to end and fit
            :meth:`~mnaszoo.search.latency.LatencyTable.fit_calibration` (the same networks for
            every table, so repeated calls agree). A fit that fails (too noisy) is logged and the
            table stays uncalibrated. 0 skips calibration.

    Returns:
        The table, saved to ``path``.

    Raises:
        InvalidArgumentError: the file holds a table for another backend, resolution or number of
            threads, or an argument is out of range.
        SearchStateError: the file is not a latency table or was measured on another machine.
    """
    backend = _check_choice("latency backend", backend, BACKENDS)
    check_int("image_size", image_size, minimum=16)
    check_int("threads", threads, minimum=1)
    check_int("calibrate", calibrate, minimum=0)
    target = Path(os.fspath(path))
    if target.exists():
        table = LatencyTable.load(target)
        wanted = {"backend": backend, "image_size": image_size, "threads": threads}
        found = {"backend": table.backend, "image_size": table.image_size, "threads": table.threads}
        if wanted != found:
            differ = ", ".join(f"{k} {found[k]!r} (wanted {wanted[k]!r})" for k in wanted)
            raise InvalidArgumentError(
                f"The latency table {target} was built with {differ}; use the table's settings or"
                " another table file."
            )
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        table = LatencyTable(
            backend=backend,  # type: ignore[arg-type]
            image_size=image_size,
            threads=threads,
            num_classes=NUM_CLASSES,
        )
    if calibrate >= 2 and table.calibration is None:
        specs = _sample_specs(SearchSpace(), calibrate, _CALIBRATION_SEED, "calibration")
        started = time.perf_counter()
        try:
            fit = table.fit_calibration(specs)
        except InvalidArgumentError as error:
            _LOG.warning("latency calibration failed, predictions stay raw sums: %s", error)
        else:
            _LOG.info(
                "latency table calibrated on %d networks in %.1f s: measured = %.3f x sum %+.3f ms",
                fit.samples,
                time.perf_counter() - started,
                fit.scale,
                fit.offset,
            )
    table.save(target)
    return table


def validate_latency(table: LatencyTable, n: int = 10, seed: int = 0) -> PredictorReport:
    """Measure ``n`` random networks end to end and compare the table's predictions with them.

    The networks are drawn from the default :class:`~mnaszoo.search.space.SearchSpace` with a
    stream independent of the calibration networks, so they are held out.

    Args:
        table: the latency table (its settings decide how the networks are measured).
        n: networks to measure (>= 2).
        seed: picks the networks.

    Returns:
        A :class:`~mnaszoo.search.latency.PredictorReport` (Spearman correlation, MAPE, errors).
    """
    if not isinstance(table, LatencyTable):
        raise ArgumentTypeError(f"table must be a LatencyTable, got {type(table).__name__}.")
    check_int("n", n, minimum=2)
    check_int("seed", seed, minimum=0)
    specs = _sample_specs(SearchSpace(), n, f"mnaszoo-latency-validation-{seed}", "validation")
    return validate_predictor(table.predict, table.measure, specs)


def _latency_function(table: LatencyTable) -> Any:
    def latency(spec: NetworkSpec) -> float:
        # A calibration with a negative offset could push a tiny network to <= 0 ms, which the
        # reward cannot take; such a network is simply "as fast as it gets".
        return max(table.predict(spec), 1e-3)

    return latency


# --------------------------------------------------------------------------- proxy accuracy


class _ProxyScore:
    """``spec -> proxy accuracy``, building the model and caching by network."""

    def __init__(self, trainer: ProxyTrainer, cache: dict[str, float]) -> None:
        self.trainer = trainer
        self.cache = cache

    def __call__(self, spec: NetworkSpec) -> float:
        from ..builder import build

        key = _spec_key(spec)
        if key not in self.cache:
            with torch.random.fork_rng(devices=[]):  # building draws from the global RNG
                model = build(spec, num_classes=NUM_CLASSES)
            self.cache[key] = self.trainer(model)
        return self.cache[key]


@dataclass
class _Setup:
    """What the runs of one call share: the table, the target and the proxy task."""

    table: LatencyTable
    table_path: Path
    target_ms: float
    target_source: str
    trainer: ProxyTrainer
    cache: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _prepare(
    *,
    output: Path,
    table_path: str | os.PathLike[str] | None,
    target_ms: float | None,
    latency_backend: str,
    image_size: int,
    proxy_size: int,
    proxy_epochs: int,
    proxy_train_limit: int | None,
    proxy_batch_size: int,
    proxy_lr: float,
    proxy_seed: int,
    threads: int,
    calibrate: int,
) -> _Setup:
    _check_choice("latency backend", latency_backend, BACKENDS)
    check_int("image_size", image_size, minimum=16)
    check_int("proxy_size", proxy_size, minimum=16)
    check_int("proxy_epochs", proxy_epochs, minimum=1)
    if proxy_train_limit is not None:
        check_int("proxy_train_limit", proxy_train_limit, minimum=2)
    check_int("proxy_batch_size", proxy_batch_size, minimum=2)
    check_float("proxy_lr", proxy_lr, minimum=0.0, min_inclusive=False)
    check_int("proxy_seed", proxy_seed, minimum=0)
    check_int("threads", threads, minimum=1)
    check_int("calibrate", calibrate, minimum=0)
    if target_ms is not None:
        check_float("target_ms", target_ms, minimum=0.0, min_inclusive=False)
    output.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    path = output / "latency_table.json" if table_path is None else Path(os.fspath(table_path))
    table = open_latency_table(
        path,
        backend=latency_backend,
        image_size=image_size,
        threads=threads,
        calibrate=calibrate,
    )
    if target_ms is None:
        space = SearchSpace()
        target = round(table.predict(space.to_spec(space.base_tokens(), name="base")), 3)
        source = _TARGET_BASE
        table.save(path)
    else:
        target, source = float(target_ms), "given"
    timings["latency_table_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    train, val = load_digits_proxy(proxy_size, seed=0)
    if proxy_train_limit is not None and proxy_train_limit < train[0].shape[0]:
        # A seeded, class-mixed subset (the split is sorted by index, i.e. by scan order).
        order = torch.randperm(train[0].shape[0], generator=torch.Generator().manual_seed(0))
        keep = torch.sort(order[:proxy_train_limit]).values
        train = (train[0][keep], train[1][keep])
    trainer = ProxyTrainer(
        train,
        val,
        epochs=proxy_epochs,
        batch_size=proxy_batch_size,
        lr=proxy_lr,
        seed=proxy_seed,
        threads=threads,
    )
    timings["data_seconds"] = time.perf_counter() - started
    return _Setup(table, path, target, source, trainer, timings=timings)


def _settings(
    setup: _Setup,
    *,
    strategy: str,
    seed: int,
    reward: str,
    latency_backend: str,
    image_size: int,
    proxy_size: int,
    proxy_epochs: int,
    proxy_train_limit: int | None,
    proxy_batch_size: int,
    proxy_lr: float,
    proxy_seed: int,
    threads: int,
) -> dict[str, Any]:
    return {
        "format": _CONFIG_FORMAT,
        "task": "digits",
        "strategy": strategy,
        "seed": seed,
        "reward": reward,
        "target_ms": setup.target_ms,
        "latency_backend": latency_backend,
        "image_size": image_size,
        "proxy_size": proxy_size,
        "proxy_epochs": proxy_epochs,
        "proxy_train_images": int(setup.trainer.train[0].shape[0]),
        "proxy_train_limit": proxy_train_limit,
        "proxy_batch_size": proxy_batch_size,
        "proxy_lr": proxy_lr,
        "proxy_seed": proxy_seed,
        "threads": threads,
    }


def _check_config(path: Path, settings: dict[str, Any]) -> None:
    if not path.exists():
        return
    saved = read_json_object(path, "the search settings")
    differ = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
    if differ:
        details = "; ".join(f"{k}: saved {saved.get(k)!r}, now {settings.get(k)!r}" for k in differ)
        raise SearchStateError(
            f"{path.parent} holds a search with other settings ({details}). Rerun with the saved"
            " settings to continue it, or choose another output folder."
        )


def _trial_brief(trial: Trial, target_ms: float) -> dict[str, Any]:
    return {
        "index": trial.index,
        "latency_ms": trial.latency_ms,
        "accuracy": trial.accuracy,
        "reward": trial.reward,
        "meets_target": trial.latency_ms <= target_ms,
    }


def _run(
    output: Path,
    setup: _Setup,
    *,
    strategy: str,
    budget: int,
    seed: int,
    reward: str,
    progress: bool,
    validate: int,
    settings: dict[str, Any],
) -> SearchResult:
    output.mkdir(parents=True, exist_ok=True)
    config_path = output / "config.json"
    _check_config(config_path, settings)
    _write_json(config_path, settings)
    state_path = output / "state.json"
    if state_path.exists():  # networks already scored need no retraining
        try:
            for item in json.loads(state_path.read_text(encoding="utf-8")).get("trials", []):
                trial = Trial.from_dict(item)
                setup.cache.setdefault(_spec_key(trial.network_spec()), trial.accuracy)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass  # run_search reports an unreadable state properly
    space = SearchSpace()
    reward_fn = _make_reward(reward, setup.target_ms)
    started = time.perf_counter()
    try:
        result = run_search(
            space,
            latency=_latency_function(setup.table),
            score=_ProxyScore(setup.trainer, setup.cache),
            reward=reward_fn,
            budget=budget,
            strategy=strategy,
            num_classes=NUM_CLASSES,
            seed=seed,
            state_path=state_path,
            log_path=output / "trials.jsonl",
            progress=progress,
        )
    finally:
        setup.table.save(setup.table_path)  # keep the layers measured so far, even on Ctrl-C
    search_seconds = time.perf_counter() - started

    report: PredictorReport | None = None
    timings = dict(setup.timings)
    if validate:
        started = time.perf_counter()
        report = validate_latency(setup.table, validate, seed=seed)
        timings["latency_validation_seconds"] = time.perf_counter() - started
        _LOG.info("%s", report)
        setup.table.save(setup.table_path)

    best = result.best
    _write_json(output / "best_spec.json", best.spec)
    seconds = [t.seconds for t in result.trials]
    timings.update(
        {
            "search_seconds": search_seconds,
            "seconds_per_trial_mean": statistics.fmean(seconds),
            "seconds_per_trial_max": max(seconds),
        }
    )
    summary = {
        "task": "digits",
        "settings": settings,
        "space": {
            "tokens": len(space.num_options),
            "size": space.size,
            "distinct_size": space.distinct_size(),
        },
        "budget": budget,
        "trials": len(result.trials),
        "distinct_networks": len({_spec_key(t.network_spec()) for t in result.trials}),
        "target_ms": setup.target_ms,
        "target_source": setup.target_source,
        "reward": reward_fn.to_dict(),
        "trials_meeting_target": sum(t.latency_ms <= setup.target_ms for t in result.trials),
        "best": {**_trial_brief(best, setup.target_ms), "spec": best.spec},
        "pareto_front": [_trial_brief(t, setup.target_ms) for t in result.pareto_front()],
        "latency_table": {
            "path": str(setup.table_path),
            "entries": len(setup.table),
            "calibration": (
                None
                if setup.table.calibration is None
                else {
                    "scale": setup.table.calibration.scale,
                    "offset": setup.table.calibration.offset,
                    "samples": setup.table.calibration.samples,
                }
            ),
            "fingerprint": setup.table.fingerprint,
        },
        "latency_validation": None if report is None else report.to_dict(),
        "timings": timings,
    }
    _write_json(output / "summary.json", summary)
    _plot(result, output / "pareto.png", setup.target_ms)
    return result


def _plot(result: SearchResult, path: Path, target_ms: float) -> None:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        _LOG.info("matplotlib is not installed, so no %s (pip install 'mnaszoo[bench]')", path.name)
        return
    from .plot import plot_pareto

    plot_pareto(result, path, target_ms=target_ms)


# --------------------------------------------------------------------------- public entry points


def _checked_setup(
    output: str | os.PathLike[str],
    *,
    reward: str,
    budget: int,
    validate: int,
    progress: bool,
    proxy: dict[str, Any],
    **prepare: Any,
) -> tuple[Path, dict[str, Any], _Setup]:
    """Check the arguments shared by :func:`search_digits` and :func:`compare_strategies`, then
    open the latency table, the target and the proxy task they run on."""
    _check_choice("reward", reward, REWARDS)
    check_int("budget", budget, minimum=1)
    if validate:
        check_int("validate", validate, minimum=2)
    check_bool("progress", progress)
    folder = Path(os.fspath(output))
    return folder, proxy, _prepare(output=folder, **prepare, **proxy)


def search_digits(
    output: str | os.PathLike[str],
    *,
    strategy: str = "controller",
    budget: int = DEFAULT_BUDGET,
    seed: int = 0,
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
    calibrate: int = 8,
    validate: int = 0,
    progress: bool = True,
) -> SearchResult:
    """Search the default space on the digits proxy task; write the results to ``output``.

    Each trial samples an architecture, predicts its latency at ``image_size`` with the latency
    table, trains it briefly on digits at ``proxy_size`` and rewards the pair. Running the same
    call again continues the search (``state.json``) up to ``budget`` trials; with other settings
    it refuses (``config.json``). See the module notes for the files written.

    Args:
        output: the output folder (created).
        strategy: ``"controller"`` (REINFORCE), ``"ppo"`` or ``"random"``.
        budget: total trials, counting those of a resumed search.
        seed: seeds the strategy.
        target_ms: the latency target ``T``; ``None``: the predicted latency of the space's base
            architecture (the MobileNetV2 skeleton) on this machine.
        reward: ``"soft"`` or ``"hard"`` (:class:`~mnaszoo.search.reward.Reward`).
        latency_backend: what latency is measured with: ``"torch"``, ``"torch-optimized"`` or
            ``"onnxruntime"``.
        image_size: the input resolution latency is measured at (the deployment resolution).
        proxy_size: the digits' resolution for the proxy training (the scans are 8x8, so 16 is
            plenty, and 4x cheaper than 32).
        proxy_epochs: training epochs per trial.
        proxy_train_limit: train on a seeded subset of this many images (``None``: all 1,347).
        proxy_batch_size: images per training step.
        proxy_lr: peak learning rate.
        proxy_seed: the proxy trainer's seed (fixed, so accuracy depends on the network alone).
        threads: CPU threads for training and for latency measurement.
        table_path: a latency-table JSON shared between runs (created or extended, and saved);
            default ``output/latency_table.json``.
        calibrate: networks measured end to end to calibrate a new table (see
            :func:`open_latency_table`); 0 skips it.
        validate: after the search, measure this many held-out networks end to end and store the
            predictor's Spearman correlation and error in ``summary.json`` (0 skips it; else >= 2).
        progress: show a progress line on stderr.

    Returns:
        The :class:`~mnaszoo.search.runner.SearchResult`, every trial included.

    Raises:
        MnaszooError: scikit-learn is not installed (``pip install 'mnaszoo[examples]'``).
        SearchStateError: ``output`` holds a search with other settings, or more trials than
            ``budget``.
        InvalidArgumentError: an argument is out of range, or ``table_path`` holds a table with
            other settings.

    Example:
        >>> result = search_digits("runs/search", budget=20)  # doctest: +SKIP
        >>> result.best.accuracy, result.best.latency_ms  # doctest: +SKIP
    """
    _check_choice("strategy", strategy, sorted(STRATEGIES))
    check_int("seed", seed, minimum=0)
    folder, proxy, setup = _checked_setup(
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
    settings = _settings(
        setup,
        strategy=strategy,
        seed=seed,
        reward=reward,
        latency_backend=latency_backend,
        image_size=image_size,
        threads=threads,
        **proxy,
    )
    return _run(
        folder,
        setup,
        strategy=strategy,
        budget=budget,
        seed=seed,
        reward=reward,
        progress=progress,
        validate=validate,
        settings=settings,
    )


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
    calibrate: int = 8,
    validate: int = 0,
    progress: bool = True,
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

    Returns:
        The data written to ``comparison.json``.

    Raises:
        InvalidArgumentError: no strategies or seeds, a repeated one, or a bad setting.
    """
    if isinstance(strategies, str) or not strategies:
        raise InvalidArgumentError("strategies must be a non-empty sequence of strategy names.")
    if isinstance(seeds, (str, bytes)) or not seeds:
        raise InvalidArgumentError("seeds must be a non-empty sequence of integers.")
    names = [_check_choice("strategy", s, sorted(STRATEGIES)) for s in strategies]
    seed_list = [check_int("seed", s, minimum=0) for s in seeds]
    if len(set(names)) != len(names) or len(set(seed_list)) != len(seed_list):
        raise InvalidArgumentError("strategies and seeds must not repeat.")
    folder, proxy, setup = _checked_setup(
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
                _LOG.info("%s, seed %d", name, seed)
            settings = _settings(
                setup,
                strategy=name,
                seed=seed,
                reward=reward,
                latency_backend=latency_backend,
                image_size=image_size,
                threads=threads,
                **proxy,
            )
            result = _run(
                folder / f"{name}-seed{seed}",
                setup,
                strategy=name,
                budget=budget,
                seed=seed,
                reward=reward,
                progress=progress,
                validate=0,
                settings=settings,
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
    _write_json(folder / "comparison.json", data)
    (folder / "comparison.md").write_text(_comparison_markdown(data), encoding="utf-8")
    return data
