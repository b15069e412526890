"""A complete platform-aware search on the digits proxy task, and strategy comparisons.

:func:`search_digits` wires the pieces of :mod:`mnaszoo.search` together the way the MnasNet
paper does on a laptop scale: architectures from the default
:class:`~mnaszoo.search.space.SearchSpace`, latency predicted by a per-layer
:class:`~mnaszoo.search.latency_table.LatencyTable` measured on this machine (calibrated against a
few end-to-end measurements), accuracy from a short training run on scikit-learn's handwritten
digits (:class:`~mnaszoo.search.proxy.ProxyTrainer`), and the paper's reward. Everything lands in
one output folder::

    config.json          the experiment's settings (a rerun must use the same ones)
    state.json           the resumable search state: rerunning the same call continues it
    trials.jsonl         one JSON object per trial
    best_spec.json       the best trial's NetworkSpec (load_spec() / mnaszoo.build rebuild it)
    summary.json         space size, budget, best trial, Pareto front, latency table, timings
    pareto.png           accuracy against latency (needs matplotlib: mnaszoo[bench])
    latency_table.json   the latency lookup table, unless ``table_path`` names a shared one

:func:`~mnaszoo.search.compare.compare_strategies` runs several strategies for several seeds
with equal budgets, the same latency table, target and proxy task, and tabulates the results
(``comparison.json``, ``comparison.md``).

The proxy trainer's seed is fixed (``proxy_seed``), so a network's proxy accuracy is a function of
the network alone: runs of different strategies and seeds see the same accuracy for the same
network, and networks met again are not retrained (their accuracy is cached).
"""

from __future__ import annotations

import os
from pathlib import Path

from .._io import read_json
from .._validate import check_choice, check_int
from ..errors import SearchStateError
from ..models.specs import NetworkSpec
from ._session import DEFAULT_BUDGET, REWARDS, checked_setup, run_one, run_settings
from .context_fit import CALIBRATION_NETWORKS
from .distributed import check_placement
from .latency_setup import open_latency_table, validate_latency
from .runner import STRATEGIES, SearchResult

__all__ = [
    "DEFAULT_BUDGET",
    "REWARDS",
    "load_spec",
    "open_latency_table",
    "search_digits",
    "validate_latency",
]


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
    calibrate: int = CALIBRATION_NETWORKS,
    validate: int = 0,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
    predictor: str = "layers",
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
        workers: train this many trials at once on a local Ray cluster (``mnaszoo[distributed]``);
            ``None``: one after another in this process. The trials are the same either way.
        ray_address: train the trials on the running Ray cluster at this address instead (see
            :func:`~mnaszoo.search.runner.run_search`).
        predictor: ``"layers"`` (the per-layer :class:`~mnaszoo.search.latency_table.LatencyTable`)
            or ``"context"`` (blocks timed in context, calibrated per backend:
            :class:`~mnaszoo.search.context_table.ContextLatencyTable`). A ``table_path`` holding
            an in-context or device table uses it whatever this says.

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
    check_choice("strategy", strategy, sorted(STRATEGIES))
    check_placement(workers, ray_address, threads)
    check_int("seed", seed, minimum=0)
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
        predictor=predictor,
    )
    settings = run_settings(
        setup,
        strategy=strategy,
        seed=seed,
        reward=reward,
        latency_backend=latency_backend,
        image_size=image_size,
        threads=threads,
        **proxy,
    )
    return run_one(
        folder,
        setup,
        strategy=strategy,
        budget=budget,
        seed=seed,
        reward=reward,
        progress=progress,
        validate=validate,
        settings=settings,
        placement={"workers": workers, "ray_address": ray_address},
    )
