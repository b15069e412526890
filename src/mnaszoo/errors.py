"""The exceptions mnaszoo raises.

Every error derives from :class:`MnaszooError`, so ``except mnaszoo.MnaszooError`` catches all of
them, and also from the built-in exception a caller would expect (``ValueError`` for bad values,
``TypeError`` for values of the wrong type), so generic handlers keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AccessDeniedError",
    "ArgumentTypeError",
    "CacheNotWritableError",
    "CorruptCheckpointError",
    "CorruptFileError",
    "DownloadError",
    "IncompatibleWeightsError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidImageError",
    "ManifestError",
    "MnaszooError",
    "RemoteFileNotFoundError",
    "SearchStateError",
    "SpecError",
    "UnknownModelError",
    "UnknownWeightsError",
    "WeightsError",
    "WeightsNotCachedError",
    "WriteError",
    "close_matches_hint",
]


class MnaszooError(Exception):
    """Base class of every error raised by mnaszoo.

    Example:
        >>> import mnaszoo
        >>> try:
        ...     mnaszoo.describe("mnasnet_a2")
        ... except mnaszoo.MnaszooError as error:
        ...     print(type(error).__name__, isinstance(error, ValueError))
        UnknownModelError True
    """


class InvalidArgumentError(MnaszooError, ValueError):
    """An argument has the right type but a value mnaszoo cannot accept."""


class ArgumentTypeError(MnaszooError, TypeError):
    """An argument has a type mnaszoo cannot accept."""


class SpecError(MnaszooError, ValueError):
    """A block spec, network spec or block string is malformed or inconsistent."""


class UnknownModelError(MnaszooError, ValueError):
    """A model name is not in the registry."""


def close_matches_hint(name: str, choices: Iterable[str], *, n: int = 3) -> str:
    """Return ``" Did you mean 'a' or 'b'?"`` for the closest choices, or ``""`` if none is."""
    matches = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
    if not matches:
        return ""
    quoted = [repr(m) for m in matches]
    if len(quoted) == 1:
        return f" Did you mean {quoted[0]}?"
    return f" Did you mean {', '.join(quoted[:-1])} or {quoted[-1]}?"


class WeightsError(MnaszooError):
    """Base class of the errors about pretrained weights and checkpoints."""


class UnknownWeightsError(WeightsError, ValueError):
    """A weights id or tag is not in the manifest."""


class ManifestError(WeightsError, ValueError):
    """The weights manifest is malformed (the message names the entry and field)."""


class WeightsNotCachedError(WeightsError, FileNotFoundError):
    """Offline (or ``local_files_only``) and the file is not in the cache."""


class DownloadError(WeightsError, ConnectionError):
    """The Hub or URL could not be reached, or kept failing, after bounded retries."""


class RemoteFileNotFoundError(WeightsError, FileNotFoundError):
    """The server answered 404: the repository, revision or file does not exist."""


class AccessDeniedError(WeightsError, PermissionError):
    """The server answered 401 or 403: a token is missing or lacks access."""


class IntegrityError(WeightsError):
    """A downloaded or cached file does not have the expected sha256 or size."""


class CorruptFileError(MnaszooError, ValueError):
    """A file cannot be loaded: damaged, truncated, unreadable or of another format (an
    ``.onnx`` model, an ExecuTorch ``.pte`` program, a checkpoint). The message names the file
    and says what to do."""


class WriteError(MnaszooError, OSError):
    """A file or folder cannot be written: a full disk, a read-only file system, missing
    permissions. ``errno`` is the operating system's code; nothing half-written is left."""


class CorruptCheckpointError(WeightsError, CorruptFileError):
    """A checkpoint file cannot be read: truncated, corrupt, a Git-LFS pointer or an HTML page."""


class IncompatibleWeightsError(WeightsError, ValueError):
    """A checkpoint's keys or shapes do not fit the model (the message lists the differences)."""


class CacheNotWritableError(WeightsError, PermissionError):
    """The cache directory cannot be written."""


class InvalidImageError(MnaszooError, ValueError):
    """An input image cannot be used: unreadable, corrupt, too large, or of a wrong shape/dtype.

    The message names the item (its index in the batch, or its path).
    """


class SearchStateError(MnaszooError, ValueError):
    """A saved architecture-search state or log cannot be resumed: corrupt, or written for a
    different search space, strategy or seed. The message names the file and the mismatch."""
