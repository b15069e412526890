"""Downloading weight files: the only module of mnaszoo that talks to the network.

Two sources, one contract: a file is returned only after its sha256 (and size, when known) has
been checked, a failed or corrupt download never replaces a good cached file, and every failure
is a :mod:`mnaszoo.errors` exception that says what went wrong and what to do.

* Hugging Face Hub files go through ``huggingface_hub`` into its cache (``HF_HOME`` /
  ``HF_HUB_CACHE``, or ``cache_dir``). A file pinned to a commit and already cached is found
  with no request at all.
* Plain URLs are fetched with :mod:`urllib.request` into ``<cache>/urls/<basename>``, where
  ``<cache>`` is ``cache_dir`` or :func:`default_cache_dir`.

``HF_HUB_OFFLINE=1`` (or ``local_files_only=True``) switches both off: only cached files load.
``huggingface_hub`` is imported inside the functions, so ``import mnaszoo`` stays light.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import (
    AccessDeniedError,
    CacheNotWritableError,
    CorruptCheckpointError,
    DownloadError,
    IntegrityError,
    InvalidArgumentError,
    RemoteFileNotFoundError,
    WeightsNotCachedError,
)

__all__ = ["default_cache_dir", "fetch_hub_file", "fetch_url", "is_offline"]

PathLike = str | os.PathLike[str]
_log = logging.getLogger(__name__)
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(r"[0-9a-f]{8,64}")
_CHUNK = 1 << 20
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_TMP_PREFIX = ".mnaszoo-tmp-"
_STALE_AFTER_S = 24 * 3600.0
_FIX = (
    " To fix: on a machine with network access run `mnaszoo download <model>` (or"
    " `mnaszoo.create(name, pretrained=True)`) once, then copy its cache directory to {where}"
    " here (or point cache_dir= / {env} at the copy); or pass checkpoint= a local file."
)


def _sleep(seconds: float) -> None:
    """Back-off pause between URL download attempts (tests replace it)."""
    time.sleep(seconds)


def default_cache_dir() -> Path:
    """Return mnaszoo's own cache: ``$MNASZOO_CACHE``, else ``$XDG_CACHE_HOME/mnaszoo``
    or ``~/.cache/mnaszoo``. URL downloads live under its ``urls/`` folder.
    """
    env = os.environ.get("MNASZOO_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "mnaszoo"


def is_offline() -> bool:
    """Return whether downloads are disabled by ``HF_HUB_OFFLINE`` (Hub and URLs alike).

    The variable is read at call time; ``huggingface_hub``'s own constant (read when it was
    imported) also counts if the module is already loaded.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


# ----------------------------------------------------------------------------- verification


def _file_digest(path: Path) -> tuple[str, int]:
    digest, total = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            total += len(chunk)
    return digest.hexdigest(), total


def _sniff(head: bytes) -> str | None:
    """Name what a file is when its first bytes show it is not weights at all."""
    text = head[:256].lstrip().lower()
    if text.startswith(b"version https://git-lfs"):
        return "a Git-LFS pointer file, not the weights"
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML page (a login, error or redirect page), not the weights"
    return None


def _compare(
    got: tuple[str, int], sha256: str | None, prefix: str | None, size: int | None
) -> str | None:
    digest, nbytes = got
    if size is not None and nbytes != size:
        return f"has {nbytes} bytes, expected {size}"
    if sha256 is not None and digest != sha256:
        return f"has sha256 {digest}, expected {sha256}"
    if prefix is not None and not digest.startswith(prefix):
        return f"has sha256 {digest}, expected one starting with {prefix}"
    return None


def _mismatch(path: Path, sha256: str | None, prefix: str | None, size: int | None) -> str | None:
    """Return why ``path`` fails the hash/size check (and what it looks like), or None."""
    problem = _compare(_file_digest(path), sha256, prefix, size)
    if problem is not None:
        with open(path, "rb") as f:
            kind = _sniff(f.read(256))
        problem += f"; it is {kind}" if kind else ""
    return problem


def _check_args(sha256: str | None, prefix: str | None, size: int | None) -> None:
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise InvalidArgumentError(f"sha256 must be 64 lowercase hex characters, got {sha256!r}.")
    if prefix is not None and not _PREFIX.fullmatch(prefix):
        raise InvalidArgumentError(f"sha256_prefix must be 8-64 lowercase hex, got {prefix!r}.")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidArgumentError(f"size must be a non-negative int or None, got {size!r}.")


def _remove(path: Path) -> str:
    """Delete a bad file (and, for a Hub snapshot symlink, its blob); describe what happened."""
    try:
        if path.is_symlink():
            path.resolve().unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    except OSError as exc:
        return f"it could not be deleted ({exc}); delete it by hand."
    return "it was deleted."


def _not_cached(what: str, where: Path, local_files_only: bool, env: str) -> WeightsNotCachedError:
    why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set"
    return WeightsNotCachedError(
        f"{what} is not in the cache ({where}) and downloads are disabled ({why})."
        + _FIX.format(where=where, env=env)
    )


def _not_writable(where: Path, exc: OSError, env: str) -> CacheNotWritableError:
    return CacheNotWritableError(
        f"Cannot write to the cache directory {where} ({exc}). Pass cache_dir= a writable"
        f" directory or set {env} to one."
    )


def _clean_stale(folder: Path, pattern: str) -> None:
    """Remove temporary leftovers of crashed downloads (older than a day) in ``folder``."""
    cutoff = time.time() - _STALE_AFTER_S
    for path in folder.glob(pattern):
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime >= cutoff:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


# ----------------------------------------------------------------------------- Hub


def fetch_hub_file(
    repo_id: str,
    filename: str,
    revision: str,
    *,
    sha256: str | None,
    size: int | None = None,
    cache_dir: PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
) -> Path:
    """Return the local path of a verified Hub file, downloading it if needed.

    Args:
        repo_id: Hub repository, e.g. ``"timm/semnasnet_100.rmsp_in1k"``.
        filename: File inside the repository.
        revision: A 40-hex commit (cached files then load with no request at all); a branch
            or tag is resolved to its current commit with one request while online.
        sha256: Expected sha256; None checks against the sha256 the Hub reported for the
            Git-LFS file (a non-LFS file is then refused).
        size: Expected size in bytes, if known.
        cache_dir: huggingface_hub cache to use (default ``HF_HUB_CACHE``).
        local_files_only: Never use the network.
        force_download: Download again; the cached copy is only replaced once the new file
            has been verified.
        token: Hub token (default: ``HF_TOKEN`` or the stored login).

    Returns:
        Path of the file in the cache (a snapshot path, as ``hf_hub_download`` returns).

    Raises:
        WeightsNotCachedError: offline or ``local_files_only`` and the file is not cached.
        RemoteFileNotFoundError: the repository, revision or file does not exist.
        AccessDeniedError: the repository is gated or private and the token lacks access.
        DownloadError: the Hub could not be reached or kept failing.
        IntegrityError: the file does not have the expected sha256 or size.
        CacheNotWritableError: the cache directory cannot be written.
        InvalidArgumentError: a bad argument, or ``force_download`` while offline.
    """
    from huggingface_hub import constants, try_to_load_from_cache

    _check_args(sha256, None, size)
    cache = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE)
    cache = cache.expanduser().resolve()
    what = f"{filename!r} of {repo_id}@{revision}"
    offline = local_files_only or is_offline()
    if force_download and offline:
        raise InvalidArgumentError("force_download=True needs the network, but it is disabled.")
    commit, unreachable = revision, None
    if not _COMMIT.fullmatch(revision) and not offline:
        try:  # a branch or tag: one request to learn its commit, like huggingface_hub
            commit = _resolve_ref(repo_id, filename, revision, token, what, cache)
        except DownloadError as exc:  # Hub unreachable: the cached refs/<revision> still works
            unreachable = exc
    if not force_download:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache), revision=commit)
        if isinstance(cached, str):
            problem = _mismatch(Path(cached), _hub_sha256(Path(cached), sha256, what), None, size)
            if problem is None:
                return Path(cached)
            note = _remove(Path(cached))
            if offline:
                raise IntegrityError(f"The cached {what} at {cached} {problem}; {note}")
            _log.warning("Cached %s %s; %s Downloading it again.", what, problem, note)
    if offline:
        raise _not_cached(what, cache, local_files_only, "HF_HUB_CACHE")
    if unreachable is not None:
        raise unreachable
    _log.info("Downloading %s into %s", what, cache)
    return _download_hub(repo_id, filename, revision, commit, sha256, size, cache, token, what)


def _hub_sha256(pointer: Path, sha256: str | None, what: str) -> str:
    """The sha256 to check: the given one, else the Hub's LFS sha256 (the blob's name)."""
    if sha256 is not None:
        return sha256
    if pointer.is_symlink():
        blob = Path(os.readlink(pointer)).name
        if _SHA256.fullmatch(blob):
            return blob
        raise IntegrityError(
            f"{what} is not a Git-LFS file (the Hub's ETag is the git blob id {blob}), so the Hub"
            " reports no sha256 to verify it against. Pass sha256= (the manifest entry needs one)."
        )
    raise IntegrityError(
        f"Cannot verify {what}: no sha256 was given and this cache does not use symlinks, so the"
        " Hub's sha256 is unknown. Pass sha256= (the manifest entry needs one)."
    )


def _resolve_ref(
    repo_id: str, filename: str, ref: str, token: str | bool | None, what: str, cache: Path
) -> str:
    """Return the commit a branch or tag points at now (DownloadError if unreachable)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    from . import __version__

    try:
        url = hf_hub_url(repo_id, filename, revision=ref)
        meta = get_hf_file_metadata(
            url, token=token, library_name="mnaszoo", library_version=__version__
        )
    except Exception as exc:
        mapped = _map_hub_error(exc, what, cache)
        if mapped is exc:
            raise
        raise mapped from exc
    if meta.commit_hash is None:
        raise DownloadError(f"The Hub sent no commit for {what} (no X-Repo-Commit header).")
    return meta.commit_hash


def _download_hub(
    repo_id: str,
    filename: str,
    revision: str,
    commit: str,
    sha256: str | None,
    size: int | None,
    cache: Path,
    token: str | bool | None,
    what: str,
) -> Path:
    from huggingface_hub import hf_hub_download

    from . import __version__

    # Why a private temporary cache. huggingface_hub never checks sha256 itself, and with
    # force_download=True it writes the new bytes over the cached blob before anyone could check
    # them. So every download goes into a fresh huggingface_hub cache created *inside* the real
    # one (same filesystem, hence atomic renames): there it is verified, and only a verified file
    # is moved into the real cache with os.replace (blob first, then the snapshot symlink). The
    # real cache therefore only ever holds verified files, a reader never sees a partial or
    # unverified blob, and a failed, truncated or corrupt download leaves a previously cached good
    # copy untouched. The temporary cache is always removed (stale ones after a crash, later).
    try:
        cache.mkdir(parents=True, exist_ok=True)
        _clean_stale(cache, _TMP_PREFIX + "*")
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=cache)).resolve()
    except OSError as exc:
        raise _not_writable(cache, exc, "HF_HUB_CACHE (or HF_HOME)") from exc
    try:
        try:
            got = Path(
                hf_hub_download(
                    repo_id,
                    filename,
                    revision=commit,
                    cache_dir=tmp,
                    library_name="mnaszoo",
                    library_version=__version__,
                    token=token,
                )
            )
        except Exception as exc:
            mapped = _map_hub_error(exc, what, cache)
            if mapped is exc:
                raise
            raise mapped from exc
        problem = _mismatch(got, _hub_sha256(got, sha256, what), None, size)
        if problem is not None:
            raise IntegrityError(
                f"The downloaded {what} {problem}. It was discarded and the cache is unchanged."
                " Try again later; if it persists, the published file differs from the pinned"
                " hash: report it, or load a file you trust with checkpoint=."
            )
        try:
            return _install(got, tmp, cache, revision)
        except OSError as exc:
            raise _not_writable(cache, exc, "HF_HUB_CACHE (or HF_HOME)") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install(got: Path, tmp: Path, cache: Path, ref: str) -> Path:
    """Move a verified file from the temporary cache ``tmp`` into ``cache``, atomically."""
    relative = got.relative_to(tmp)  # models--org--name/snapshots/<commit>/<filename>
    pointer = cache / relative
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if not got.is_symlink():  # a cache without symlinks holds the file itself
        os.replace(got, pointer)
    else:
        source = got.resolve()
        blob = cache / source.relative_to(tmp)
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, blob)
        link = pointer.with_name(f".{pointer.name}.{uuid.uuid4().hex}.link")
        link.unlink(missing_ok=True)
        try:
            os.symlink(os.path.relpath(blob, pointer.parent), link)
        except OSError:
            shutil.copyfile(blob, link)
        os.replace(link, pointer)
    commit = relative.parts[2]
    if ref != commit:  # a branch or tag: remember where it pointed, for offline use
        with contextlib.suppress(OSError):
            refs = cache / relative.parts[0] / "refs"
            refs.mkdir(exist_ok=True)
            (refs / ref).write_text(commit)
    return pointer


def _status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _map_hub_error(exc: BaseException, what: str, cache: Path) -> BaseException:
    """Translate a huggingface_hub (or transport) error into a mnaszoo error."""
    from huggingface_hub import errors as hf

    if isinstance(exc, hf.LocalEntryNotFoundError):
        cause = exc.__cause__
        if cause is None or isinstance(cause, hf.OfflineModeIsEnabled):
            return _not_cached(what, cache, cause is None, "HF_HUB_CACHE")
        return _map_hub_error(cause, what, cache)
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return _not_cached(what, cache, False, "HF_HUB_CACHE")
    status = _status(exc)
    token_hint = "Pass token= or set HF_TOKEN (and accept the repository's terms on the Hub)."
    if isinstance(exc, hf.RepositoryNotFoundError) and not isinstance(exc, hf.GatedRepoError):
        return RemoteFileNotFoundError(
            f"Repository of {what} not found (HTTP {status}). If it is private: {token_hint}"
        )
    if isinstance(exc, hf.GatedRepoError) or status in (401, 403):
        return AccessDeniedError(f"Access to {what} was denied (HTTP {status}). {token_hint}")
    if isinstance(exc, (hf.RevisionNotFoundError, hf.EntryNotFoundError)) or status == 404:
        return RemoteFileNotFoundError(f"{what} does not exist on the Hub (HTTP 404): {exc}")
    if isinstance(exc, PermissionError):
        return _not_writable(cache, exc, "HF_HUB_CACHE (or HF_HOME)")
    transport = type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "requests"}
    if status is not None or transport or isinstance(exc, OSError):
        why = f"HTTP {status}" if status is not None else f"{type(exc).__name__}: {exc}"
        return DownloadError(
            f"Could not download {what} ({why}), after huggingface_hub's retries. Check the"
            " network (HF_ENDPOINT, HTTPS_PROXY) and try again."
            + _FIX.format(where=cache, env="HF_HUB_CACHE")
        )
    return exc


# ----------------------------------------------------------------------------- URLs


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
    _check_args(sha256, sha256_prefix, size)
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
        problem = _mismatch(target, sha256, sha256_prefix, size)
        if problem is None:
            return target
        note = _remove(target)
        if offline:
            raise IntegrityError(f"The cached {target} (from {url}) {problem}; {note}")
        _log.warning("Cached %s %s; %s Downloading it again.", target, problem, note)
    if offline:
        raise _not_cached(url, folder.parent, local_files_only, "MNASZOO_CACHE")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _not_writable(folder, exc, "MNASZOO_CACHE") from exc
    _clean_stale(folder, ".*.part")
    _log.info("Downloading %s into %s", url, folder)
    for attempt in range(retries + 1):
        try:
            return _download_url(url, target, sha256, sha256_prefix, size, timeout)
        except _TransientError as exc:
            if attempt == retries:
                raise DownloadError(
                    f"Could not download {url} after {retries + 1} attempts: {exc}. Check the"
                    " network (HTTPS_PROXY) and try again."
                    + _FIX.format(where=folder.parent, env="MNASZOO_CACHE")
                ) from exc
            _log.info("Download of %s failed (%s); retrying.", url, exc)
            _sleep(max(min(2.0**attempt, 30.0), exc.retry_after))
    raise AssertionError("unreachable")  # pragma: no cover


def _download_url(
    url: str,
    target: Path,
    sha256: str | None,
    prefix: str | None,
    size: int | None,
    timeout: float,
) -> Path:
    """One attempt: stream into a temp file next to ``target``, verify, ``os.replace``."""
    from . import __version__

    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
    except OSError as exc:
        raise _not_writable(target.parent, exc, "MNASZOO_CACHE") from exc
    tmp = Path(tmp_name)
    headers = {"User-Agent": f"mnaszoo/{__version__}", "Accept-Encoding": "identity"}
    try:
        digest, total, expected = hashlib.sha256(), 0, None
        with os.fdopen(fd, "wb") as out:
            try:  # build_opener() reads proxy settings now, not at first use
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.build_opener().open(request, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    expected = int(length) if length and length.isdigit() else None
                    content_type = response.headers.get("Content-Type", "")
                    chunk = response.read(_CHUNK)
                    kind = _sniff(chunk) or (
                        "an HTML page, not the weights" if "text/html" in content_type else None
                    )
                    if kind is not None:
                        raise CorruptCheckpointError(
                            f"{url} served {kind}; nothing was cached. Check the URL (a moved"
                            " file, a login wall or a Git-LFS checkout without the real file)."
                        )
                    while chunk:
                        digest.update(chunk)
                        out.write(chunk)
                        total += len(chunk)
                        chunk = response.read(_CHUNK)
            except urllib.error.HTTPError as exc:
                raise _http_error(url, exc) from exc
            except (urllib.error.URLError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                if type(reason).__name__ == "SSLCertVerificationError":
                    raise DownloadError(
                        f"TLS certificate check failed for {url} ({reason}). Behind a proxy"
                        " set HTTPS_PROXY and SSL_CERT_FILE to your CA bundle."
                    ) from exc
                raise _TransientError(f"{type(exc).__name__}: {reason}") from exc
            except OSError as exc:  # a full or read-only disk, or a network error mid-body
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
                    raise _not_writable(target.parent, exc, "MNASZOO_CACHE") from exc
                raise _TransientError(f"{type(exc).__name__}: {exc}") from exc
        if expected is not None and total != expected:
            raise _TransientError(f"connection closed after {total} of {expected} bytes")
        problem = _compare((digest.hexdigest(), total), sha256, prefix, size)
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
    if code in _RETRY_STATUS:
        wait = float(retry_after) if retry_after.isdigit() else 0.0
        return _TransientError(f"HTTP {code}", retry_after=min(wait, 60.0))
    return DownloadError(f"{url} answered HTTP {code}.")
