"""Tests of the local Hub test server against the real ``huggingface_hub.hf_hub_download``.

Besides checking the server, these tests pin down how huggingface_hub (2.4.0 here) behaves on
network faults, so that mnaszoo's loader can rely on (or guard against) it. Facts established:

* Cached file + pinned 40-hex revision: returned without any request. Branch revision: one
  HEAD per call while online; with the Hub unreachable the cached ``refs/<branch>`` is used.
* 5xx on the metadata HEAD with nothing cached: one immediate second try (with back-off enabled
  on that one: 1, 2, 4, 8, 8 s), then ``LocalEntryNotFoundError`` caused by ``HfHubHTTPError``.
* 5xx on the download GET: ``HfHubHTTPError`` at once, no retry.
* Body cut short: ``http_get`` retries (1 s pause) up to 5 times without progress, then the
  ``httpx2.RemoteProtocolError`` escapes; nothing is left in the cache. Bytes already received in
  a partial 10 MiB chunk are discarded, so small files restart from offset 0 (no ``Range``).
* Corrupted bytes with the right size: NOT detected; the cache holds a blob whose name (sha256)
  does not match its content. The loader must verify the sha256 itself.
"""

from __future__ import annotations

import hashlib
import http.client
import multiprocessing
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import (
    constants as hf_constants,
    hf_hub_download,
    model_info,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.support.hub_env import HubEnv, download_worker, fast_retries, hf_hub_environment
from tests.support.hub_server import HubFile, HubServer, git_blob_sha1

REPO = "mnaszoo/mnasnet-test"
SHA = "0123456789abcdef0123456789abcdef01234567"
WEIGHTS = "mnasnet_a1.pth"
DATA = bytes(range(256)) * 400  # 102400 bytes, below huggingface_hub's 10 MiB chunk size
CONFIG = b'{"arch": "mnasnet_a1"}'


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubEnv]:
    with (
        HubServer() as server,
        hf_hub_environment(server, tmp_path / "hf_home", monkeypatch=monkeypatch) as env,
    ):
        yield env
        assert server.errors == []


@pytest.fixture
def weights(hub: HubEnv) -> HubFile:
    hub.server.add_hub_file(REPO, "config.json", CONFIG, SHA, lfs=False)
    return hub.server.add_hub_file(REPO, WEIGHTS, DATA, SHA)


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cache_files(env: HubEnv) -> list[str]:
    root = env.repo_cache(REPO)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


# --------------------------------------------------------------------------- protocol


def test_resolve_head_speaks_the_hub_protocol(hub: HubEnv, weights: HubFile) -> None:
    host, port = hub.server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("HEAD", f"/{REPO}/resolve/main/{WEIGHTS}")
        lfs = conn.getresponse()
        lfs.read()
        conn.request("HEAD", f"/{REPO}/resolve/{SHA}/config.json")
        regular = conn.getresponse()
        regular.read()
    finally:
        conn.close()

    assert lfs.status == 302
    assert lfs.getheader("X-Repo-Commit") == SHA
    assert lfs.getheader("X-Linked-Etag") == f'"{weights.sha256}"'
    assert lfs.getheader("X-Linked-Size") == str(len(DATA))
    assert lfs.getheader("Location", "").startswith(hub.server.cdn_url + "/lfs/" + weights.sha256)
    assert hub.server.cdn_url != hub.server.url  # another origin: hf must not follow the HEAD
    assert regular.status == 200
    assert regular.getheader("X-Repo-Commit") == SHA
    assert regular.getheader("ETag") == f'"{git_blob_sha1(CONFIG)}"'
    assert regular.getheader("Content-Length") == str(len(CONFIG))
    for response in (lfs, regular):
        assert not any(name.lower().startswith("x-xet") for name, _ in response.getheaders())


def test_lfs_download_returns_exact_bytes_via_cdn(hub: HubEnv, weights: HubFile) -> None:
    path = hf_hub_download(REPO, WEIGHTS, revision=SHA, token="hf_secret")

    assert Path(path).read_bytes() == DATA
    assert Path(path) == hub.repo_cache(REPO) / "snapshots" / SHA / WEIGHTS
    assert Path(path).resolve().name == weights.sha256  # blob named after X-Linked-Etag
    log = hub.server.requests
    assert [(r.role, r.method, r.status) for r in log] == [
        ("hub", "HEAD", 302),
        ("cdn", "GET", 200),
    ]
    assert log[0].headers["authorization"] == "Bearer hf_secret"
    assert "authorization" not in log[1].headers  # dropped for the other origin
    assert log[0].headers["accept-encoding"] == "identity"


def test_regular_file_via_branch_records_ref(hub: HubEnv, weights: HubFile) -> None:
    path = hf_hub_download(REPO, "config.json")  # revision "main"

    assert Path(path).read_bytes() == CONFIG
    assert Path(path).resolve().name == git_blob_sha1(CONFIG)
    assert (hub.repo_cache(REPO) / "refs" / "main").read_text() == SHA
    assert [(r.method, r.status) for r in hub.server.requests] == [("HEAD", 200), ("GET", 200)]


def test_direct_lfs_mode_serves_bytes_from_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        HubServer(lfs_redirect="direct") as server,
        hf_hub_environment(server, tmp_path / "hf", monkeypatch=monkeypatch),
    ):
        hub_file = server.add_hub_file(REPO, WEIGHTS, DATA, SHA)
        path = hf_hub_download(REPO, WEIGHTS, revision=SHA)

        assert Path(path).read_bytes() == DATA
        assert Path(path).resolve().name == hub_file.sha256
        assert [(r.role, r.method, r.status) for r in server.requests] == [
            ("hub", "HEAD", 200),
            ("hub", "GET", 200),
        ]


# --------------------------------------------------------------------------- cache / offline


def test_cached_load_makes_no_requests(hub: HubEnv, weights: HubFile) -> None:
    first = hf_hub_download(REPO, WEIGHTS, revision=SHA)
    hf_hub_download(REPO, "config.json", revision="main")
    hub.server.clear_log()

    assert hf_hub_download(REPO, WEIGHTS, revision=SHA) == first
    assert hf_hub_download(REPO, WEIGHTS, revision=SHA, local_files_only=True) == first
    assert hub.server.requests == []

    hf_hub_download(REPO, "config.json", revision="main")  # a branch is re-checked online
    assert [r.method for r in hub.server.requests] == ["HEAD"]

    hub.server.stop()
    assert hf_hub_download(REPO, WEIGHTS, revision=SHA) == first
    cached = hf_hub_download(REPO, "config.json", revision="main")  # via refs/main
    assert Path(cached).read_bytes() == CONFIG
    assert Path(first).read_bytes() == DATA


def test_offline_mode_with_empty_cache_raises_without_requests(
    hub: HubEnv, weights: HubFile
) -> None:
    hub.set_offline()

    with pytest.raises(LocalEntryNotFoundError) as excinfo:
        hf_hub_download(REPO, WEIGHTS, revision=SHA)

    assert isinstance(excinfo.value.__cause__, OfflineModeIsEnabled)
    assert hub.server.requests == []


def test_offline_mode_serves_cached_branch(hub: HubEnv, weights: HubFile) -> None:
    path = hf_hub_download(REPO, WEIGHTS)
    hub.server.clear_log()
    hub.set_offline()

    assert hf_hub_download(REPO, WEIGHTS) == path
    assert hub.server.requests == []


def test_local_files_only_with_empty_cache_raises(hub: HubEnv, weights: HubFile) -> None:
    with pytest.raises(LocalEntryNotFoundError, match="local_files_only"):
        hf_hub_download(REPO, WEIGHTS, revision=SHA, local_files_only=True)
    assert hub.server.requests == []


def test_force_download_replaces_damaged_cache(hub: HubEnv, weights: HubFile) -> None:
    path = hf_hub_download(REPO, WEIGHTS, revision=SHA)
    blob = Path(path).resolve()
    blob.write_bytes(b"damaged")
    hub.server.clear_log()

    assert hf_hub_download(REPO, WEIGHTS, revision=SHA) == path  # not re-checked...
    assert Path(path).read_bytes() == b"damaged"  # ...so damage goes unnoticed
    assert hf_hub_download(REPO, WEIGHTS, revision=SHA, force_download=True) == path

    assert Path(path).read_bytes() == DATA
    assert [r.method for r in hub.server.requests] == ["HEAD", "GET"]


# --------------------------------------------------------------------------- HTTP errors


def test_head_500_once_is_retried_immediately(
    hub: HubEnv, weights: HubFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = fast_retries(monkeypatch)
    hub.server.fail_next(WEIGHTS, 500)

    path = hf_hub_download(REPO, WEIGHTS, revision=SHA)

    assert Path(path).read_bytes() == DATA
    assert [(r.method, r.status) for r in hub.server.requests] == [
        ("HEAD", 500),
        ("HEAD", 302),
        ("GET", 200),
    ]
    assert sleeps.calls == []


def test_head_500_persistent_backs_off_then_raises(
    hub: HubEnv, weights: HubFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = fast_retries(monkeypatch)
    hub.server.fail_always(WEIGHTS, 503, method="HEAD")

    with pytest.raises(LocalEntryNotFoundError) as excinfo:
        hf_hub_download(REPO, WEIGHTS, revision=SHA)

    cause = excinfo.value.__cause__
    assert isinstance(cause, HfHubHTTPError)
    assert cause.response.status_code == 503
    assert [r.status for r in hub.server.requests] == [503] * 7  # 1 + (1 + 5 retries)
    assert sleeps.calls == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_get_500_is_not_retried(hub: HubEnv, weights: HubFile) -> None:
    hub.server.fail_next(WEIGHTS, 500, method="GET")

    with pytest.raises(HfHubHTTPError) as excinfo:
        hf_hub_download(REPO, WEIGHTS, revision=SHA)

    assert excinfo.value.response.status_code == 500
    assert [(r.role, r.status) for r in hub.server.requests] == [("hub", 302), ("cdn", 500)]
    assert _cache_files(hub) == []
    assert Path(hf_hub_download(REPO, WEIGHTS, revision=SHA)).read_bytes() == DATA


def test_missing_entry_repo_and_revision(hub: HubEnv, weights: HubFile) -> None:
    with pytest.raises(RemoteEntryNotFoundError) as excinfo:
        hf_hub_download(REPO, "missing.pth", revision=SHA)
    assert isinstance(excinfo.value, EntryNotFoundError)
    assert excinfo.value.response.status_code == 404
    assert (hub.repo_cache(REPO) / ".no_exist" / SHA / "missing.pth").exists()

    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("mnaszoo/nope", WEIGHTS, revision=SHA)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, WEIGHTS, revision="f" * 40)
    assert [r.status for r in hub.server.requests] == [404, 401, 404]


def test_injected_entry_not_found(hub: HubEnv, weights: HubFile) -> None:
    hub.server.fail_always(WEIGHTS, 404, error_code="EntryNotFound")

    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, WEIGHTS, revision=SHA)


def test_gated_repo_errors_and_token(hub: HubEnv, weights: HubFile) -> None:
    hub.server.set_access(REPO, gated=True, token="hf_granted")

    with pytest.raises(GatedRepoError) as no_token:
        hf_hub_download(REPO, WEIGHTS, revision=SHA)
    with pytest.raises(GatedRepoError) as bad_token:
        hf_hub_download(REPO, WEIGHTS, revision=SHA, token="hf_wrong")
    path = hf_hub_download(REPO, WEIGHTS, revision=SHA, token="hf_granted")

    assert no_token.value.response.status_code == 401
    assert bad_token.value.response.status_code == 403
    assert Path(path).read_bytes() == DATA


def test_private_repo_is_repository_not_found(hub: HubEnv, weights: HubFile) -> None:
    hub.server.set_access(REPO, private=True, token="hf_owner")

    with pytest.raises(RepositoryNotFoundError) as excinfo:
        hf_hub_download(REPO, WEIGHTS, revision=SHA)

    assert not isinstance(excinfo.value, GatedRepoError)
    assert excinfo.value.response.status_code == 401


def test_status_without_error_code(hub: HubEnv, weights: HubFile) -> None:
    # Without X-Error-Code, hf maps a 401 to RepositoryNotFoundError only for https:// URLs
    # (REPO_API_REGEX); against http://127.0.0.1 it stays a plain HfHubHTTPError.
    hub.server.fail_always(WEIGHTS, 401, method="HEAD")
    with pytest.raises(HfHubHTTPError) as unauthorized:
        hf_hub_download(REPO, WEIGHTS, revision=SHA)
    assert not isinstance(unauthorized.value, RepositoryNotFoundError)
    assert unauthorized.value.response.status_code == 401

    # A bare 403 is treated like "Hub unreachable": LocalEntryNotFoundError.
    hub.server.clear_faults()
    hub.server.fail_always(WEIGHTS, 403, method="HEAD")
    with pytest.raises(LocalEntryNotFoundError) as forbidden:
        hf_hub_download(REPO, WEIGHTS, revision=SHA)
    assert isinstance(forbidden.value.__cause__, HfHubHTTPError)


# --------------------------------------------------------------------------- broken bodies


def test_truncated_small_file_is_downloaded_again_from_zero(
    hub: HubEnv, weights: HubFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = fast_retries(monkeypatch)
    hub.server.truncate(WEIGHTS, 30_000, times=1)

    path = hf_hub_download(REPO, WEIGHTS, revision=SHA)

    assert Path(path).read_bytes() == DATA
    gets = hub.server.requests_for(WEIGHTS, method="GET")
    assert [(r.status, r.headers.get("range")) for r in gets] == [(200, None), (200, None)]
    assert sleeps.calls == [1.0]


def test_truncated_download_resumes_with_range(
    hub: HubEnv, weights: HubFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retries(monkeypatch)
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    hub.server.truncate(WEIGHTS, 30_000, times=1)

    path = hf_hub_download(REPO, WEIGHTS, revision=SHA)

    assert Path(path).read_bytes() == DATA
    gets = hub.server.requests_for(WEIGHTS, method="GET")
    resumed_at = 30_000 // 4096 * 4096  # the partial chunk is lost
    assert [(r.status, r.headers.get("range")) for r in gets] == [
        (200, None),
        (206, f"bytes={resumed_at}-"),
    ]


def test_persistently_truncated_download_raises_and_caches_nothing(
    hub: HubEnv, weights: HubFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = fast_retries(monkeypatch)
    hub.server.truncate(WEIGHTS, 30_000)

    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(REPO, WEIGHTS, revision=SHA)

    assert len(hub.server.requests_for(WEIGHTS, method="GET")) == 6
    assert sleeps.calls == [1.0] * 5
    assert _cache_files(hub) == []  # no blob, no pointer, no *.incomplete


def test_corrupted_bytes_are_not_detected_by_huggingface_hub(hub: HubEnv, weights: HubFile) -> None:
    hub.server.corrupt(WEIGHTS)

    path = hf_hub_download(REPO, WEIGHTS, revision=SHA)  # no error!

    content = Path(path).read_bytes()
    assert len(content) == len(DATA)
    assert content != DATA
    assert Path(path).resolve().name == weights.sha256 != hashlib.sha256(content).hexdigest()


# --------------------------------------------------------------------------- concurrency


def test_concurrent_processes_end_with_one_good_file(hub: HubEnv, weights: HubFile) -> None:
    nproc = 3
    release = hub.server.hold(WEIGHTS, method="GET", timeout=60)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=nproc, mp_context=ctx) as pool:
        futures = [pool.submit(download_worker, (REPO, WEIGHTS, SHA)) for _ in range(nproc)]
        deadline = time.monotonic() + 60
        # Every process has fetched metadata before any byte is served: a real race.
        while len(hub.server.requests_for(WEIGHTS, method="HEAD")) < nproc:
            assert time.monotonic() < deadline, "workers did not reach the server"
            assert not any(f.done() for f in futures), [f.exception() for f in futures]
            time.sleep(0.02)
        release.set()
        results = [f.result(timeout=60) for f in futures]

    assert {path for path, _ in results} == {
        str(hub.repo_cache(REPO) / "snapshots" / SHA / WEIGHTS)
    }
    assert {digest for _, digest in results} == {weights.sha256}
    assert len(hub.server.requests_for(WEIGHTS, method="GET")) == 1  # the file lock worked
    assert _cache_files(hub) == [f"blobs/{weights.sha256}", f"snapshots/{SHA}/{WEIGHTS}"]


# --------------------------------------------------------------------------- API endpoints


def test_model_info_and_snapshot_download(hub: HubEnv, weights: HubFile) -> None:
    info = model_info(REPO, files_metadata=True)  # module-level HfApi: endpoint patched
    assert info.sha == SHA
    siblings = {s.rfilename: s for s in info.siblings or []}
    lfs = siblings[WEIGHTS].lfs
    assert lfs is not None
    assert lfs.sha256 == weights.sha256
    assert siblings[WEIGHTS].size == len(DATA)
    assert siblings["config.json"].lfs is None

    folder = Path(snapshot_download(REPO, revision=SHA))
    assert (folder / WEIGHTS).read_bytes() == DATA
    assert (folder / "config.json").exists()


# --------------------------------------------------------------------------- plain URLs


def _urlopen(request: str | urllib.request.Request) -> http.client.HTTPResponse:
    response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=5)
    return response


def test_plain_url_get_head_and_range(hub: HubEnv) -> None:
    url = hub.server.add_url("/models/mnasnet1.0_top1_73.512-f206786ef8.pth", DATA)

    with _urlopen(url) as response:
        assert response.read() == DATA
        assert response.headers["Content-Length"] == str(len(DATA))
        assert response.headers["ETag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
    with _urlopen(urllib.request.Request(url, method="HEAD")) as response:
        assert response.read() == b""
        assert response.headers["Content-Length"] == str(len(DATA))
    ranged = urllib.request.Request(url, headers={"Range": "bytes=100-"})
    with _urlopen(ranged) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 100-{len(DATA) - 1}/{len(DATA)}"
        assert response.read() == DATA[100:]
    with pytest.raises(urllib.error.HTTPError) as missing:
        _urlopen(hub.server.url_for("/models/absent.pth"))
    assert missing.value.code == 404


def test_plain_url_faults(hub: HubEnv) -> None:
    url = hub.server.add_url("/w/mnasnet.pth", DATA)

    hub.server.fail_next("/w/mnasnet.pth", 500)
    with pytest.raises(urllib.error.HTTPError) as server_error:
        _urlopen(url)
    assert server_error.value.code == 500
    with _urlopen(url) as response:
        assert response.read() == DATA

    hub.server.truncate("/w/mnasnet.pth", 1000, times=1)
    with _urlopen(url) as response, pytest.raises(http.client.IncompleteRead):
        response.read()

    hub.server.corrupt("/w/mnasnet.pth", times=1)
    with _urlopen(url) as response:
        assert hashlib.sha256(response.read()).hexdigest() != hashlib.sha256(DATA).hexdigest()

    hub.server.slow("/w/mnasnet.pth", 2.0, times=1)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(url, timeout=0.2)

    redirect = hub.server.add_redirect("/latest.pth", "/w/mnasnet.pth")
    with _urlopen(redirect) as response:
        assert response.read() == DATA
    assert [r.status for r in hub.server.requests_for("/latest.pth")] == [302]


def test_stopped_server_refuses_connections(hub: HubEnv) -> None:
    url = hub.server.add_url("/x.pth", b"x")
    with _urlopen(url) as response:
        assert response.read() == b"x"

    hub.server.stop()

    assert not hub.server.running
    with pytest.raises(urllib.error.URLError):
        _urlopen(url)
    assert os.environ["HF_ENDPOINT"] == hub.server.url
