"""Run a platform-aware architecture search: sample, measure, train, reward, repeat.

Each trial: the strategy proposes tokens, the space turns them into a
:class:`~mnaszoo.models.specs.NetworkSpec`, ``latency(spec)`` gives milliseconds, ``evaluate``
scores the built model (or ``score`` scores the spec directly), the
:class:`~mnaszoo.search.reward.Reward` combines the two, and the strategy observes the reward.

With ``state_path`` the whole search (space, strategy and its random states, reward, seed, every
trial and the batch in progress) is saved atomically after each trial; running again with the same
arguments resumes where it stopped and ends with exactly the trials an uninterrupted run would have
produced (timings aside). Trials run in this process, or in parallel on Ray workers
(``workers=``/``ray_address=``, :mod:`mnaszoo.search.run.distributed`) with the same result.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..._validate import check_bool, check_float, check_int
from ...errors import ArgumentTypeError, InvalidArgumentError
from ...models.specs import NetworkSpec
from ..reward import Reward
from ..space import SearchSpace
from ..strategies.controller import LSTMController, SearchStrategy
from ..strategies.ppo import PPOController
from ..strategies.random_search import RandomSearch
from .distributed import check_placement
from .result import SearchResult, Trial
from .state import _append, _atomic_write, _Batch, _log_line, _name, _Progress, _resume
from .trials import InProcessExecutor, TrialExecutor, TrialFunction, TrialTask

__all__ = ["STRATEGIES", "SearchResult", "Trial", "make_strategy", "run_search"]

STATE_FORMAT = 1

MAX_BATCH = 64
"""At most this many proposals are sampled (and their latency measured) before training them."""

STRATEGIES: dict[str, type[SearchStrategy]] = {
    LSTMController.name: LSTMController,
    PPOController.name: PPOController,
    RandomSearch.name: RandomSearch,
}
"""Strategy names :func:`run_search` accepts, and their classes."""


def make_strategy(name: str, space: SearchSpace, *, seed: int = 0) -> SearchStrategy:
    """Create a strategy by name (:data:`STRATEGIES`) with default settings for ``space``.

    Raises:
        InvalidArgumentError: unknown name.
    """
    if name not in STRATEGIES:
        raise InvalidArgumentError(
            f"Unknown search strategy {name!r}; accepted names are {sorted(STRATEGIES)}, or pass a"
            " SearchStrategy instance."
        )
    return STRATEGIES[name](space.num_options, seed=seed)  # type: ignore[call-arg]


def run_search(
    space: SearchSpace,
    *,
    latency: Callable[[NetworkSpec], float],
    reward: Reward,
    budget: int,
    evaluate: Callable[[nn.Module], float] | None = None,
    score: Callable[[NetworkSpec], float] | None = None,
    strategy: str | SearchStrategy = "controller",
    num_classes: int = 10,
    seed: int = 0,
    state_path: str | os.PathLike[str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
    cpus_per_trial: int = 1,
) -> SearchResult:
    """Search ``space`` for ``budget`` trials and return every trial.

    Give exactly one of ``evaluate`` (trains/evaluates a built model: the real search) and
    ``score`` (rates a spec without building it: proxies, synthetic rewards, tests).

    Args:
        space: the search space.
        latency: maps a spec to its latency in milliseconds (a measurement or a latency model).
        reward: the accuracy/latency trade-off.
        budget: total number of trials, counting those of a resumed state.
        evaluate: maps ``mnaszoo.build(spec, num_classes=num_classes)`` to an accuracy in [0, 1].
            Each model is built under ``torch.manual_seed`` of a seed derived from ``seed`` and
            the trial index (the global CPU RNG state is restored afterwards), so its initialisation
            does not depend on what ran before: that is what makes a resumed search identical.
        score: maps a spec to an accuracy in [0, 1] without building a model.
        strategy: ``"controller"``
            (:class:`~mnaszoo.search.strategies.controller.LSTMController`, REINFORCE),
            ``"ppo"`` (:class:`~mnaszoo.search.strategies.ppo.PPOController`), ``"random"``
            or a
            :class:`~mnaszoo.search.strategies.controller.SearchStrategy` instance.
        num_classes: classifier outputs of the models given to ``evaluate``.
        seed: seed of a strategy given by name and of the models' initialisation.
        state_path: JSON file saved after every trial; if it exists the search resumes from it.
        log_path: JSON Lines file, one object per trial (:meth:`Trial.to_dict`). It is rewritten
            from the state at the start, so after a resume it has exactly one line per trial.
        progress: show a one-line progress display (trials, best reward, ETA) on stderr.
        workers: train this many trials at once on a local Ray cluster started for the search
            (needs ``mnaszoo[distributed]``); ``None`` with no ``ray_address``: one after another
            in this process.
        ray_address: run the trials on the running Ray cluster at this address (``"HOST:PORT"``
            of its head, or ``"auto"``) instead. ``evaluate``/``score`` must then be picklable
            (cloudpickle: lambdas and closures are), and every node needs mnaszoo installed.
        cpus_per_trial: CPUs Ray reserves per trial: the threads ``evaluate``/``score`` use.

    The strategy proposes trials in batches (as many as it can before a reward changes what it
    proposes: the controller's policy-update batch, up to :data:`MAX_BATCH` for random search);
    this process measures the batch's latency, the trials run (here, or on workers), and their
    rewards are observed in trial order. The proposals and their order do not depend on how many
    trials run at once, so the same seed gives the same trials with any ``workers``, and the same
    as the in-process search. A worker killed mid-trial has its trial run again; a controller
    killed mid-batch resumes from ``state_path`` with the same batch.

    Returns:
        A :class:`SearchResult`.

    Raises:
        SearchStateError: ``state_path`` holds a different space, strategy, reward or seed, more
            trials than ``budget``, or cannot be read.
        InvalidArgumentError: bad arguments, or ``latency``/``evaluate``/``score`` returned a value
            out of range (the message names the trial).
        MnaszooError: Ray is missing or the cluster cannot be reached, or a trial's worker kept
            dying (the state keeps every trial finished before it).
        ArgumentTypeError: an argument has the wrong type.

    Example:
        >>> from mnaszoo.search.reward import Reward
        >>> space = SearchSpace()
        >>> result = run_search(
        ...     space,
        ...     latency=lambda spec: 10.0 * sum(s.repeats for s in spec.stages),
        ...     score=lambda spec: 0.5,
        ...     reward=Reward.soft(150.0),
        ...     strategy="random",
        ...     budget=3,
        ...     progress=False,
        ... )
        >>> len(result.trials), result.best.accuracy
        (3, 0.5)
    """
    if not isinstance(space, SearchSpace):
        raise ArgumentTypeError(f"space must be a SearchSpace, got {type(space).__name__}.")
    if not isinstance(reward, Reward):
        raise ArgumentTypeError(f"reward must be a Reward, got {type(reward).__name__}.")
    if (evaluate is None) == (score is None):
        raise InvalidArgumentError(
            "Give exactly one of evaluate (scores a built model) and score (scores a spec)."
        )
    for name, hook in (("latency", latency), ("evaluate", evaluate), ("score", score)):
        if hook is not None and not callable(hook):
            raise ArgumentTypeError(f"{name} must be callable, got {type(hook).__name__}.")
    budget = check_int("budget", budget, minimum=1)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    check_bool("progress", progress)
    if isinstance(strategy, str):
        strategy = make_strategy(strategy, space, seed=seed)
    elif not isinstance(strategy, SearchStrategy):
        raise ArgumentTypeError(
            f"strategy must be a name {sorted(STRATEGIES)} or a SearchStrategy, got"
            f" {type(strategy).__name__}."
        )
    if strategy.num_options != space.num_options:
        raise InvalidArgumentError(
            "strategy.num_options does not match space.num_options; create the strategy with"
            " space.num_options."
        )

    workers, ray_address, cpus_per_trial = check_placement(workers, ray_address, cpus_per_trial)

    header = {
        "format": STATE_FORMAT,
        "space": space.to_dict(),
        "strategy": {
            "name": getattr(strategy, "name", type(strategy).__name__),
            "config": strategy.config(),
        },
        "reward": reward.to_dict(),
        "seed": seed,
        "evaluator": "evaluate" if evaluate is not None else "score",
    }
    trials: list[Trial] = []
    batch: _Batch | None = None
    state_file = Path(state_path) if state_path is not None else None
    if state_file is not None and state_file.exists():
        trials, batch = _resume(state_file, header, strategy, budget)
    if log_path is not None:
        _atomic_write(Path(log_path), "".join(_log_line(t) for t in trials))
    function = (
        TrialFunction("score", score) if score is not None else TrialFunction("evaluate", evaluate)  # type: ignore[arg-type]
    )

    def save(batch: _Batch | None) -> None:
        if state_file is not None:
            state = {
                **header,
                "strategy_state": strategy.state_dict(),
                "trials": [t.to_dict() for t in trials],
                "batch": None if batch is None else batch.to_dict(),
            }
            _atomic_write(state_file, json.dumps(state))

    display = _Progress(budget, trials, sys.stderr) if progress else None
    # The executor opens after the first batch is timed: starting a Ray cluster keeps the cores
    # busy for seconds, and latency is timed only while nothing else of the search runs.
    executor: TrialExecutor | None = None
    try:
        while len(trials) < budget:
            if batch is None:
                # Proposals made before any of their rewards is observed do not depend on those
                # rewards, so batches of the strategy's proposals_ahead() give the same search as
                # one trial at a time, with any number of workers.
                size = min(budget - len(trials), max(1, strategy.proposals_ahead()), MAX_BATCH)
                batch = _propose(strategy, space, latency, len(trials), size)
                save(batch)  # a controller killed from here on resumes this very batch
            tasks = [
                TrialTask(index, spec, seed, num_classes)
                for index, spec in batch.remaining(len(trials), space)
            ]
            if executor is None:
                executor = _open_executor(workers, ray_address, cpus_per_trial)
            # closing(): a trial that fails here stops the batch's other trials too. The batch
            # ends (every trial finished or stopped) before the next batch is timed.
            with contextlib.closing(executor.run(function, tasks)) as results:
                for task, (raw, seconds) in zip(tasks, results, strict=False):
                    accuracy = _checked(f"the accuracy of trial {task.index}", raw, positive=False)
                    tokens, latency_ms, latency_seconds = batch.entry(task.index)
                    value = reward(accuracy, latency_ms)
                    strategy.observe(tokens, value)
                    trial = Trial(
                        task.index,
                        tokens,
                        task.spec,
                        latency_ms,
                        accuracy,
                        value,
                        latency_seconds + seconds,
                    )
                    trials.append(trial)
                    save(None if len(trials) == batch.end else batch)
                    if log_path is not None:
                        # The state (written first) is the reference: a crash between the two
                        # writes leaves the log a line short; the next start rewrites it.
                        _append(Path(log_path), _log_line(trial))
                    if display is not None:
                        display.update(trial)
            batch = None
    finally:
        if executor is not None:
            executor.close()
        if display is not None:
            display.close()  # end the progress line even when a trial raises
    return SearchResult(tuple(trials), space, reward)


# --------------------------------------------------------------------------- batches of trials


def _propose(
    strategy: SearchStrategy,
    space: SearchSpace,
    latency: Callable[[NetworkSpec], float],
    start: int,
    size: int,
) -> _Batch:
    tokens, values, seconds = [], [], []
    for index in range(start, start + size):
        proposal = strategy.propose()
        spec = space.to_spec(proposal, name=_name(index))
        # Latency comes from this process alone, while none of the search's trials is training:
        # workers sharing cores with training would measure each other.
        started = time.perf_counter()
        value = _checked(f"latency(spec) of trial {index}", latency(spec), positive=True)
        tokens.append(proposal)
        values.append(value)
        seconds.append(time.perf_counter() - started)
    return _Batch(start, tuple(tokens), tuple(values), tuple(seconds))


def _open_executor(
    workers: int | None, ray_address: str | None, cpus_per_trial: int
) -> TrialExecutor:
    if workers is None and ray_address is None:
        return InProcessExecutor()
    from .distributed import RayExecutor

    return RayExecutor(workers=workers, address=ray_address, cpus_per_trial=cpus_per_trial)


def _checked(what: str, value: object, *, positive: bool) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if positive:
        return check_float(what, value, minimum=0.0, min_inclusive=False)
    return check_float(what, value, minimum=0.0, maximum=1.0)
