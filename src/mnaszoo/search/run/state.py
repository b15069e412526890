"""The files of a running search: its resumable state (the trials and the batch in progress),
its JSON Lines log, and the progress line."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..._io import read_json_object, write_text_atomic
from ...errors import SearchStateError
from ..space import SearchSpace
from ..strategies.controller import SearchStrategy
from .result import Trial


def _name(index: int) -> str:
    return f"search_{index:05d}"


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
