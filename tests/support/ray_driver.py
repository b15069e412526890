"""Ray drivers for the distributed-search tests, each in a process of its own.

``python -m tests.support.ray_driver SCENARIO FOLDER HEAD`` runs one scenario and writes what
happened to ``FOLDER/outcome.json`` for the test to check:

- ``worker_killed``: joins the cluster at ``HEAD``, runs a 6-trial search whose trial 2 sleeps
  3 s on a worker, and kills (SIGKILL) that worker in the middle of it;
- ``abandoned``: joins the 2-CPU cluster at ``HEAD``, takes the first result of a 3-trial batch
  whose other trials sleep for a minute, and closes the batch: those two must stop at once.

Why a separate process: a Ray driver that loses its cluster ends its own process (Ray's core
worker exits with status 1 once the cluster has been unreachable for a minute). Run inside pytest,
that ended the whole test session without a summary, once on CI; here it fails one test, with
the driver's and the head's output.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mnaszoo.models.specs import NetworkSpec
from mnaszoo.search.reward import Reward
from mnaszoo.search.run.distributed import RayExecutor
from mnaszoo.search.run.runner import SearchResult, run_search
from mnaszoo.search.run.trials import TrialFunction, TrialTask
from mnaszoo.search.space import SearchSpace

SPACE = SearchSpace()
REWARD = Reward.soft(6.0)
SLOW_TRIAL = "search_00002"


def pseudo_accuracy(spec: NetworkSpec) -> float:
    """A deterministic stand-in accuracy in [0, 1) that does not depend on the trial's name."""
    data = json.dumps({**spec.to_dict(), "name": ""}, sort_keys=True).encode()
    return int(hashlib.sha256(data).hexdigest()[:8], 16) / 2**32


def pseudo_latency(spec: NetworkSpec) -> float:
    return 1.0 + 10 * pseudo_accuracy(spec)


def without_seconds(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trial records without their wall time (the one field that differs between runs)."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def trials(result: SearchResult) -> list[dict[str, Any]]:
    """A search's trials, as :func:`without_seconds` records."""
    return without_seconds(t.to_dict() for t in result.trials)


def _slow_trial_score(attempts: Path, controller: int) -> Any:
    """A score that, on a worker, records its pid for the slow trial and then takes 3 s over it."""

    def score(spec: NetworkSpec) -> float:
        if spec.name == SLOW_TRIAL and os.getpid() != controller:
            with open(attempts, "a", encoding="utf-8") as out:
                out.write(f"{os.getpid()}\n")
            time.sleep(3)
        return pseudo_accuracy(spec)

    return score  # a closure: Ray ships it by value


def worker_killed(head: str, folder: Path) -> dict[str, Any]:
    """Kill the worker running the slow trial; return the search, a reference search run in
    this process, and a second search on the same cluster."""
    import ray

    attempts = folder / "attempts"
    killed: list[int] = []

    def kill_first_attempt() -> None:
        deadline = time.monotonic() + 120
        while not attempts.exists() or not attempts.read_text().strip():
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        pid = int(attempts.read_text().split()[0])
        os.kill(pid, signal.SIGKILL)  # the worker process, in the middle of the slow trial
        killed.append(pid)

    killer = threading.Thread(target=kill_first_attempt, daemon=True)
    killer.start()
    common: dict[str, Any] = {
        "latency": pseudo_latency,
        "reward": REWARD,
        "budget": 6,
        "seed": 1,
        "progress": False,
    }
    log = folder / "log.jsonl"
    score = _slow_trial_score(attempts, os.getpid())
    result = run_search(SPACE, score=score, ray_address=head, log_path=log, **common)
    killer.join(timeout=5)
    disconnected = not ray.is_initialized()  # the cluster itself keeps running
    again = run_search(SPACE, score=pseudo_accuracy, ray_address=head, **common)
    expected = run_search(SPACE, score=pseudo_accuracy, **common)
    return {
        "killed": killed,
        "attempts": attempts.read_text(encoding="utf-8").split(),
        "trials": trials(result),
        "log_indices": [json.loads(line)["index"] for line in log.read_text().splitlines()],
        "disconnected": disconnected,
        "again": trials(again),
        "expected": trials(expected),
    }


def _sleepy_score(started: Path, quick: dict[str, Any]) -> Any:
    """A score that answers at once for the ``quick`` spec and sleeps a minute for any other,
    after recording its worker's pid in ``started``."""

    def score(spec: NetworkSpec) -> float:
        if spec.to_dict() != quick:
            with open(started, "a", encoding="utf-8") as out:
                out.write(f"{os.getpid()}\n")
            time.sleep(60)
        return pseudo_accuracy(spec)

    return score


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def abandoned(head: str, folder: Path) -> dict[str, Any]:
    """Close a batch after its first result; report how fast its running trials were stopped."""
    started = folder / "started"
    specs = [SPACE.to_spec(SPACE.sample(random.Random(seed))) for seed in range(3)]
    tasks = [TrialTask(index, spec.to_dict(), 0, 10) for index, spec in enumerate(specs)]
    function = TrialFunction("score", _sleepy_score(started, tasks[0].spec))
    executor = RayExecutor(address=head)
    try:
        results = executor.run(function, tasks)
        first = next(results)
        deadline = time.monotonic() + 60
        while not started.exists() or len(started.read_text().split()) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the two slow trials did not both start within a minute")
            time.sleep(0.05)
        pids = [int(pid) for pid in started.read_text().split()]
        closed_at = time.monotonic()
        results.close()
        while any(_alive(pid) for pid in pids) and time.monotonic() < closed_at + 30:
            time.sleep(0.05)
        stopped_after = time.monotonic() - closed_at
        alive = [pid for pid in pids if _alive(pid)]
    finally:
        executor.close()
    return {
        "first": first[0],
        "expected_first": pseudo_accuracy(specs[0]),
        "slow_pids": pids,
        "alive": alive,
        "stopped_after_s": stopped_after,
    }


if __name__ == "__main__":
    scenario, output, head_address = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    if scenario == "worker_killed":
        outcome = worker_killed(head_address, output)
    elif scenario == "abandoned":
        outcome = abandoned(head_address, output)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}: worker_killed or abandoned")
    (output / "outcome.json").write_text(json.dumps(outcome), encoding="utf-8")
