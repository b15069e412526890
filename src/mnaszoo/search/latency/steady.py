"""Interleaved, noise-checked timing: how the in-context latency table measures.

A shared machine is noisy: another process taking the CPU for a second inflates whatever is being
timed at that moment. Two defences are used here:

- **interleaving**: every model of a batch is called a few times per round, round after round, so
  that a burst of load spreads over all of them instead of corrupting one;
- **spread checks**: each timing records ``(p75 - p25) / median`` over its calls; one spreading
  more than ``max_spread`` is measured again (the steadiest attempt is kept), and one that stays
  noisy is either marked ``noisy`` (and recorded as such) or refused with
  :class:`NoisyMeasurementError`.

The clock is either the wall clock (:func:`time.perf_counter`, what a user experiences) or the
CPU time of the calling thread (:func:`time.thread_time`). With one intra-op thread, PyTorch and
onnxruntime compute in the calling thread, so its CPU time is the latency the model would have on
an otherwise idle core: time the OS gave to other processes is not counted. That makes single-
threaded tables reproducible on a busy machine; it cannot see multi-threaded work, so it is only
accepted with one thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..._validate import check_choice, check_float, check_int
from ...deploy._timing import percentile
from ...errors import InvalidArgumentError, MnaszooError

__all__ = [
    "CLOCKS",
    "ENTRY_STATISTICS",
    "NoisyMeasurementError",
    "SteadyTiming",
    "entry_statistic_of",
    "time_steady",
]

CLOCKS: tuple[str, ...] = ("wall", "thread")
"""``"wall"``: :func:`time.perf_counter`; ``"thread"``: :func:`time.thread_time` (one thread)."""


class NoisyMeasurementError(MnaszooError, RuntimeError):
    """Timings kept spreading more than allowed after every re-measurement."""


MAX_LATENCY_MS = 1e6
"""The largest latency a table may hold, in milliseconds (about 17 minutes): no network of the
space takes that long on any device, so a larger value is a damaged file, refused at load."""


@dataclass(frozen=True)
class SteadyTiming:
    """One model's latency from interleaved calls.

    Attributes:
        ms: median milliseconds per call.
        p25_ms: 25th percentile.
        p75_ms: 75th percentile.
        spread: ``(p75 - p25) / median``; 0 is perfectly steady.
        samples: timed calls behind the figures.
        attempts: measurements made (1 + re-measurements).
        noisy: the spread stayed above the limit.
        min_ms: the fastest call (``None`` in timings recorded before it was kept). Noise only
            ever adds time, so for a layer of a fraction of a millisecond the fastest of its
            calls is the most repeatable figure (see :data:`ENTRY_STATISTICS`).
    """

    ms: float
    p25_ms: float
    p75_ms: float
    spread: float
    samples: int
    attempts: int = 1
    noisy: bool = False
    min_ms: float | None = None

    def scaled(self, factor: float) -> SteadyTiming:
        """The same timing with every duration multiplied by ``factor``."""
        fastest = None if self.min_ms is None else self.min_ms * factor
        return replace(
            self, ms=self.ms * factor, p25_ms=self.p25_ms * factor, p75_ms=self.p75_ms * factor,
            min_ms=fastest,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, what: str) -> SteadyTiming:
        """Read :meth:`to_dict` data (also what the kit's runner writes).

        Raises:
            InvalidArgumentError: a field is missing or out of range (``what`` names the item).
        """
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"{what} must be an object, got {type(data).__name__}.")
        try:
            return cls(
                ms=check_float(
                    f"{what} ms",
                    data["ms"],
                    minimum=0.0,
                    maximum=MAX_LATENCY_MS,
                    min_inclusive=False,
                ),
                p25_ms=check_float(
                    f"{what} p25_ms", data["p25_ms"], minimum=0.0, maximum=MAX_LATENCY_MS
                ),
                p75_ms=check_float(
                    f"{what} p75_ms", data["p75_ms"], minimum=0.0, maximum=MAX_LATENCY_MS
                ),
                spread=check_float(f"{what} spread", data["spread"], minimum=0.0),
                samples=check_int(f"{what} samples", data["samples"], minimum=1),
                attempts=check_int(f"{what} attempts", data.get("attempts", 1), minimum=1),
                noisy=bool(data.get("noisy", False)),
                min_ms=None
                if data.get("min_ms") is None
                else check_float(
                    f"{what} min_ms",
                    data["min_ms"],
                    minimum=0.0,
                    maximum=MAX_LATENCY_MS,
                    min_inclusive=False,
                ),
            )
        except KeyError as error:
            raise InvalidArgumentError(f"{what} lacks the field {error}.") from error


ENTRY_STATISTICS: tuple[str, ...] = ("fastest", "median")
"""What a latency table sums per layer: the fastest call of each entry, or the median call.

Scored on four benchmark runs on a 2-core VM (one thread, 15 calls per layer; both sums from the
same calls, each calibrated the same way), the mean MAPE over 20 networks outside the space was
4.0% / 4.3% / 4.1% summing fastest calls against 5.2% / 4.4% / 5.5% summing medians
(ExecuTorch / onnxruntime / torch-optimized), and over 100 networks of the space 3.6% / 2.4% /
4.2% against 3.6% / 2.8% / 3.7%. Whole networks are still timed by their median: that is the
latency a user sees."""


def entry_statistic_of(timings: Iterable[SteadyTiming]) -> str:
    """``"fastest"`` if every timing kept its fastest call, else ``"median"`` (older tables)."""
    return "fastest" if all(t.min_ms is not None for t in timings) else "median"


def entry_ms(timing: SteadyTiming, statistic: str) -> float:
    """The figure of ``timing`` a table of ``statistic`` sums (see :data:`ENTRY_STATISTICS`)."""
    if statistic == "fastest" and timing.min_ms is not None:
        return timing.min_ms
    return timing.ms


def _summary(times: list[float], attempts: int) -> SteadyTiming:
    ordered = sorted(times)
    median = percentile(ordered, 0.5) * 1e3
    p25, p75 = percentile(ordered, 0.25) * 1e3, percentile(ordered, 0.75) * 1e3
    median = max(median, 1e-6)  # a clock tick of 0 on a coarse clock
    fastest = max(ordered[0] * 1e3, 1e-6)
    return SteadyTiming(
        median, p25, p75, (p75 - p25) / median, len(times), attempts, min_ms=fastest
    )


def _interleaved(
    calls: Sequence[Callable[[], object]],
    warmup: int,
    rounds: int,
    per_round: int,
    clock: str,
    settle: int = 0,
) -> list[list[float]]:
    now = time.thread_time if clock == "thread" else time.perf_counter
    for call in calls:
        for _ in range(warmup):
            call()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for index, call in enumerate(calls):
            for _ in range(settle):  # after the other models: caches refilled, not timed
                call()
            for _ in range(per_round):
                began = now()
                call()
                times[index].append(now() - began)
    return times


def time_steady(
    calls: Sequence[Callable[[], object]],
    *,
    names: Sequence[str] | None = None,
    warmup: int = 3,
    rounds: int = 5,
    per_round: int = 3,
    clock: str = "wall",
    max_spread: float = 0.2,
    retries: int = 2,
    refuse_noisy: bool = False,
    settle: int = 0,
) -> list[SteadyTiming]:
    """Time every callable, interleaved, re-measuring those that spread too widely.

    Args:
        calls: no-argument callables (one model run each).
        names: what each callable is, for the error message (default: their positions).
        warmup: untimed calls of each first.
        rounds: interleaved rounds.
        per_round: timed calls of each per round.
        clock: ``"wall"`` or ``"thread"`` (see the module notes).
        max_spread: the largest accepted ``(p75 - p25) / median``.
        retries: re-measurements of the noisy ones.
        refuse_noisy: raise instead of marking what stays noisy.
        settle: untimed calls of each at the start of every round. The first call after the
            other models runs cold (their weights and activations took the caches: 10-37%
            slower for 1-3 ms networks), so without one a timing mixes cold calls with the
            steady ones a serving loop sees, and its spread measures that mix, not noise.

    Returns:
        One :class:`SteadyTiming` per callable.

    Raises:
        NoisyMeasurementError: ``refuse_noisy`` and some stayed noisy (the message names them).
        InvalidArgumentError: an out-of-range setting.
    """
    check_int("warmup", warmup, minimum=0)
    check_int("rounds", rounds, minimum=1)
    check_int("per_round", per_round, minimum=1)
    check_choice("clock", clock, CLOCKS)
    check_float("max_spread", max_spread, minimum=0.0, min_inclusive=False)
    check_int("retries", retries, minimum=0)
    check_int("settle", settle, minimum=0)
    labels = [str(i) for i in range(len(calls))] if names is None else list(names)
    results = [
        _summary(t, 1) for t in _interleaved(calls, warmup, rounds, per_round, clock, settle)
    ]
    for _ in range(retries):
        noisy = [i for i, r in enumerate(results) if r.spread > max_spread]
        if not noisy:
            break
        again = _interleaved([calls[i] for i in noisy], warmup, rounds, per_round, clock, settle)
        for index, times in zip(noisy, again, strict=True):
            attempt = _summary(times, results[index].attempts + 1)
            keep = attempt if attempt.spread < results[index].spread else results[index]
            results[index] = SteadyTiming(**{**keep.to_dict(), "attempts": attempt.attempts})
    results = [SteadyTiming(**{**r.to_dict(), "noisy": r.spread > max_spread}) for r in results]
    bad = [(labels[i], r.spread) for i, r in enumerate(results) if r.noisy]
    if bad and refuse_noisy:
        shown = ", ".join(f"{name} ({spread:.0%})" for name, spread in bad[:5])
        raise NoisyMeasurementError(
            f"{len(bad)} of {len(results)} timings spread more than {max_spread:.0%}"
            f" ((p75 - p25) / median) after {retries + 1} attempts: {shown}. The machine is too"
            " busy: measure again when it is quieter, with more rounds, or with clock='thread'"
            " (one thread)."
        )
    return results
