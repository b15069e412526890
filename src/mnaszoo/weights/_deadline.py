"""The overall time limit of a download, and the faults that are not worth retrying.

Every download (Hub or URL, retries included) ends within its deadline: ``download_timeout=``
seconds, else ``$MNASZOO_DOWNLOAD_TIMEOUT``, else :data:`DEFAULT_DOWNLOAD_TIMEOUT`. A host name
that does not resolve is not transient (no DNS, or a typo in ``HF_ENDPOINT``): it fails at once
instead of being retried.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from .._validate import check_float
from ..errors import DownloadError, InvalidArgumentError

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "TIMEOUT_ENV",
    "Deadline",
    "check_resolvable",
    "is_name_resolution_error",
    "sleep",
]

DEFAULT_DOWNLOAD_TIMEOUT = 120.0
"""Seconds a download may take in all (connecting, retries and back-off included); a 20 MB
MnasNet checkpoint needs about 170 KB/s to arrive in time."""
TIMEOUT_ENV = "MNASZOO_DOWNLOAD_TIMEOUT"
_T = TypeVar("_T")
_PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def sleep(seconds: float) -> None:
    """Back-off pause between download attempts (tests replace it)."""
    time.sleep(seconds)


class Deadline:
    """The moment a download must be over by.

    Args:
        timeout: seconds from now; ``None``: ``$MNASZOO_DOWNLOAD_TIMEOUT``, else the default.

    Raises:
        InvalidArgumentError: the timeout (argument or variable) is not a positive number.
    """

    def __init__(self, timeout: float | None = None) -> None:
        if timeout is None:
            text = os.environ.get(TIMEOUT_ENV, "").strip()
            try:
                timeout = float(text) if text else DEFAULT_DOWNLOAD_TIMEOUT
            except ValueError as error:
                raise InvalidArgumentError(
                    f"{TIMEOUT_ENV}={text!r} is not a number of seconds."
                ) from error
        self.seconds = check_float("download_timeout", timeout, minimum=0, min_inclusive=False)
        self.start = time.monotonic()

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self.start + self.seconds - time.monotonic())

    def error(self, what: str) -> DownloadError:
        """The error for a download that ran out of time."""
        waited = time.monotonic() - self.start
        return DownloadError(
            f"Gave up on {what} after waiting {waited:.1f} s: the download deadline is"
            f" {self.seconds:g} s. On a slow link raise it with download_timeout= or"
            f" {TIMEOUT_ENV}; if the server never answers, check HF_ENDPOINT / HTTPS_PROXY."
        )

    def run(self, func: Callable[[], _T], what: str) -> _T:
        """``func()`` if it returns within the deadline, else :meth:`error`.

        ``func`` runs in a daemon thread, since a library call blocked on a silent server
        cannot be interrupted; once abandoned, it ends with its own timeouts and its partial
        files are removed by the caller (or, if it outlives that, as stale files later).
        """
        box: dict[str, object] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["value"] = func()
            except BaseException as exc:  # handed over to the calling thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=target, name="mnaszoo-download", daemon=True).start()
        if not done.wait(self.remaining()):
            raise self.error(what)
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]


def is_name_resolution_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a failed DNS lookup."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror):
            return True
        reason = getattr(exc, "reason", None)
        if isinstance(reason, socket.gaierror):
            return True
        text = str(exc)
        if "Name or service not known" in text or "name resolution" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def check_resolvable(url: str, deadline: Deadline, what: str) -> None:
    """Fail at once, with advice, when the host of ``url`` has no address (no DNS here).

    Skipped behind a proxy, which resolves names itself.

    Raises:
        DownloadError: the name does not resolve, or the lookup outlasts the deadline.
    """
    if any(os.environ.get(name) for name in _PROXY_ENV):
        return
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        deadline.run(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), what)
    except socket.gaierror as exc:
        raise DownloadError(
            f"Cannot download {what}: the host name {host!r} does not resolve ({exc}). This"
            " machine has no DNS or no network (a name that does not resolve is not retried)."
            " Offline, set HF_HUB_OFFLINE=1 and use the cache; otherwise check HF_ENDPOINT or"
            " set HTTPS_PROXY."
        ) from exc
