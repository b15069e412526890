"""Search trials on real local Ray clusters, with real process kills.

- The same seed gives the same digits search in-process, with 1 and with 2 workers.
- Joining a cluster started by ``ray start --head``; a worker killed (SIGKILL) in the middle of a
  trial has that trial run again, and the search ends as if nothing happened.
- ``mnaszoo search --workers 2`` killed (SIGKILL) in the middle of a batch resumes from
  ``state.json`` (here in-process) to the uninterrupted result, and its JSON Lines log holds each
  trial once.
- A batch closed after its first result (a trial failed, or the caller stopped) stops its trials
  that are still running at once.

The controllers on the joined cluster run in processes of their own (tests/support/ray_driver.py).

Every cluster listens on 127.0.0.1 only. Proxies are tiny (digits at 16 px, one epoch on 64
images, latency at 32 px), so a trial takes a fraction of a second; starting a cluster dominates.
Select these tests with ``-m ray``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mnaszoo.models.specs import NetworkSpec
from mnaszoo.search.run.digits import search_digits
from mnaszoo.search.run.runner import SearchResult, run_search

from .support.ray_driver import REWARD, SPACE, pseudo_accuracy, trials, without_seconds

# Not imported here: the search imports Ray itself, after choosing the loopback interface.
HAS_RAY = importlib.util.find_spec("ray") is not None
pytest.importorskip("sklearn", reason="the digits proxy needs scikit-learn")

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(not HAS_RAY, reason="needs Ray: pip install 'mnaszoo[distributed]'"),
]
TINY: dict[str, Any] = {
    "image_size": 32,
    "proxy_size": 16,
    "proxy_epochs": 1,
    "proxy_train_limit": 64,
    "threads": 1,
    "calibrate": 0,
    "target_ms": 5.0,
    "progress": False,
}
# Ray keeps a local cluster on the loopback interface only with this (see distributed.py).
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
# Ray reads it once, when first imported. Without it, joining this module's loopback-only head at
# "127.0.0.1:PORT" is redirected to the machine's network address, where nothing listens, and
# ray.init retries for minutes: set it before any test imports Ray, whichever test runs first
# (alone, `-k worker_killed` hung this way; in file order a local-cluster search had set it).
os.environ.update(LOOPBACK)


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SearchResult]:
    """An in-process 6-trial controller search; its latency table is shared by the other runs,
    which therefore predict the same latencies (the table measures only unknown layers)."""
    folder = tmp_path_factory.mktemp("reference")
    result = search_digits(
        folder / "run", budget=6, seed=3, table_path=folder / "table.json", **TINY
    )
    return folder, result


@pytest.mark.parametrize("workers", [1, 2])
def test_same_search_with_any_number_of_workers(
    reference: tuple[Path, SearchResult], tmp_path: Path, workers: int
) -> None:
    folder, expected = reference
    result = search_digits(
        tmp_path / "run",
        budget=6,
        seed=3,
        table_path=folder / "table.json",
        workers=workers,
        **TINY,
    )
    assert trials(result) == trials(expected)
    assert without_seconds(_log(tmp_path / "run" / "trials.jsonl")) == without_seconds(
        _log(folder / "run" / "trials.jsonl")
    )
    assert not _ray().is_initialized()  # the search shut its own cluster down


def test_image_folder_search_on_two_workers_gives_the_recorded_trials(tmp_path: Path) -> None:
    """The CLI on a small image folder with --workers 2 (Ray) finds the trials recorded for one
    worker in tests/fixtures/search_trials, latencies from the recorded frozen table."""
    from mnaszoo.cli.main import main

    fixtures = Path(__file__).parent / "fixtures" / "search_trials"
    spec = importlib.util.spec_from_file_location("record_search_trials", fixtures / "record.py")
    assert spec is not None and spec.loader is not None
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    expected = record.recorded_trials("images")  # per torch kernel set: training rounds differ
    if expected is None:
        pytest.skip(f"no trials recorded for this machine's torch kernels: {record.RECORD_COMMAND}")
    folder = record.make_folder(tmp_path / "data")
    table = tmp_path / "table.json"
    shutil.copy(fixtures / "images_table.json", table)
    settings = record.IMAGES
    argv = ["search", str(tmp_path / "run"), "--data", str(folder), "--table", str(table)]
    argv += ["--strategy", settings["strategy"], "--budget", str(settings["budget"])]
    argv += ["--seed", str(settings["seed"]), "--input-size", str(settings["input_size"])]
    argv += ["--proxy-size", str(settings["proxy_size"]), "--calibrate", "0"]
    argv += ["--proxy-epochs", str(settings["proxy_epochs"]), "--no-progress", "--workers", "2"]
    assert main(argv) == 0
    found = record.trials(tmp_path / "run")
    assert [t["tokens"] for t in found] == [t["tokens"] for t in expected]
    assert [t["accuracy"] for t in found] == pytest.approx([t["accuracy"] for t in expected])
    assert [t["latency_ms"] for t in found] == pytest.approx([t["latency_ms"] for t in expected])
    assert not _ray().is_initialized()


def _ray() -> Any:
    import ray

    return ray


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Head:
    """A running Ray head: its address and where ``ray start`` writes its output."""

    address: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """A two-CPU Ray head started by ``ray start --head --block`` on 127.0.0.1. Terminating the
    blocking ``ray start`` stops every process it started."""
    port = _free_port()
    log = tmp_path_factory.mktemp("head") / "head.log"
    env = {**os.environ, **LOOPBACK, "RAY_AUTH_MODE": "disabled"}
    command = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
    ]
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text(encoding="utf-8"):
            assert process.poll() is None, log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, "ray start --head took over 2 minutes"
            time.sleep(0.2)
        yield Head(f"127.0.0.1:{port}", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _drive(scenario: str, folder: Path, head: Head) -> dict[str, Any]:
    """Run a scenario of tests/support/ray_driver.py in a process of its own; its outcome.

    A Ray driver that loses its cluster, or that Ray's own checks abort, ends its process, which
    must not be pytest's: here that fails one test, with what the driver and the head printed.
    """
    env = {**os.environ, **LOOPBACK, "RAY_AUTH_MODE": "disabled"}
    driver = subprocess.run(
        [sys.executable, "-m", "tests.support.ray_driver", scenario, str(folder), head.address],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if driver.returncode != 0:
        pytest.fail(
            f"the {scenario} driver exited with status {driver.returncode}:\n"
            f"{driver.stderr[-4000:]}\n--- the head printed:\n{head.output()[-3000:]}"
        )
    outcome: dict[str, Any] = json.loads((folder / "outcome.json").read_text(encoding="utf-8"))
    return outcome


def test_worker_killed_mid_trial_is_retried_on_a_joined_cluster(head: Head, tmp_path: Path) -> None:
    outcome = _drive("worker_killed", tmp_path, head)
    killed, attempts = outcome["killed"], outcome["attempts"]
    # Killed in the middle of the slow trial, which then ran again in another worker process.
    assert killed and len(attempts) == 2 and attempts[0] == str(killed[0])
    assert attempts[1] != attempts[0]
    # The search ends as if nothing happened: each trial once, in order, as in-process.
    assert outcome["trials"] == outcome["expected"]
    assert outcome["log_indices"] == list(range(6))
    assert outcome["disconnected"]
    assert outcome["again"] == outcome["expected"]  # the cluster is still usable


def _cli(output: Path, table: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mnaszoo",
        "search",
        str(output),
        "--budget",
        "6",
        "--seed",
        "3",
        "--target-ms",
        "5",
        "--input-size",
        "32",
        "--proxy-epochs",
        "1",
        "--train-limit",
        "64",
        "--calibrate",
        "0",
        "--table",
        str(table),
        "--new-table",
        "--no-progress",
        *extra,
    ]


def test_controller_killed_mid_batch_resumes_to_the_same_search(
    reference: tuple[Path, SearchResult], tmp_path: Path
) -> None:
    folder, _ = reference
    table = tmp_path / "table.json"
    shutil.copy(folder / "table.json", table)  # the reference's layers, so the same latencies
    output = tmp_path / "run"
    env = {**os.environ, **LOOPBACK}
    state = output / "state.json"
    controller = subprocess.Popen(
        _cli(output, table, "--workers", "2"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its Ray processes share its process group
    )
    try:
        deadline = time.monotonic() + 180
        done = 0
        while done < 1:  # the first trial is in; the other five of the batch are not
            assert controller.poll() is None, "the search ended before it could be killed"
            assert time.monotonic() < deadline, "no trial finished within 3 minutes"
            time.sleep(0.02)
            if state.exists():
                done = len(json.loads(state.read_text(encoding="utf-8"))["trials"])
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
    finally:
        # Ray's helper processes the controller started outlive it; end them (by group).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(controller.pid, signal.SIGKILL)
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert 1 <= len(saved["trials"]) < 6 and saved["batch"] is not None  # killed mid-batch
    for line in (output / "trials.jsonl").read_text(encoding="utf-8").splitlines():
        json.loads(line)  # whole lines only, even right after the kill

    # Resume without Ray: where trials run does not change them (and saves a cluster start).
    finished = subprocess.run(
        _cli(output, table), env=env, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr
    log = _log(output / "trials.jsonl")
    assert [line["index"] for line in log] == list(range(6))  # no duplicate, no gap
    assert without_seconds(log) == without_seconds(_log(folder / "run" / "trials.jsonl"))


def test_a_score_that_cannot_be_pickled_is_refused_clearly(
    head: Head, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnaszoo.errors import ArgumentTypeError

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    lock = threading.Lock()  # holds an OS lock: cannot travel to another process

    def score(spec: NetworkSpec) -> float:
        with lock:
            return pseudo_accuracy(spec)

    with pytest.raises(ArgumentTypeError, match="cannot be sent to Ray workers"):
        run_search(
            SPACE,
            latency=lambda spec: 1.0,
            score=score,
            reward=REWARD,
            budget=2,
            ray_address=head.address,
            progress=False,
        )
    assert not _ray().is_initialized()  # disconnected even so


def test_an_address_where_nothing_listens_fails_fast() -> None:
    from mnaszoo.errors import MnaszooError
    from mnaszoo.search.run.distributed import RayExecutor

    port = _free_port()  # bound and released: nothing listens there now
    # Without the check, ray.init would retry the connection for ever (tried: 3 minutes).
    with pytest.raises(MnaszooError, match=f"Nothing answers at .*127.0.0.1:{port}"):
        RayExecutor(address=f"127.0.0.1:{port}")
    assert not _ray().is_initialized()


def test_an_abandoned_batch_stops_its_running_trials_at_once(head: Head, tmp_path: Path) -> None:
    outcome = _drive("abandoned", tmp_path, head)
    assert outcome["first"] == outcome["expected_first"]
    # Both slow trials (a minute of sleep each) were running; closing the batch killed them.
    assert len(outcome["slow_pids"]) == 2 and outcome["alive"] == []
    assert outcome["stopped_after_s"] < 20
