"""Hugging Face Hub files through ``huggingface_hub``, into its cache, verified by sha256.

A file pinned to a commit and already cached is found with no request at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import (
    AccessDeniedError,
    DownloadError,
    IntegrityError,
    InvalidArgumentError,
    RemoteFileNotFoundError,
)
from . import _deadline
from ._cache import (
    FIX_ADVICE,
    RETRY_STATUS,
    TMP_PREFIX,
    PathLike,
    check_pins,
    clean_stale,
    is_offline,
    mismatch,
    not_cached_error,
    not_writable_error,
    remove_bad_file,
)
from ._deadline import (
    Deadline,
    check_resolvable,
    is_name_resolution_error,
)
from ._files import REVISION, SHA256

_T = TypeVar("_T")
_ATTEMPTS = 5  # per request, each with huggingface_hub's own retries of the metadata request

__all__ = ["fetch_hub_file", "with_retries"]

logger = logging.getLogger(__name__)


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
    download_timeout: float | None = None,
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
        download_timeout: Seconds the whole download may take, retries included (default:
            ``$MNASZOO_DOWNLOAD_TIMEOUT``, else 120). Transient failures (HTTP 408, 429, 5xx,
            connection errors, timeouts) of any request are retried with back-off within it; a
            host name that does not resolve is not retried.

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

    check_pins(sha256, None, size)
    deadline = Deadline(download_timeout)
    cache = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE)
    cache = cache.expanduser().resolve()
    what = f"{filename!r} of {repo_id}@{revision}"
    offline = local_files_only or is_offline()
    if force_download and offline:
        raise InvalidArgumentError("force_download=True needs the network, but it is disabled.")
    commit, unreachable = revision, None
    if not REVISION.fullmatch(revision) and not offline:
        try:  # a branch or tag: one request to learn its commit, like huggingface_hub
            commit = _resolve_ref(repo_id, filename, revision, token, what, cache, deadline)
        except DownloadError as exc:  # Hub unreachable: the cached refs/<revision> still works
            unreachable = exc
    if not force_download:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache), revision=commit)
        if isinstance(cached, str):
            problem = mismatch(Path(cached), _hub_sha256(Path(cached), sha256, what), None, size)
            if problem is None:
                return Path(cached)
            note = remove_bad_file(Path(cached))
            if offline:
                raise IntegrityError(f"The cached {what} at {cached} {problem}; {note}")
            logger.warning("Cached %s %s; %s Downloading it again.", what, problem, note)
    if offline:
        raise not_cached_error(what, cache, local_files_only, "HF_HUB_CACHE")
    if unreachable is not None:
        raise unreachable
    logger.info("Downloading %s into %s", what, cache)
    return _download_hub(
        repo_id, filename, revision, commit, sha256, size, cache, token, what, deadline
    )


def _hub_sha256(pointer: Path, sha256: str | None, what: str) -> str:
    """The sha256 to check: the given one, else the Hub's LFS sha256 (the blob's name)."""
    if sha256 is not None:
        return sha256
    if pointer.is_symlink():
        blob = Path(os.readlink(pointer)).name
        if SHA256.fullmatch(blob):
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
    repo_id: str,
    filename: str,
    ref: str,
    token: str | bool | None,
    what: str,
    cache: Path,
    deadline: Deadline,
) -> str:
    """Return the commit a branch or tag points at now (DownloadError if unreachable)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    from .._version import __version__

    url = hf_hub_url(repo_id, filename, revision=ref)
    check_resolvable(url, deadline, what)
    meta = with_retries(
        lambda: get_hf_file_metadata(
            url, token=token, library_name="mnaszoo", library_version=__version__
        ),
        what,
        cache,
        deadline,
    )
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
    deadline: Deadline,
) -> Path:
    from huggingface_hub import hf_hub_download, hf_hub_url

    from .._version import __version__

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
        clean_stale(cache, TMP_PREFIX + "*")
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=cache)).resolve()
    except OSError as exc:
        raise not_writable_error(cache, exc, "HF_HUB_CACHE (or HF_HOME)") from exc
    try:
        check_resolvable(hf_hub_url(repo_id, filename, revision=commit), deadline, what)
        got = Path(
            with_retries(
                lambda: hf_hub_download(
                    repo_id,
                    filename,
                    revision=commit,
                    cache_dir=tmp,
                    library_name="mnaszoo",
                    library_version=__version__,
                    token=token,
                ),
                what,
                cache,
                deadline,
            )
        )
        problem = mismatch(got, _hub_sha256(got, sha256, what), None, size)
        if problem is not None:
            raise IntegrityError(
                f"The downloaded {what} {problem}. It was discarded and the cache is unchanged."
                " Try again later; if it persists, the published file differs from the pinned"
                " hash: report it, or load a file you trust with checkpoint=."
            )
        try:
            return _install(got, tmp, cache, revision)
        except OSError as exc:
            raise not_writable_error(cache, exc, "HF_HUB_CACHE (or HF_HOME)") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _transient(exc: BaseException) -> bool:
    """Whether a failed request is worth another attempt: 408/429/5xx, a dropped connection or
    a timeout; never a name that does not resolve."""
    from huggingface_hub import errors as hf

    if is_name_resolution_error(exc):
        return False
    if isinstance(exc, hf.LocalEntryNotFoundError) and exc.__cause__ is not None:
        return _transient(exc.__cause__)  # the metadata request failed: why?
    status = _status(exc)
    if status is not None:
        return status in RETRY_STATUS
    transport = type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "requests"}
    return transport or isinstance(exc, (ConnectionError, TimeoutError))


def with_retries(call: Callable[[], _T], what: str, cache: Path, deadline: Deadline) -> _T:
    """``call()``, retried with back-off (1, 2, 4, 8 s; at most ``_ATTEMPTS`` attempts) on
    transient failures, within the deadline; huggingface_hub retries its metadata request
    itself, but not a failed file GET."""
    attempt = 0
    while True:
        try:
            return deadline.run(call, what)
        except DownloadError:
            raise  # the deadline passed (Deadline.run's own error)
        except Exception as exc:
            error: BaseException = exc
        mapped = _map_hub_error(error, what, cache)
        pause = min(2.0**attempt, 30.0)
        if not _transient(error) or attempt + 1 >= _ATTEMPTS or pause >= deadline.remaining():
            if mapped is error:
                raise error
            raise mapped from error
        logger.info("Downloading %s failed (%s); retrying in %g s.", what, mapped, pause)
        _deadline.sleep(pause)
        attempt += 1


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
            return not_cached_error(what, cache, cause is None, "HF_HUB_CACHE")
        return _map_hub_error(cause, what, cache)
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return not_cached_error(what, cache, False, "HF_HUB_CACHE")
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
        return not_writable_error(cache, exc, "HF_HUB_CACHE (or HF_HOME)")
    transport = type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "requests"}
    if status is not None or transport or isinstance(exc, OSError):
        why = f"HTTP {status}" if status is not None else f"{type(exc).__name__}: {exc}"
        return DownloadError(
            f"Could not download {what} ({why}), after retrying with back-off. Check the"
            " network (HF_ENDPOINT, HTTPS_PROXY) and try again."
            + FIX_ADVICE.format(where=cache, env="HF_HUB_CACHE")
        )
    return exc
