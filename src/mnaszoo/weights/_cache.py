"""The download cache and the checks every downloaded file passes: where files live, whether
downloads are allowed, sha256/size verification, and the errors that say what to do."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

from ..errors import (
    CacheNotWritableError,
    InvalidArgumentError,
    WeightsNotCachedError,
)
from ._files import SHA256, SHA256_PREFIX, SNIFF_BYTES, file_digest, sniff

__all__ = [
    "CHUNK",
    "FIX_ADVICE",
    "RETRY_STATUS",
    "STALE_AFTER_S",
    "TMP_PREFIX",
    "WHAT_IT_IS",
    "PathLike",
    "check_pins",
    "clean_stale",
    "compare_digest",
    "default_cache_dir",
    "is_offline",
    "mismatch",
    "not_cached_error",
    "not_writable_error",
    "remove_bad_file",
]


PathLike = str | os.PathLike[str]
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
TMP_PREFIX = ".mnaszoo-tmp-"
WHAT_IT_IS = {
    "lfs-pointer": "a Git-LFS pointer file, not the weights",
    "html": "an HTML page (a login, error or redirect page), not the weights",
}
STALE_AFTER_S = 24 * 3600.0
CHUNK = 1 << 20
FIX_ADVICE = (
    " To fix: on a machine with network access run `mnaszoo download <model>` (or"
    " `mnaszoo.create(name, pretrained=True)`) once, then copy its cache directory to {where}"
    " here (or point cache_dir= / {env} at the copy); or pass checkpoint= a local file."
)


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


def compare_digest(
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


def mismatch(path: Path, sha256: str | None, prefix: str | None, size: int | None) -> str | None:
    """Return why ``path`` fails the hash/size check (and what it looks like), or None."""
    problem = compare_digest(file_digest(path), sha256, prefix, size)
    if problem is not None:
        with open(path, "rb") as f:
            kind = sniff(f.read(SNIFF_BYTES))
        problem += f"; it is {WHAT_IT_IS[kind]}" if kind else ""
    return problem


def check_pins(sha256: str | None, prefix: str | None, size: int | None) -> None:
    if sha256 is not None and not SHA256.fullmatch(sha256):
        raise InvalidArgumentError(f"sha256 must be 64 lowercase hex characters, got {sha256!r}.")
    if prefix is not None and not SHA256_PREFIX.fullmatch(prefix):
        raise InvalidArgumentError(f"sha256_prefix must be 8-64 lowercase hex, got {prefix!r}.")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidArgumentError(f"size must be a non-negative int or None, got {size!r}.")


def remove_bad_file(path: Path) -> str:
    """Delete a bad file (and, for a Hub snapshot symlink, its blob); describe what happened."""
    try:
        if path.is_symlink():
            path.resolve().unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    except OSError as exc:
        return f"it could not be deleted ({exc}); delete it by hand."
    return "it was deleted."


def not_cached_error(
    what: str, where: Path, local_files_only: bool, env: str
) -> WeightsNotCachedError:
    why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set"
    return WeightsNotCachedError(
        f"{what} is not in the cache ({where}) and downloads are disabled ({why})."
        + FIX_ADVICE.format(where=where, env=env)
    )


def not_writable_error(where: Path, exc: OSError, env: str) -> CacheNotWritableError:
    return CacheNotWritableError(
        f"Cannot write to the cache directory {where} ({exc}). Pass cache_dir= a writable"
        f" directory or set {env} to one."
    )


def clean_stale(folder: Path, pattern: str) -> None:
    """Remove temporary leftovers of crashed downloads (older than a day) in ``folder``."""
    cutoff = time.time() - STALE_AFTER_S
    for path in folder.glob(pattern):
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime >= cutoff:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
