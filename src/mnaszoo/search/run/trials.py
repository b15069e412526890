"""One trial's training and scoring as a pure function of its description, and the in-process
executor that runs a batch of them.

The search controller (:func:`~mnaszoo.search.run.runner.run_search`) proposes a batch of
architectures, measures (or looks up) their latency itself, and hands the batch to an executor as
:class:`TrialTask` items. A task holds everything the accuracy depends on besides the scoring
function: the spec, the search seed, the trial index and the number of classes. The scoring
function (:class:`TrialFunction`) is fixed for the whole search, so a remote executor ships it to
each worker once (:mod:`mnaszoo.search.run.distributed`) and then sends only the small task per
trial.
Because :func:`run_trial` depends on nothing else, a trial gives the same accuracy whichever
process runs it, and a trial retried after a worker died gives the same accuracy as the first try
would have.

A score callable may also offer ``cached(spec) -> float | None`` and ``remember(spec,
accuracy)``: a remote executor then skips networks it has already scored (the in-process executor
simply calls the callable, which caches by itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import nn

from ...models.specs import NetworkSpec

__all__ = ["InProcessExecutor", "TrialExecutor", "TrialFunction", "TrialTask", "run_trial"]


@dataclass(frozen=True)
class TrialTask:
    """What one trial's accuracy depends on, besides the :class:`TrialFunction`.

    Attributes:
        index: the trial's 0-based position in the search.
        spec: the architecture as :meth:`~mnaszoo.models.specs.NetworkSpec.to_dict` data.
        seed: the search seed (with ``index`` it seeds the model's initialisation).
        num_classes: classifier outputs of the model given to an ``evaluate`` function.
    """

    index: int
    spec: dict[str, Any]
    seed: int
    num_classes: int


@dataclass(frozen=True)
class TrialFunction:
    """The search's scoring function, as :func:`~mnaszoo.search.run.runner.run_search` received it.

    Attributes:
        kind: ``"score"`` (``fn`` rates a :class:`~mnaszoo.models.specs.NetworkSpec`) or
            ``"evaluate"`` (``fn`` rates the built model).
        fn: the callable; it must be picklable (cloudpickle) to run on remote workers.
    """

    kind: Literal["score", "evaluate"]
    fn: Callable[..., Any]


def run_trial(function: TrialFunction, task: TrialTask) -> tuple[object, float]:
    """Score one trial: ``(the function's raw result, seconds taken)``.

    With ``kind="evaluate"`` the model is built under ``torch.manual_seed`` of a seed derived from
    ``task.seed`` and ``task.index`` (the global CPU random state is restored afterwards), so its
    initialisation depends on the trial alone, not on what the process ran before.
    """
    started = time.perf_counter()
    spec = NetworkSpec.from_dict(task.spec)
    value = function.fn(spec) if function.kind == "score" else _evaluate(function.fn, spec, task)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()  # tensors do not travel well between processes; the number does
    return value, time.perf_counter() - started


def _evaluate(
    evaluate: Callable[[nn.Module], object], spec: NetworkSpec, task: TrialTask
) -> object:
    from ...models.factory import build

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(task.seed * 1_000_003 + task.index)
        return evaluate(build(spec, num_classes=task.num_classes))


class TrialExecutor(Protocol):
    """Runs a batch of trials and yields their results in the order of the tasks."""

    def run(
        self, function: TrialFunction, tasks: Sequence[TrialTask]
    ) -> Generator[tuple[object, float], None, None]:
        """Yield ``run_trial(function, task)`` for each task, in order."""
        ...

    def close(self) -> None:
        """Release what the executor holds (worker processes, a cluster connection)."""
        ...


class InProcessExecutor:
    """Runs trials one after another in this process (the default: no Ray needed)."""

    def run(
        self, function: TrialFunction, tasks: Sequence[TrialTask]
    ) -> Generator[tuple[object, float], None, None]:
        """Yield ``run_trial(function, task)`` for each task, in order."""
        for task in tasks:
            yield run_trial(function, task)

    def close(self) -> None:
        """Nothing to release."""
