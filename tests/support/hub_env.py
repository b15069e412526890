"""Point the *real* ``huggingface_hub`` at a local `HubServer`, with an isolated cache.

Why environment variables are not enough (huggingface_hub 2.4.0): most settings are read once,
at import time, into module globals. Setting ``HF_ENDPOINT`` after ``import huggingface_hub``
changes nothing in the current process. `hf_hub_environment` therefore sets the environment
variables (for child processes, which import huggingface_hub afresh) *and* patches these
import-time copies in the running process:

``huggingface_hub.constants``
    ``ENDPOINT`` and ``HUGGINGFACE_CO_URL_TEMPLATE`` (``hf_hub_url`` formats the template and
    only swaps the ``endpoint=`` argument in when the URL starts with ``ENDPOINT``),
    ``HF_HOME``, ``HF_HUB_CACHE`` (default ``cache_dir`` of ``hf_hub_download``),
    ``HUGGINGFACE_HUB_CACHE``, ``HF_ASSETS_CACHE``, ``HF_XET_CACHE``, ``HF_TOKEN_PATH`` and
    ``HF_STORED_TOKENS_PATH`` (so a developer's real token is never read and sent),
    ``HF_HUB_OFFLINE`` (read by ``is_offline_mode()`` on every request; the env var is not
    re-read), ``HF_HUB_DISABLE_XET``, ``HF_HUB_DISABLE_TELEMETRY``,
    ``HF_HUB_DISABLE_PROGRESS_BARS``, ``HF_HUB_ETAG_TIMEOUT``, ``HF_HUB_DOWNLOAD_TIMEOUT``.
``huggingface_hub.utils.tqdm.HF_HUB_DISABLE_PROGRESS_BARS``
    copied with ``from ..constants import ...`` at import time.
``huggingface_hub.utils._http._HUB_ORIGINS``
    frozenset of trusted origins computed from ``ENDPOINT`` at import; redirects to these keep
    the ``Authorization`` header. The server's hub origin is added (as if ``HF_ENDPOINT`` had been
    set before import). The CDN origin is deliberately *not* added.
``huggingface_hub.hf_api.api.endpoint``
    the module-level ``HfApi()`` behind ``huggingface_hub.model_info`` & co. captured
    ``ENDPOINT`` when it was created.
``huggingface_hub.utils._cache_manager.HF_HUB_CACHE`` / ``utils._cache_assets.HF_ASSETS_CACHE``
    ``from ..constants import`` copies (``scan_cache_dir`` / ``cached_assets_path`` defaults).

The shared ``httpx2.Client`` (``huggingface_hub.utils.get_session()``) is closed on entry and
exit (``close_session()``): it caches keep-alive connections to previous servers and reads proxy
environment variables only when it is created. Proxy variables are removed and ``NO_PROXY``
covers 127.0.0.1/localhost, because ``httpx2`` honours ``HTTP(S)_PROXY``/``ALL_PROXY``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time as _real_time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .hub_server import HubServer

__all__ = [
    "HubEnv",
    "RecordingSleep",
    "download_worker",
    "fast_retries",
    "hf_hub_environment",
]

_ENV_TO_DELETE = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_OIDC_RESOURCE",
    "HUGGINGFACE_HUB_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HUGGINGFACE_CO_STAGING",
    "HF_HUB_ETAG_TIMEOUT",
    "HF_HUB_DOWNLOAD_TIMEOUT",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "HF_XET_HIGH_PERFORMANCE",
    "HF_DEBUG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@dataclass
class HubEnv:
    """Handle returned by `hf_hub_environment`."""

    server: HubServer
    home: Path
    """Temporary ``HF_HOME``."""
    cache_dir: Path
    """Temporary ``HF_HUB_CACHE`` (``home / "hub"``): where ``hf_hub_download`` caches."""
    monkeypatch: pytest.MonkeyPatch = field(repr=False)

    @property
    def endpoint(self) -> str:
        """The ``HF_ENDPOINT`` in effect (``server.url``)."""
        return self.server.url

    def set_offline(self, offline: bool = True) -> None:
        """Toggle ``HF_HUB_OFFLINE`` for this process (constant) and child processes (env)."""
        constants = importlib.import_module("huggingface_hub.constants")
        self.monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
        if offline:
            self.monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        else:
            self.monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def repo_cache(self, repo_id: str, repo_type: str = "model") -> Path:
        """``<cache>/models--org--name`` folder of a repo."""
        return self.cache_dir / "--".join([f"{repo_type}s", *repo_id.split("/")])


@contextmanager
def hf_hub_environment(
    server: HubServer,
    home: Path,
    *,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> Iterator[HubEnv]:
    """Configure env vars and huggingface_hub's import-time globals for ``server``.

    Args:
        server: The running `HubServer` to use as ``HF_ENDPOINT``.
        home: Directory used as ``HF_HOME`` (created); the cache is ``home / "hub"``.
        monkeypatch: pytest's fixture, so everything is undone at test teardown. Without it a
            private ``pytest.MonkeyPatch`` is used and undone when the context exits.

    Example::

        @pytest.fixture
        def hub(tmp_path, monkeypatch):
            with HubServer() as server, hf_hub_environment(
                server, tmp_path / "hf", monkeypatch=monkeypatch
            ) as env:
                yield env
    """
    if monkeypatch is None:
        with (
            pytest.MonkeyPatch.context() as own,
            hf_hub_environment(server, home, monkeypatch=own) as env,
        ):
            yield env
        return

    constants = importlib.import_module("huggingface_hub.constants")
    http_utils = importlib.import_module("huggingface_hub.utils._http")
    tqdm_utils = importlib.import_module("huggingface_hub.utils.tqdm")
    hf_api = importlib.import_module("huggingface_hub.hf_api")
    cache_manager = importlib.import_module("huggingface_hub.utils._cache_manager")
    cache_assets = importlib.import_module("huggingface_hub.utils._cache_assets")

    home = Path(home).resolve()
    cache_dir = home / "hub"
    cache_dir.mkdir(parents=True, exist_ok=True)
    endpoint = server.url
    paths = {
        "HF_HOME": home,
        "HF_HUB_CACHE": cache_dir,
        "HF_ASSETS_CACHE": home / "assets",
        "HF_XET_CACHE": home / "xet",
        "HF_TOKEN_PATH": home / "token",
    }

    mp = monkeypatch
    for name in _ENV_TO_DELETE:
        mp.delenv(name, raising=False)
    mp.setenv("HF_ENDPOINT", endpoint)
    for name, value in paths.items():
        mp.setenv(name, str(value))
    for name in (
        "HF_HUB_DISABLE_XET",
        "HF_HUB_DISABLE_TELEMETRY",
        "HF_HUB_DISABLE_PROGRESS_BARS",
        "HF_HUB_DISABLE_SYMLINKS_WARNING",
        "HF_HUB_DISABLE_UPDATE_CHECK",
        "HF_HUB_DISABLE_EXPERIMENTAL_WARNING",
    ):
        mp.setenv(name, "1")
    no_proxy = [h for h in os.environ.get("NO_PROXY", "").split(",") if h]
    mp.setenv("NO_PROXY", ",".join([*no_proxy, "127.0.0.1", "localhost"]))
    mp.setenv("no_proxy", os.environ["NO_PROXY"])

    mp.setattr(constants, "ENDPOINT", endpoint)
    mp.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    mp.setattr(constants, "HF_HOME", str(home))
    mp.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    mp.setattr(constants, "HUGGINGFACE_HUB_CACHE", str(cache_dir))
    mp.setattr(constants, "HF_ASSETS_CACHE", str(paths["HF_ASSETS_CACHE"]))
    mp.setattr(constants, "HF_XET_CACHE", str(paths["HF_XET_CACHE"]))
    mp.setattr(constants, "HF_TOKEN_PATH", str(paths["HF_TOKEN_PATH"]))
    mp.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    mp.setattr(constants, "HF_HUB_OFFLINE", False)
    mp.setattr(constants, "HF_HUB_DISABLE_XET", True)
    mp.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    mp.setattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    mp.setattr(constants, "HF_HUB_ETAG_TIMEOUT", constants.DEFAULT_ETAG_TIMEOUT)
    mp.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", constants.DEFAULT_DOWNLOAD_TIMEOUT)
    mp.setattr(tqdm_utils, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    hub_origin = _origin(endpoint)
    mp.setattr(http_utils, "_HUB_ORIGINS", frozenset({*http_utils._HUB_ORIGINS, hub_origin}))
    mp.setattr(hf_api.api, "endpoint", endpoint)
    mp.setattr(cache_manager, "HF_HUB_CACHE", str(cache_dir))
    mp.setattr(cache_assets, "HF_ASSETS_CACHE", str(paths["HF_ASSETS_CACHE"]))

    http_utils.close_session()
    try:
        yield HubEnv(server=server, home=home, cache_dir=cache_dir, monkeypatch=mp)
    finally:
        http_utils.close_session()


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return (parts.scheme, (parts.hostname or "").lower(), parts.port or 80)


class RecordingSleep:
    """Stand-in for the ``time`` module whose ``sleep`` returns at once and records delays."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def sleep(self, seconds: float) -> None:
        """Record ``seconds`` instead of sleeping."""
        self.calls.append(float(seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_time, name)


def fast_retries(monkeypatch: pytest.MonkeyPatch) -> RecordingSleep:
    """Make huggingface_hub's retry back-off instant and observable.

    Replaces the ``time`` module seen by ``huggingface_hub.file_download`` (1 s pause before
    resuming a broken download) and ``huggingface_hub.utils._http`` (exponential back-off
    1, 2, 4, 8, 8 s on 5xx/429 and network errors), and mnaszoo's pause between attempts of a
    Hub download (``mnaszoo.weights._deadline.sleep``). Global ``time.sleep`` is untouched.
    """
    recorder = RecordingSleep()
    for module_name in ("huggingface_hub.file_download", "huggingface_hub.utils._http"):
        monkeypatch.setattr(importlib.import_module(module_name), "time", recorder)
    # mnaszoo's own back-off between attempts of a Hub download (within its deadline).
    monkeypatch.setattr(
        importlib.import_module("mnaszoo.weights._deadline"), "sleep", recorder.sleep
    )
    return recorder


def download_worker(args: tuple[str, str, str]) -> tuple[str, str]:
    """Child-process entry point: ``hf_hub_download(repo_id, filename, revision=...)``.

    Relies on the environment inherited from the parent (``HF_ENDPOINT``, ``HF_HOME``, ...):
    a spawned child imports huggingface_hub afresh, so env vars are enough there.

    Returns:
        ``(local_path, sha256 hex of the file content)``.
    """
    from huggingface_hub import hf_hub_download

    repo_id, filename, revision = args
    path = hf_hub_download(repo_id, filename, revision=revision)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return path, digest
