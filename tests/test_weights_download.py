"""Tests of mnaszoo.weights.download against a real local HTTP server speaking the Hub protocol.

Every test runs offline (loopback only), with retry back-off patched out, so nothing sleeps.
Most cases run twice: for a Hub file (``fetch_hub_file``) and a plain URL (``fetch_url``).
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import queue as queue_module
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mnaszoo.errors import (
    AccessDeniedError,
    CacheNotWritableError,
    CorruptCheckpointError,
    DownloadError,
    IntegrityError,
    InvalidArgumentError,
    RemoteFileNotFoundError,
    WeightsNotCachedError,
)
from mnaszoo.weights import download, url_download
from tests.support.hub_env import HubEnv, RecordingSleep, fast_retries, hf_hub_environment
from tests.support.hub_server import HubServer, git_blob_sha1, lfs_pointer, sha256_hex

REPO = "mnaszoo/mnasnet-test"
SHA = "0123456789abcdef0123456789abcdef01234567"
FILE = "model.safetensors"
URL_PATH = "/models/mnasnet-1234abcd.pth"
DATA = bytes(range(256)) * 400  # 102400 bytes
GOOD = sha256_hex(DATA)
REPO_DIR = "models--mnaszoo--mnasnet-test"


@dataclass
class Source:
    """One way of fetching DATA: from the Hub or from a plain URL."""

    kind: str
    env: HubEnv
    url: str
    mnaszoo_cache: Path

    @property
    def server(self) -> HubServer:
        return self.env.server

    @property
    def target(self) -> str:
        """Fault-injection target matching this file's download requests."""
        return FILE if self.kind == "hub" else URL_PATH

    @property
    def cache_root(self) -> Path:
        return self.env.cache_dir if self.kind == "hub" else self.mnaszoo_cache

    @property
    def expected_files(self) -> list[str]:
        if self.kind == "hub":
            return [f"{REPO_DIR}/blobs/{GOOD}", f"{REPO_DIR}/snapshots/{SHA}/{FILE}"]
        return [f"urls/{URL_PATH.rsplit('/', 1)[-1]}"]

    def fetch(self, **kwargs: Any) -> Path:
        kwargs.setdefault("sha256", GOOD)
        if self.kind == "hub":
            return download.fetch_hub_file(REPO, FILE, SHA, **kwargs)
        return download.fetch_url(self.url, **kwargs)

    def files(self) -> list[str]:
        """Every file and link under the cache (temporary files included)."""
        root = self.cache_root
        assert list(root.glob(".mnaszoo-tmp-*")) == []  # the private download cache is gone
        return sorted(
            p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_symlink() or p.is_file()
        )

    def downloads(self) -> list[int]:
        """Statuses of the GETs that carried (or should have carried) the file bytes."""
        return [r.status for r in self.server.requests_for(self.target, method="GET")]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubEnv]:
    with (
        HubServer() as server,
        hf_hub_environment(server, tmp_path / "hf_home", monkeypatch=monkeypatch) as env,
    ):
        monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path / "mnaszoo"))
        yield env
        assert server.errors == []


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> RecordingSleep:
    """No real sleeping: huggingface_hub's back-off and mnaszoo's URL back-off are recorded."""
    recorder = fast_retries(monkeypatch)
    monkeypatch.setattr(url_download, "_sleep", recorder.sleep)
    return recorder


@pytest.fixture(params=["hub", "url"])
def src(request: pytest.FixtureRequest, hub: HubEnv, sleeps: RecordingSleep) -> Source:
    hub.server.add_hub_file(REPO, FILE, DATA, SHA)
    url = hub.server.add_url(URL_PATH, DATA)
    return Source(request.param, hub, url, Path(os.environ["MNASZOO_CACHE"]))


# --------------------------------------------------------------------------- success and cache


def test_first_download_returns_exact_verified_bytes(src: Source) -> None:
    path = src.fetch()

    assert path.read_bytes() == DATA
    assert path == src.cache_root / src.expected_files[-1]
    assert src.files() == src.expected_files  # no temporary file or directory left
    assert src.downloads() == [200]
    if src.kind == "hub":
        assert path.is_symlink() and path.resolve().name == GOOD
        user_agent = src.server.requests[0].headers["user-agent"]
        assert "mnaszoo/" in user_agent


def test_cached_load_makes_no_requests(src: Source) -> None:
    first = src.fetch()
    src.server.clear_log()
    src.server.stop()

    assert src.fetch() == first
    assert src.fetch(local_files_only=True) == first
    src.env.set_offline()
    assert src.fetch() == first
    assert src.server.requests == []
    assert first.read_bytes() == DATA


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "local_files_only"])
def test_offline_with_empty_cache_says_how_to_fix(src: Source, how: str) -> None:
    if how == "HF_HUB_OFFLINE":
        src.env.set_offline()
    with pytest.raises(WeightsNotCachedError) as excinfo:
        src.fetch(local_files_only=how == "local_files_only")

    message = str(excinfo.value)
    # The cache root: what cache_dir= / MNASZOO_CACHE / HF_HUB_CACHE should point at.
    assert f"({src.cache_root})" in message
    assert how in message
    assert "mnaszoo download" in message and "checkpoint=" in message
    assert src.server.requests == []


def test_forced_download_makes_a_new_request(src: Source) -> None:
    first = src.fetch()
    src.server.clear_log()

    assert src.fetch(force_download=True) == first

    assert src.downloads() == [200]
    assert first.read_bytes() == DATA
    assert src.files() == src.expected_files


def test_damaged_cached_file_is_replaced_online_and_refused_offline(src: Source) -> None:
    path = src.fetch()
    path.resolve().write_bytes(b"x" * len(DATA))  # bit rot, same size
    src.server.clear_log()

    assert src.fetch().read_bytes() == DATA  # detected, deleted, downloaded again
    assert src.downloads() == [200]

    path.resolve().write_bytes(b"x" * len(DATA))
    src.env.set_offline()
    with pytest.raises(IntegrityError, match="deleted"):
        src.fetch()
    assert src.files() == []


# --------------------------------------------------------------------------- transient faults


def test_500_then_success(src: Source, sleeps: RecordingSleep) -> None:
    src.server.fail_next(src.target, 500)

    assert src.fetch().read_bytes() == DATA

    statuses = [r.status for r in src.server.requests_for(src.target)]
    if src.kind == "hub":  # the metadata HEAD is retried by huggingface_hub
        assert statuses == [500, 302, 200]
    else:
        assert statuses == [500, 200]
        assert sleeps.calls == [1.0]


def test_persistent_503_raises_download_error(src: Source, sleeps: RecordingSleep) -> None:
    src.server.fail_always(src.target, 503)

    with pytest.raises(DownloadError, match="503") as excinfo:
        src.fetch()

    assert excinfo.value.__cause__ is not None
    assert src.files() == []
    if src.kind == "url":
        assert src.downloads() == [503] * 4  # 1 + retries=3
        assert sleeps.calls == [1.0, 2.0, 4.0]


def test_hub_get_500_is_retried_and_a_persistent_one_caches_nothing(src: Source) -> None:
    if src.kind == "url":
        pytest.skip("Hub-specific: huggingface_hub itself does not retry a failed GET")
    src.server.fail_next(FILE, 500, method="GET")
    assert src.fetch().read_bytes() == DATA  # mnaszoo retries it

    src.server.clear_faults()
    src.fetch(force_download=True)
    src.server.fail_always(FILE, 500, method="GET")
    with pytest.raises(DownloadError):
        src.fetch(force_download=True)
    assert src.files() == src.expected_files  # the good copy, nothing else


def test_connection_refused_is_a_download_error(src: Source, sleeps: RecordingSleep) -> None:
    src.server.stop()

    with pytest.raises(DownloadError):
        src.fetch()
    assert src.files() == []


def test_truncated_body_once_is_retried(src: Source) -> None:
    src.server.truncate(src.target, 30_000, times=1)

    assert src.fetch().read_bytes() == DATA
    assert src.files() == src.expected_files


def test_persistently_truncated_body_raises_and_leaves_nothing(src: Source) -> None:
    src.server.truncate(src.target, 30_000)

    with pytest.raises(DownloadError):
        src.fetch()

    assert src.files() == []  # never a short file


def test_slow_server_times_out_then_succeeds(src: Source) -> None:
    if src.kind == "hub":
        pytest.skip("URL-specific: huggingface_hub's own timeouts are long")
    src.server.slow(URL_PATH, 2.0, times=1)

    assert src.fetch(timeout=0.2).read_bytes() == DATA


# --------------------------------------------------------------------------- permanent errors


def test_404_raises_remote_file_not_found_without_retry(src: Source) -> None:
    src.server.fail_always(src.target, 404, error_code="EntryNotFound")

    with pytest.raises(RemoteFileNotFoundError, match="404"):
        src.fetch()

    assert len(src.server.requests_for(src.target)) == 1
    assert src.files() == []


@pytest.mark.parametrize(
    ("repo_id", "filename", "revision"),
    [(REPO, "absent.pth", SHA), ("mnaszoo/absent", FILE, SHA), (REPO, FILE, "f" * 40)],
)
def test_hub_missing_things_are_remote_file_not_found(
    hub: HubEnv, repo_id: str, filename: str, revision: str
) -> None:
    hub.server.add_hub_file(REPO, FILE, DATA, SHA)

    with pytest.raises(RemoteFileNotFoundError):
        download.fetch_hub_file(repo_id, filename, revision, sha256=GOOD)


def test_url_not_served_is_remote_file_not_found(hub: HubEnv) -> None:
    with pytest.raises(RemoteFileNotFoundError):
        download.fetch_url(hub.server.url_for("/nothing/here.pth"), sha256=GOOD)


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_raise_access_denied_without_retry(src: Source, status: int) -> None:
    src.server.fail_always(src.target, status)

    with pytest.raises(AccessDeniedError, match=str(status)) as excinfo:
        src.fetch()

    assert len(src.server.requests_for(src.target)) == 1
    if src.kind == "hub":
        assert "HF_TOKEN" in str(excinfo.value) and "token=" in str(excinfo.value)


def test_gated_hub_repo_needs_the_token(hub: HubEnv) -> None:
    hub.server.add_hub_file(REPO, FILE, DATA, SHA)
    hub.server.set_access(REPO, gated=True, token="hf_granted")

    with pytest.raises(AccessDeniedError, match="HF_TOKEN"):
        download.fetch_hub_file(REPO, FILE, SHA, sha256=GOOD)
    with pytest.raises(AccessDeniedError):
        download.fetch_hub_file(REPO, FILE, SHA, sha256=GOOD, token="hf_wrong")
    path = download.fetch_hub_file(REPO, FILE, SHA, sha256=GOOD, token="hf_granted")
    assert path.read_bytes() == DATA


# --------------------------------------------------------------------------- integrity


def test_corrupted_bytes_raise_and_leave_nothing(src: Source) -> None:
    src.server.corrupt(src.target, times=1)

    with pytest.raises(IntegrityError, match=GOOD):
        src.fetch()

    assert src.files() == []
    assert src.fetch().read_bytes() == DATA  # a later good download works


def test_force_download_never_replaces_a_good_file_with_a_bad_one(src: Source) -> None:
    good = src.fetch()
    src.server.corrupt(src.target)

    with pytest.raises(IntegrityError):
        src.fetch(force_download=True)

    assert good.read_bytes() == DATA
    assert src.files() == src.expected_files
    src.server.clear_log()
    assert src.fetch() == good  # still served from the cache, no request
    assert src.server.requests == []


def test_force_download_failure_keeps_the_good_file(src: Source) -> None:
    good = src.fetch()
    src.server.truncate(src.target, 1000)

    with pytest.raises(DownloadError):
        src.fetch(force_download=True)

    assert good.read_bytes() == DATA
    assert src.files() == src.expected_files


def test_size_mismatch_is_an_integrity_error(src: Source) -> None:
    with pytest.raises(IntegrityError, match="bytes"):
        src.fetch(size=len(DATA) + 1)
    assert src.files() == []
    assert src.fetch(size=len(DATA)).read_bytes() == DATA


def test_hub_without_sha256_checks_the_lfs_sha256(hub: HubEnv, sleeps: RecordingSleep) -> None:
    hub.server.add_hub_file(REPO, FILE, DATA, SHA)
    hub.server.corrupt(FILE, times=1)

    with pytest.raises(IntegrityError, match=GOOD):
        download.fetch_hub_file(REPO, FILE, SHA, sha256=None)

    path = download.fetch_hub_file(REPO, FILE, SHA, sha256=None)
    assert path.read_bytes() == DATA

    path.resolve().write_bytes(b"x" * len(DATA))  # damaged in the cache: caught too
    hub.set_offline()
    with pytest.raises(IntegrityError, match=GOOD):
        download.fetch_hub_file(REPO, FILE, SHA, sha256=None)


def test_hub_without_sha256_refuses_a_non_lfs_file(hub: HubEnv) -> None:
    hub.server.add_hub_file(REPO, "config.json", b"{}", SHA, lfs=False)

    with pytest.raises(IntegrityError, match="not a Git-LFS file") as excinfo:
        download.fetch_hub_file(REPO, "config.json", SHA, sha256=None)
    assert git_blob_sha1(b"{}") in str(excinfo.value)

    path = download.fetch_hub_file(REPO, "config.json", SHA, sha256=sha256_hex(b"{}"))
    assert path.read_bytes() == b"{}"


def test_hub_lfs_pointer_stored_as_a_regular_file_is_named(hub: HubEnv) -> None:
    hub.server.add_hub_file(REPO, FILE, lfs_pointer(DATA), SHA, lfs=False)

    with pytest.raises(IntegrityError, match="Git-LFS pointer"):
        download.fetch_hub_file(REPO, FILE, SHA, sha256=GOOD)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html; charset=utf-8"),
        (b"\n<html><head></head></html>", "application/octet-stream"),
        (b"not html but served as html", "text/html"),
        (lfs_pointer(DATA), "application/octet-stream"),
    ],
)
def test_url_serving_html_or_lfs_pointer_is_corrupt(
    hub: HubEnv, sleeps: RecordingSleep, body: bytes, content_type: str
) -> None:
    url = hub.server.add_url("/w/page.pth", body, content_type=content_type)

    with pytest.raises(CorruptCheckpointError, match="nothing was cached"):
        download.fetch_url(url, sha256=GOOD)

    assert len(hub.server.requests) == 1  # not retried
    assert list((Path(os.environ["MNASZOO_CACHE"]) / "urls").iterdir()) == []


def test_url_sha256_prefix(hub: HubEnv) -> None:
    url = hub.server.add_url(URL_PATH, DATA)

    with pytest.raises(IntegrityError, match="starting with"):
        download.fetch_url(url, sha256=None, sha256_prefix="00000000")
    assert download.fetch_url(url, sha256=None, sha256_prefix=GOOD[:10]).read_bytes() == DATA


# --------------------------------------------------------------------------- cache directory


def _unwritable_dir(tmp_path: Path) -> Path:
    """A cache directory that cannot be written: chmod 0o555, or (as root) below a file."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root ignores permissions
        folder.chmod(0o755)
        blocker = tmp_path / "a-file"
        blocker.write_bytes(b"")
        return blocker / "cache"
    return folder


def test_unwritable_cache_raises_cache_not_writable(src: Source, tmp_path: Path) -> None:
    cache = _unwritable_dir(tmp_path)
    try:
        with pytest.raises(CacheNotWritableError, match="cache_dir=") as excinfo:
            src.fetch(cache_dir=cache)
    finally:
        if cache.is_dir():
            cache.chmod(0o755)
    assert str(cache) in str(excinfo.value)


def test_read_only_cache_with_the_file_loads(src: Source) -> None:
    path = src.fetch()
    folders = [p for p in [src.cache_root, *src.cache_root.rglob("*")] if p.is_dir()]
    for folder in folders:
        folder.chmod(0o555)
    try:
        if os.access(src.cache_root, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        src.server.clear_log()
        assert src.fetch() == path
        assert src.server.requests == []
    finally:
        for folder in folders:
            folder.chmod(0o755)


def test_stale_url_temp_files_are_cleaned(src: Source) -> None:
    if src.kind == "hub":
        pytest.skip("URL-specific")
    folder = src.mnaszoo_cache / "urls"
    folder.mkdir(parents=True)
    stale, fresh = folder / ".old.pth.abc.part", folder / ".new.pth.abc.part"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (time.time() - 3 * 86400,) * 2)

    src.fetch()

    assert not stale.exists()
    assert fresh.exists()  # could belong to a download in progress


# --------------------------------------------------------------------------- concurrency


def _url_worker(barrier: Any, queue: Any, url: str, cache_dir: str) -> None:
    try:
        barrier.wait(timeout=30)
        path = download.fetch_url(url, sha256=GOOD, cache_dir=cache_dir)
        queue.put((str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
    except BaseException as exc:
        queue.put(("error", repr(exc)))


def test_concurrent_processes_end_with_one_good_file(hub: HubEnv, tmp_path: Path) -> None:
    nproc = 3
    url = hub.server.add_url(URL_PATH, DATA)
    hub.server.slow(URL_PATH, 0.3)  # all GETs in flight at the same time
    cache = tmp_path / "shared"
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(nproc), ctx.Queue()
    workers = [
        ctx.Process(target=_url_worker, args=(barrier, queue, url, str(cache)))
        for _ in range(nproc)
    ]
    for worker in workers:
        worker.start()
    results: list[tuple[str, str]] = []
    deadline = time.monotonic() + 60
    try:
        while len(results) < nproc:
            assert time.monotonic() < deadline, "workers did not finish"
            with contextlib.suppress(queue_module.Empty):
                results.append(queue.get(timeout=0.1))
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            assert not dead, f"a worker died (exit codes {dead})"
    finally:
        for worker in workers:
            worker.join(timeout=30)

    name = URL_PATH.rsplit("/", 1)[-1]
    assert results == [(str(cache / "urls" / name), GOOD)] * nproc
    assert sorted(p.name for p in (cache / "urls").iterdir()) == [name]  # no temp files
    assert (cache / "urls" / name).read_bytes() == DATA
    assert len(hub.server.requests_for(URL_PATH, method="GET")) == nproc


# --------------------------------------------------------------------------- branches, API


def test_hub_branch_is_resolved_online_and_read_from_refs_offline(hub: HubEnv) -> None:
    hub.server.add_hub_file(REPO, FILE, DATA, SHA)

    path = download.fetch_hub_file(REPO, FILE, "main", sha256=GOOD)
    assert path == hub.repo_cache(REPO) / "snapshots" / SHA / FILE
    assert (hub.repo_cache(REPO) / "refs" / "main").read_text() == SHA
    hub.server.clear_log()

    assert download.fetch_hub_file(REPO, FILE, "main", sha256=GOOD) == path
    assert [r.method for r in hub.server.requests] == ["HEAD"]  # no second download

    hub.server.stop()  # unreachable: the cached ref is used
    assert download.fetch_hub_file(REPO, FILE, "main", sha256=GOOD) == path
    hub.set_offline()
    assert download.fetch_hub_file(REPO, FILE, "main", sha256=GOOD) == path


def test_hub_branch_errors(hub: HubEnv, sleeps: RecordingSleep) -> None:
    hub.server.add_hub_file(REPO, FILE, DATA, SHA)

    with pytest.raises(RemoteFileNotFoundError):
        download.fetch_hub_file(REPO, FILE, "no-such-branch", sha256=GOOD)
    hub.server.clear_log()
    hub.server.fail_always(FILE, 503)
    with pytest.raises(DownloadError, match="503"):  # unreachable and not cached
        download.fetch_hub_file(REPO, FILE, "main", sha256=GOOD)
    # Retried with back-off (5 attempts), then the one-line error.
    assert [r.status for r in hub.server.requests_for(FILE)] == [503] * 5


def test_invalid_arguments(hub: HubEnv) -> None:
    url = hub.server.add_url(URL_PATH, DATA)
    with pytest.raises(InvalidArgumentError, match="sha256"):
        download.fetch_url(url, sha256=None)
    with pytest.raises(InvalidArgumentError):
        download.fetch_url(url, sha256="ABC")
    with pytest.raises(InvalidArgumentError):
        download.fetch_url(url, sha256=None, sha256_prefix="abc")
    with pytest.raises(InvalidArgumentError):
        download.fetch_url(hub.server.url + "/", sha256=GOOD)
    with pytest.raises(InvalidArgumentError):
        download.fetch_url(url, sha256=GOOD, retries=-1)
    with pytest.raises(InvalidArgumentError):
        download.fetch_hub_file(REPO, FILE, SHA, sha256=GOOD, size=-1)
    hub.set_offline()
    with pytest.raises(InvalidArgumentError, match="force_download"):
        download.fetch_url(url, sha256=GOOD, force_download=True)
    with pytest.raises(InvalidArgumentError, match="force_download"):
        download.fetch_hub_file(REPO, FILE, SHA, sha256=GOOD, force_download=True)
    assert hub.server.requests == []


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path / "mz"))
    assert download.default_cache_dir() == tmp_path / "mz"
    monkeypatch.delenv("MNASZOO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert download.default_cache_dir() == tmp_path / "xdg" / "mnaszoo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.default_cache_dir() == tmp_path / "home" / ".cache" / "mnaszoo"


def test_is_offline_reads_env_and_hf_constant(hub: HubEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not download.is_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert download.is_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not download.is_offline()
    hub.set_offline()  # sets huggingface_hub.constants.HF_HUB_OFFLINE too
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert download.is_offline()
