"""Plain URLs with :mod:`urllib.request` into ``<cache>/urls/<basename>``, verified by sha256,
retried with back-off on transient failures."""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .._io import new_file_mode
from ..errors import (
    AccessDeniedError,
    CorruptCheckpointError,
    DownloadError,
    IntegrityError,
    InvalidArgumentError,
    RemoteFileNotFoundError,
)
from ._cache import (
    CHUNK,
    FIX_ADVICE,
    RETRY_STATUS,
    WHAT_IT_IS,
    PathLike,
    check_pins,
    clean_stale,
    compare_digest,
    default_cache_dir,
    is_offline,
    mismatch,
    not_cached_error,
    not_writable_error,
    remove_bad_file,
)
from ._deadline import Deadline, is_name_resolution_error
from ._files import sniff

__all__ = ["fetch_url"]

logger = logging.getLogger(__name__)


def _sleep(seconds: float) -> None:
    """Back-off pause between URL download attempts (tests replace it)."""
    time.sleep(seconds)


class _TransientError(Exception):
    """A URL download attempt failed in a way worth retrying."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def fetch_url(
    url: str,
    *,
    sha256: str | None,
    sha256_prefix: str | None = None,
    size: int | None = None,
    cache_dir: PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    retries: int = 3,
    timeout: float = 30.0,
    download_timeout: float | None = None,
) -> Path:
    """Return the local path of a verified file downloaded from ``url``.

    The file is cached as ``<cache>/urls/<basename of the URL>`` and re-verified on every use
    (a bad cached file is deleted, then downloaded again when online). Downloads stream into a
    temporary file in the same folder, hashed on the way, and are renamed into place only once
    verified, so concurrent processes each end with the one good file.

    Args:
        url: ``http(s)://`` URL of the file.
        sha256: Expected sha256 (64 hex).
        sha256_prefix: Expected start of the sha256 (as in torchvision file names); at least
            one of ``sha256`` and ``sha256_prefix`` is required.
        size: Expected size in bytes, if known.
        cache_dir: Cache root (default :func:`default_cache_dir`).
        local_files_only: Never use the network.
        force_download: Download again; the cached file is replaced only by a verified one.
        retries: Extra attempts after 5xx/429, connection errors, timeouts or a cut-off body.
        timeout: Seconds to wait for connecting and for each read.
        download_timeout: Seconds the whole download may take, retries included (default:
            ``$MNASZOO_DOWNLOAD_TIMEOUT``, else 120). A host name that does not resolve is not
            retried.

    Returns:
        Path of the cached file.

    Raises:
        WeightsNotCachedError: offline or ``local_files_only`` and the file is not cached.
        RemoteFileNotFoundError: HTTP 404/410 (not retried).
        AccessDeniedError: HTTP 401/403 (not retried).
        DownloadError: the server could not be reached or kept failing.
        IntegrityError: the file does not have the expected sha256 or size.
        CorruptCheckpointError: the server sent an HTML page or a Git-LFS pointer.
        CacheNotWritableError: the cache directory cannot be written.
        InvalidArgumentError: a bad argument, or ``force_download`` while offline.
    """
    check_pins(sha256, sha256_prefix, size)
    deadline = Deadline(download_timeout)
    if sha256 is None and sha256_prefix is None:
        raise InvalidArgumentError(f"{url}: pass sha256= or sha256_prefix= (files are pinned).")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0 or timeout <= 0:
        raise InvalidArgumentError(f"need retries >= 0 and timeout > 0, got {retries}, {timeout}.")
    name = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    if not name or name.startswith(".") or "\\" in name:
        raise InvalidArgumentError(f"{url!r} does not end with a usable file name.")
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder /= "urls"
    target = folder / name
    offline = local_files_only or is_offline()
    if force_download and offline:
        raise InvalidArgumentError("force_download=True needs the network, but it is disabled.")
    if not force_download and target.is_file():
        problem = mismatch(target, sha256, sha256_prefix, size)
        if problem is None:
            return target
        note = remove_bad_file(target)
        if offline:
            raise IntegrityError(f"The cached {target} (from {url}) {problem}; {note}")
        logger.warning("Cached %s %s; %s Downloading it again.", target, problem, note)
    if offline:
        raise not_cached_error(url, folder.parent, local_files_only, "MNASZOO_CACHE")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise not_writable_error(folder, exc, "MNASZOO_CACHE") from exc
    clean_stale(folder, ".*.part")
    logger.info("Downloading %s into %s", url, folder)
    for attempt in range(retries + 1):
        try:
            return _download_url(url, target, sha256, sha256_prefix, size, timeout, deadline)
        except _TransientError as exc:
            pause = max(min(2.0**attempt, 30.0), exc.retry_after)
            if attempt < retries and pause >= deadline.remaining():
                raise deadline.error(url) from exc
            if attempt == retries:
                raise DownloadError(
                    f"Could not download {url} after {retries + 1} attempts: {exc}. Check the"
                    " network (HTTPS_PROXY) and try again."
                    + FIX_ADVICE.format(where=folder.parent, env="MNASZOO_CACHE")
                ) from exc
            logger.info("Download of %s failed (%s); retrying.", url, exc)
            _sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _download_url(
    url: str,
    target: Path,
    sha256: str | None,
    prefix: str | None,
    size: int | None,
    timeout: float,
    deadline: Deadline,
) -> Path:
    """One attempt: stream into a temp file next to ``target``, verify, ``os.replace``."""
    from .._version import __version__

    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
        os.fchmod(fd, new_file_mode())  # mkstemp's 0600 would hide the cache from other users
    except OSError as exc:
        raise not_writable_error(target.parent, exc, "MNASZOO_CACHE") from exc
    tmp = Path(tmp_name)
    headers = {"User-Agent": f"mnaszoo/{__version__}", "Accept-Encoding": "identity"}
    try:
        digest, total, expected = hashlib.sha256(), 0, None
        with os.fdopen(fd, "wb") as out:
            try:  # build_opener() reads proxy settings now, not at first use
                request = urllib.request.Request(url, headers=headers)
                wait = min(timeout, max(deadline.remaining(), 0.1))
                with urllib.request.build_opener().open(request, timeout=wait) as response:
                    length = response.headers.get("Content-Length")
                    expected = int(length) if length and length.isdigit() else None
                    content_type = response.headers.get("Content-Type", "")
                    chunk = response.read(CHUNK)
                    found = sniff(chunk) or ("html" if "text/html" in content_type else None)
                    kind = None if found is None else WHAT_IT_IS[found]
                    if kind is not None:
                        raise CorruptCheckpointError(
                            f"{url} served {kind}; nothing was cached. Check the URL (a moved"
                            " file, a login wall or a Git-LFS checkout without the real file)."
                        )
                    while chunk:
                        digest.update(chunk)
                        out.write(chunk)
                        total += len(chunk)
                        if deadline.remaining() <= 0:  # a trickle must not outlast it either
                            raise deadline.error(url)
                        chunk = response.read(CHUNK)
            except urllib.error.HTTPError as exc:
                raise _http_error(url, exc) from exc
            except (urllib.error.URLError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                if is_name_resolution_error(exc):
                    raise DownloadError(
                        f"Cannot download {url}: its host name does not resolve ({reason}). This"
                        " machine has no DNS or no network (not retried); check the URL or set"
                        " HTTPS_PROXY."
                    ) from exc
                if type(reason).__name__ == "SSLCertVerificationError":
                    raise DownloadError(
                        f"TLS certificate check failed for {url} ({reason}). Behind a proxy"
                        " set HTTPS_PROXY and SSL_CERT_FILE to your CA bundle."
                    ) from exc
                raise _TransientError(f"{type(exc).__name__}: {reason}") from exc
            except OSError as exc:  # a full or read-only disk, or a network error mid-body
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
                    raise not_writable_error(target.parent, exc, "MNASZOO_CACHE") from exc
                raise _TransientError(f"{type(exc).__name__}: {exc}") from exc
        if expected is not None and total != expected:
            raise _TransientError(f"connection closed after {total} of {expected} bytes")
        problem = compare_digest((digest.hexdigest(), total), sha256, prefix, size)
        if problem is not None:
            raise IntegrityError(
                f"The file downloaded from {url} {problem}. It was discarded and the cache is"
                " unchanged. Try again later; if it persists, the file at this URL is not the"
                " pinned one: load a file you trust with checkpoint=."
            )
        os.replace(tmp, target)  # atomic: readers see the old file or the whole new one
        return target
    finally:
        tmp.unlink(missing_ok=True)


def _http_error(url: str, exc: urllib.error.HTTPError) -> Exception:
    code, retry_after = exc.code, exc.headers.get("Retry-After", "") if exc.headers else ""
    exc.close()
    if code in (404, 410):
        return RemoteFileNotFoundError(f"{url} does not exist (HTTP {code}).")
    if code in (401, 403):
        return AccessDeniedError(
            f"{url} refused access (HTTP {code}): the link may have expired or need credentials."
            " Download the file yourself and pass checkpoint= its path."
        )
    if code in RETRY_STATUS:
        wait = float(retry_after) if retry_after.isdigit() else 0.0
        return _TransientError(f"HTTP {code}", retry_after=min(wait, 60.0))
    return DownloadError(f"{url} answered HTTP {code}.")
