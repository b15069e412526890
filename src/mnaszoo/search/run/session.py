"""The machinery behind :func:`~mnaszoo.search.run.digits.search_digits` and
:func:`~mnaszoo.search.compare_strategies`: the shared setup (latency table, target, proxy
task), the settings a run must keep, and one resumable run."""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..._io import read_json_object, write_text_atomic
from ..._validate import check_bool, check_choice, check_float, check_int
from ...errors import SearchStateError
from ..latency.open import (
    NUM_CLASSES,
    latency_function,
    open_predictor,
    spec_key,
    validate_latency,
)
from ..latency.predictor import LatencyPredictor
from ..latency.timing import BACKENDS
from ..latency.validation import PredictorReport
from ..proxy.image_data import ImageFolderTask
from ..proxy.score import ProxyScore
from ..proxy.trainer import ProxyTrainer, load_digits_proxy
from ..reward import Reward
from ..space import SearchSpace
from .runner import SearchResult, Trial, run_search

logger = logging.getLogger(__name__)

DEFAULT_BUDGET = 30
"""Trials of a :func:`search_digits` run unless told otherwise."""

PREDICTORS: tuple[str, ...] = ("layers", "context")
"""Latency predictors: the per-layer table, or the in-context table calibrated per backend."""

REWARDS: tuple[str, ...] = ("soft", "hard")
"""Reward names: the paper's soft (``alpha = beta = -0.07``) and hard (``0, -1``) constraints."""

CONFIG_FORMAT = 1
TARGET_BASE = "the base (MobileNetV2 skeleton) architecture's predicted latency"


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def make_reward(kind: str, target_ms: float) -> Reward:
    return Reward.soft(target_ms) if kind == "soft" else Reward.hard(target_ms)


@dataclass
class Setup:
    """What the runs of one call share: the table, the target and the proxy task."""

    table: LatencyPredictor
    table_path: Path
    target_ms: float
    target_source: str
    trainer: ProxyTrainer
    cache: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    num_classes: int = NUM_CLASSES
    task: str | dict[str, Any] = "digits"


def prepare_setup(
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
    predictor: str = "layers",
    task: ImageFolderTask | None = None,
    proxy_augment: bool = False,
) -> Setup:
    check_choice("latency backend", latency_backend, BACKENDS)
    check_choice("predictor", predictor, PREDICTORS)
    check_bool("proxy_augment", proxy_augment)
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
    timings: dict[str, float] = {}

    # The data and trainer first: what they refuse is refused before any latency is measured.
    started = time.perf_counter()
    if task is not None:
        train, val = task.train, task.val
    else:
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
        augment=proxy_augment,
    )
    timings["data_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    path = output / "latency_table.json" if table_path is None else Path(os.fspath(table_path))
    num_classes = NUM_CLASSES if task is None else len(task.classes)
    table = open_predictor(
        path,
        predictor=predictor,
        backend=latency_backend,
        image_size=image_size,
        threads=threads,
        calibrate=calibrate,
        num_classes=num_classes,
    )
    if target_ms is None:
        space = SearchSpace()
        target = round(table.predict(space.to_spec(space.base_tokens(), name="base")), 3)
        source = TARGET_BASE
        if not table.frozen:
            table.save(path)
    else:
        target, source = float(target_ms), "given"
    timings["latency_table_seconds"] = time.perf_counter() - started
    described: str | dict[str, Any] = (
        "digits" if task is None else {"name": "image-folder", **task.source}
    )
    return Setup(
        table,
        path,
        target,
        source,
        trainer,
        timings=timings,
        num_classes=num_classes,
        task=described,
    )


def run_settings(
    setup: Setup,
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
    extra: dict[str, Any] = {}
    # New settings are recorded only when used, so that searches started before they existed
    # still resume.
    if setup.table.kind != "layers":
        extra["predictor"] = setup.table.kind
    if setup.trainer.augment:
        extra["proxy_augment"] = True
    return {
        **extra,
        "format": CONFIG_FORMAT,
        "task": setup.task,
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


def check_config(path: Path, settings: dict[str, Any]) -> None:
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


def trial_brief(trial: Trial, target_ms: float) -> dict[str, Any]:
    return {
        "index": trial.index,
        "latency_ms": trial.latency_ms,
        "accuracy": trial.accuracy,
        "reward": trial.reward,
        "meets_target": trial.latency_ms <= target_ms,
    }


def run_one(
    output: Path,
    setup: Setup,
    *,
    strategy: str,
    budget: int,
    seed: int,
    reward: str,
    progress: bool,
    validate: int,
    settings: dict[str, Any],
    placement: dict[str, Any] | None = None,
) -> SearchResult:
    output.mkdir(parents=True, exist_ok=True)
    config_path = output / "config.json"
    check_config(config_path, settings)
    write_json(config_path, settings)
    state_path = output / "state.json"
    if state_path.exists():  # networks already scored need no retraining
        try:
            for item in json.loads(state_path.read_text(encoding="utf-8")).get("trials", []):
                trial = Trial.from_dict(item)
                setup.cache.setdefault(spec_key(trial.network_spec()), trial.accuracy)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
            pass  # run_search reports an unreadable state properly
    space = SearchSpace()
    reward_fn = make_reward(reward, setup.target_ms)
    started = time.perf_counter()
    try:
        result = run_search(
            space,
            latency=latency_function(setup.table),
            score=ProxyScore(setup.trainer, setup.cache, setup.num_classes),
            reward=reward_fn,
            budget=budget,
            strategy=strategy,
            num_classes=setup.num_classes,
            seed=seed,
            state_path=state_path,
            log_path=output / "trials.jsonl",
            progress=progress,
            # Where trials run (workers, ray_address) changes nothing in the result, so it is not
            # one of the saved settings: a search may resume with other workers.
            **(placement or {}),
            cpus_per_trial=settings["threads"],
        )
    finally:
        if not setup.table.frozen:
            setup.table.save(setup.table_path)  # keep the layers measured so far, even on Ctrl-C
    search_seconds = time.perf_counter() - started

    report: PredictorReport | None = None
    timings = dict(setup.timings)
    if validate:
        started = time.perf_counter()
        report = validate_latency(setup.table, validate, seed=seed)
        timings["latency_validation_seconds"] = time.perf_counter() - started
        logger.info("%s", report)
        if not setup.table.frozen:
            setup.table.save(setup.table_path)

    best = result.best
    write_json(output / "best_spec.json", best.spec)
    seconds = [t.seconds for t in result.trials]
    timings.update(
        {
            "search_seconds": search_seconds,
            "seconds_per_trial_mean": statistics.fmean(seconds),
            "seconds_per_trial_max": max(seconds),
        }
    )
    summary = {
        "task": setup.task,
        "settings": settings,
        "space": {
            "tokens": len(space.num_options),
            "size": space.size,
            "distinct_size": space.distinct_size(),
        },
        "budget": budget,
        "trials": len(result.trials),
        "distinct_networks": len({spec_key(t.network_spec()) for t in result.trials}),
        "target_ms": setup.target_ms,
        "target_source": setup.target_source,
        "reward": reward_fn.to_dict(),
        "trials_meeting_target": sum(t.latency_ms <= setup.target_ms for t in result.trials),
        "best": {**trial_brief(best, setup.target_ms), "spec": best.spec},
        "pareto_front": [trial_brief(t, setup.target_ms) for t in result.pareto_front()],
        "latency_table": {
            "path": str(setup.table_path),
            "entries": len(setup.table),
            "calibration": (
                None
                if setup.table.calibration is None
                else dataclasses.asdict(setup.table.calibration)
            ),
            "fingerprint": setup.table.fingerprint,
        },
        "latency_validation": None if report is None else report.to_dict(),
        "timings": timings,
    }
    write_json(output / "summary.json", summary)
    plot_front(result, output / "pareto.png", setup.target_ms)
    return result


def plot_front(result: SearchResult, path: Path, target_ms: float) -> None:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        logger.info(
            "matplotlib is not installed, so no %s (pip install 'mnaszoo[bench]')", path.name
        )
        return
    from ..plot import plot_pareto

    plot_pareto(result, path, target_ms=target_ms)


def checked_setup(
    output: str | os.PathLike[str],
    *,
    reward: str,
    budget: int,
    validate: int,
    progress: bool,
    proxy: dict[str, Any],
    **prepare: Any,
) -> tuple[Path, dict[str, Any], Setup]:
    """Check the arguments shared by :func:`~mnaszoo.search.run.digits.search_digits` and
    :func:`~mnaszoo.search.run.compare.compare_strategies`, then
    open the latency table, the target and the proxy task they run on."""
    check_choice("reward", reward, REWARDS)
    check_int("budget", budget, minimum=1)
    if validate:
        check_int("validate", validate, minimum=2)
    check_bool("progress", progress)
    folder = Path(os.fspath(output))
    return folder, proxy, prepare_setup(output=folder, **prepare, **proxy)
