"""What a search produces: its trials, the best one and the accuracy/latency Pareto front."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import SearchStateError
from ...models.specs import NetworkSpec
from ..reward import Reward
from ..space import SearchSpace

__all__ = ["SearchResult", "Trial"]


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

    Example:
        A search's trials (here with a made-up latency and accuracy, to be quick):

        >>> from mnaszoo.search import SearchSpace
        >>> from mnaszoo.search.reward import Reward
        >>> from mnaszoo.search.run.runner import run_search
        >>> result = run_search(
        ...     SearchSpace(), latency=lambda spec: 20.0, score=lambda spec: 0.5,
        ...     reward=Reward.soft(target_ms=25.0), budget=3, strategy="random", progress=False,
        ... )
        >>> trial = result.trials[0]
        >>> trial.index, len(trial.tokens), trial.latency_ms, trial.accuracy, round(trial.reward, 4)
        (0, 42, 20.0, 0.5, 0.5079)
        >>> trial.network_spec().name
        'search_00000'
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
    """The trials of a search, with its best model and accuracy/latency Pareto front.

    Example:
        >>> from mnaszoo.search import SearchSpace
        >>> from mnaszoo.search.reward import Reward
        >>> from mnaszoo.search.run.runner import run_search
        >>> result = run_search(
        ...     SearchSpace(), latency=lambda spec: 20.0, score=lambda spec: 0.5,
        ...     reward=Reward.soft(target_ms=25.0), budget=3, strategy="random", progress=False,
        ... )
        >>> len(result.trials), result.best.index, len(result.pareto_front())
        (3, 0, 1)
    """

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
