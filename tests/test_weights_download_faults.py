"""Downloads end in time and ride out transient faults.

Faults are injected through the loopback Hub (tests/support/hub_server.py); back-off pauses
are recorded instead of slept, except where a test measures the deadline itself.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mnaszoo
from mnaszoo.errors import (
    AccessDeniedError,
    DownloadError,
    InvalidArgumentError,
    RemoteFileNotFoundError,
    WeightsError,
    WeightsNotCachedError,
)
from mnaszoo.weights import _deadline, download, url_download
from tests.support.hub_env import HubEnv, RecordingSleep, fast_retries, hf_hub_environment
from tests.support.hub_server import HubServer, sha256_hex

REPO = "mnaszoo/mnasnet-test"
SHA = "0123456789abcdef0123456789abcdef01234567"
FILE = "model.safetensors"
DATA = bytes(range(256)) * 64
GOOD = sha256_hex(DATA)


@pytest.fixture(params=["cdn", "direct"])
def hub(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HubEnv]:
    with (
        HubServer(lfs_redirect=request.param) as server,
        hf_hub_environment(server, tmp_path / "hf_home", monkeypatch=monkeypatch) as env,
    ):
        monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path / "mnaszoo"))
        monkeypatch.delenv(_deadline.TIMEOUT_ENV, raising=False)
        server.add_hub_file(REPO, FILE, DATA, SHA)
        yield env


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> RecordingSleep:
    recorder = fast_retries(monkeypatch)
    monkeypatch.setattr(url_download, "_sleep", recorder.sleep)
    monkeypatch.setattr(_deadline, "sleep", recorder.sleep)
    return recorder


def _fetch(**kwargs: Any) -> Path:
    return download.fetch_hub_file(REPO, FILE, SHA, sha256=GOOD, **kwargs)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_on_the_file_get_is_retried(hub: HubEnv, sleeps: RecordingSleep, status: int) -> None:
    hub.server.fail_next(FILE, status, method="GET")

    assert _fetch().read_bytes() == DATA

    gets = [r.status for r in hub.server.requests_for(FILE, method="GET")]
    assert gets == [status, 200]
    assert sleeps.calls == [1.0]  # one back-off pause, then the successful attempt


class _Clock(RecordingSleep):
    """Recorded pauses that also move the deadline's clock, as real sleeping would."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.offset += seconds

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def test_persistent_5xx_gives_up_within_the_deadline_and_says_so(
    hub: HubEnv, sleeps: RecordingSleep, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(_deadline, "time", clock)
    monkeypatch.setattr(_deadline, "sleep", clock.sleep)
    sleeps = clock
    hub.server.fail_always(FILE, 503, method="GET")
    with pytest.raises(DownloadError, match=r"503.*after retrying with back-off"):
        _fetch(download_timeout=10)
    # 1 + 2 + 4 s of back-off fit in 10 s; the next pause (8 s) would not.
    assert sleeps.calls == [1.0, 2.0, 4.0]
    assert [r.status for r in hub.server.requests_for(FILE, method="GET")] == [503] * 4


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_hub_that_never_answers_fails_at_the_deadline(
    hub: HubEnv, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    release = hub.server.hold(FILE, method="HEAD", timeout=60)
    kwargs: dict[str, Any] = {}
    if how == "argument":
        kwargs["download_timeout"] = 1.5
    else:
        monkeypatch.setenv(_deadline.TIMEOUT_ENV, "1.5")
    started = time.monotonic()
    try:
        with pytest.raises(DownloadError, match=r"after waiting 1\.\d s.*deadline is 1\.5 s"):
            _fetch(**kwargs)
    finally:
        release.set()
    # Generous: the old code waited huggingface_hub's 60 s timeout five times.
    assert time.monotonic() - started < 30


def test_the_deadline_setting_is_checked(hub: HubEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentError, match="download_timeout must be > 0"):
        _fetch(download_timeout=0)
    monkeypatch.setenv(_deadline.TIMEOUT_ENV, "soon")
    with pytest.raises(InvalidArgumentError, match="MNASZOO_DOWNLOAD_TIMEOUT='soon'"):
        _fetch()
    assert _deadline.DEFAULT_DOWNLOAD_TIMEOUT == 120.0


def test_a_name_that_does_not_resolve_is_not_retried(
    hub: HubEnv, sleeps: RecordingSleep, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as constants

    endpoint = "http://hub.invalid"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    real = socket.getaddrinfo
    lookups: list[str] = []

    def no_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hub.invalid":
            lookups.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(DownloadError, match=r"'hub\.invalid' does not resolve.*HF_HUB_OFFLINE"):
        _fetch()
    assert sleeps.calls == []  # no back-off at all
    assert lookups == ["hub.invalid"]
    # Plain URLs too.
    with pytest.raises(DownloadError, match="does not resolve"):
        download.fetch_url("http://hub.invalid/w/x.pth", sha256=GOOD)
    assert sleeps.calls == []


# --------------------------------------------------------------------------- from_pretrained


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 404, "error_code": "RepoNotFound"}, RemoteFileNotFoundError),
        ({"status": 401, "error_code": "GatedRepo"}, AccessDeniedError),
        ({"status": 404, "error_code": "EntryNotFound"}, RemoteFileNotFoundError),
    ],
)
def test_from_pretrained_maps_hub_errors(
    hub: HubEnv, sleeps: RecordingSleep, fault: dict[str, Any], error: type[Exception]
) -> None:
    hub.server.add_hub_file("me/model", "config.json", b"{}", SHA, lfs=False)
    hub.server.fail_always("me/model", fault["status"], error_code=fault["error_code"])
    with pytest.raises(error):
        mnaszoo.from_pretrained("me/model")


def test_from_pretrained_offline_and_uncached_is_a_weights_error(hub: HubEnv) -> None:
    with pytest.raises(WeightsNotCachedError):
        mnaszoo.from_pretrained("me/model", local_files_only=True)
    assert hub.server.requests == []


@pytest.mark.parametrize("location", ["runs/finetnue", "./finetune", "~/no/such/run", "/no/run"])
def test_a_mistyped_path_is_not_sent_to_the_hub(
    hub: HubEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"local directory .* does not exist"):
        mnaszoo.from_pretrained(location)
    assert hub.server.requests == []
    assert issubclass(RemoteFileNotFoundError, WeightsError)
