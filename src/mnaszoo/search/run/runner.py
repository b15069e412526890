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
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from ..._io import read_json_object, write_text_atomic
from ..._validate import check_bool, check_float, check_int
from ...errors import ArgumentTypeError, InvalidArgumentError, SearchStateError
from ...models.specs import NetworkSpec
from ..reward import Reward
from ..space import SearchSpace
from ..strategies.controller import LSTMController, PPOController, RandomSearch, SearchStrategy
from .distributed import check_placement
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


@dataclass(frozen=True)
class Trial:
    """One sampled model.

    Attributes:
        index: 0-based position in the search.
        tokens: the architecture's tokens.
        spec: the architecture as :meth:`NetworkSpec.to_dict` data.
        latency_ms: measured or predicted latency.
        accuracy: accuracy in [0, 1] from ``evaluate`` or ``score``.
        reward: the search reward.
        seconds: wall time of the trial (the one field a resumed search does not reproduce).
    """

    index: int
    tokens: tuple[int, ...]
    spec: dict[str, Any]
    latency_ms: float
    accuracy: float
    reward: float
    seconds: float

    def network_spec(self) -> NetworkSpec:
        """The architecture as a :class:`~mnaszoo.models.specs.NetworkSpec`."""
        return NetworkSpec.from_dict(self.spec)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (one line of the search log)."""
        return {
            "index": self.index,
            "tokens": list(self.tokens),
            "spec": self.spec,
            "latency_ms": self.latency_ms,
            "accuracy": self.accuracy,
            "reward": self.reward,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trial:
        """The inverse of :meth:`to_dict`."""
        return cls(
            index=int(data["index"]),
            tokens=tuple(int(t) for t in data["tokens"]),
            spec=dict(data["spec"]),
            latency_ms=float(data["latency_ms"]),
            accuracy=float(data["accuracy"]),
            reward=float(data["reward"]),
            seconds=float(data["seconds"]),
        )


@dataclass(frozen=True)
class SearchResult:
    """The trials of a search, with its best model and accuracy/latency Pareto front."""

    trials: tuple[Trial, ...]
    space: SearchSpace = field(repr=False)
    reward: Reward

    @property
    def best(self) -> Trial:
        """The trial with the highest reward (the earliest on ties).

        Raises:
            SearchStateError: there are no trials.
        """
        if not self.trials:
            raise SearchStateError("The search has no trials; run it with budget >= 1.")
        return max(self.trials, key=lambda t: (t.reward, -t.index))

    def pareto_front(self) -> tuple[Trial, ...]:
        """Trials no other trial beats on both accuracy (higher) and latency (lower).

        Sorted by latency; of trials with equal accuracy and latency only the first is kept.
        """
        front: list[Trial] = []
        # Fastest first (then most accurate): a trial is on the front iff it is more accurate
        # than every faster-or-equal trial already on it.
        for trial in sorted(self.trials, key=lambda t: (t.latency_ms, -t.accuracy, t.index)):
            if not front or trial.accuracy > front[-1].accuracy:
                front.append(trial)
        return tuple(front)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: the trials, the best index, the front's indices, reward and space."""
        return {
            "space": self.space.to_dict(),
            "reward": self.reward.to_dict(),
            "trials": [t.to_dict() for t in self.trials],
            "best": self.best.index if self.trials else None,
            "pareto_front": [t.index for t in self.pareto_front()],
        }


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
        strategy: ``"controller"`` (:class:`~mnaszoo.search.strategies.controller.LSTMController`,
        REINFORCE),
            ``"ppo"`` (:class:`~mnaszoo.search.strategies.controller.PPOController`), ``"random"``
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


@dataclass(frozen=True)
class _Batch:
    """Proposals sampled together, with their latency (measured here, by the controller)."""

    start: int
    tokens: tuple[tuple[int, ...], ...]
    latency_ms: tuple[float, ...]
    latency_seconds: tuple[float, ...]

    @property
    def end(self) -> int:
        return self.start + len(self.tokens)

    def entry(self, index: int) -> tuple[tuple[int, ...], float, float]:
        i = index - self.start
        return self.tokens[i], self.latency_ms[i], self.latency_seconds[i]

    def remaining(self, done: int, space: SearchSpace) -> list[tuple[int, dict[str, Any]]]:
        return [
            (index, space.to_spec(self.tokens[index - self.start], name=_name(index)).to_dict())
            for index in range(done, self.end)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "tokens": [list(t) for t in self.tokens],
            "latency_ms": list(self.latency_ms),
            "latency_seconds": list(self.latency_seconds),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Batch:
        batch = cls(
            int(data["start"]),
            tuple(tuple(int(t) for t in tokens) for tokens in data["tokens"]),
            tuple(float(v) for v in data["latency_ms"]),
            tuple(float(v) for v in data["latency_seconds"]),
        )
        if not len(batch.tokens) == len(batch.latency_ms) == len(batch.latency_seconds):
            raise ValueError("the batch's tokens and latencies differ in length")
        return batch


def _name(index: int) -> str:
    return f"search_{index:05d}"


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


def _resume(
    path: Path, header: dict[str, Any], strategy: SearchStrategy, budget: int
) -> tuple[list[Trial], _Batch | None]:
    state = read_json_object(path, "the search state")
    for key, expected in header.items():
        if key not in state:
            raise SearchStateError(f"The search state {str(path)!r} lacks {key!r}.")
        if state[key] != expected:
            raise SearchStateError(
                f"The search state {str(path)!r} was written for a different {key}:"
                f" {_difference(state[key], expected)}. Resume with the same {key}, or pass"
                " another state_path to start a new search."
            )
    try:
        trials = [Trial.from_dict(t) for t in state["trials"]]
        strategy.load_state_dict(state["strategy_state"])
        # States written before batches existed have no "batch": they stop between trials.
        saved = state.get("batch")
        batch = None if saved is None else _Batch.from_dict(saved)
    except (KeyError, TypeError, ValueError) as error:
        raise SearchStateError(f"The search state {str(path)!r} is malformed: {error}.") from error
    if [t.index for t in trials] != list(range(len(trials))) or (
        batch is not None and not batch.start <= len(trials) < batch.end
    ):
        raise SearchStateError(
            f"The search state {str(path)!r} is malformed: its trials are not numbered 0, 1, ..."
            " or its batch in progress does not follow them."
        )
    if len(trials) > budget:
        raise SearchStateError(
            f"The search state {str(path)!r} holds {len(trials)} trials, more than budget={budget};"
            f" pass budget >= {len(trials)}."
        )
    return trials, batch


def _difference(saved: Any, now: Any, prefix: str = "") -> str:
    # Name the differing keys, descending into nested settings, rather than dump both values.
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        return "; ".join(_difference(saved.get(k), now.get(k), f"{prefix}{k}.") for k in keys)
    label = prefix[:-1] + " " if prefix else ""
    return f"{label}saved {_short(saved)}, now {_short(now)}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def _log_line(trial: Trial) -> str:
    return json.dumps(trial.to_dict()) + "\n"


def _append(path: Path, line: str) -> None:
    # One write() of the whole line to an O_APPEND descriptor: a process killed at any moment
    # leaves whole lines (a buffered text file may flush a long line in pieces).
    data = line.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        while written < len(data):  # a short write (disk full, ...) finishes or raises
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


class _Progress:
    """A single self-overwriting stderr line: trials done, best reward, elapsed and ETA."""

    def __init__(self, budget: int, resumed: list[Trial], stream: TextIO) -> None:
        self.budget, self.start_done, self.stream = budget, len(resumed), stream
        self.started = time.perf_counter()
        self.best = max((t.reward for t in resumed), default=-math.inf)

    def update(self, trial: Trial) -> None:
        self.best = max(self.best, trial.reward)
        done = trial.index + 1
        elapsed = time.perf_counter() - self.started
        rate = elapsed / max(1, done - self.start_done)
        eta = rate * (self.budget - done)
        self.stream.write(
            f"\rsearch {done}/{self.budget}  best reward {self.best:.4f}"
            f"  elapsed {_clock(elapsed)}  eta {_clock(eta)} "
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"
