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
    """An argument has the right type but a value mnaszoo cannot accept.

    Example:
        >>> import mnaszoo
        >>> mnaszoo.make_transform("mnasnet_a1", input_size=0)
        Traceback (most recent call last):
        ...
        mnaszoo.errors.InvalidArgumentError: input_size must be >= 16, got 0.
    """


class ArgumentTypeError(MnaszooError, TypeError):
    """An argument has a type mnaszoo cannot accept.

    Example:
        >>> import mnaszoo
        >>> mnaszoo.describe(42)
        Traceback (most recent call last):
        ...
        mnaszoo.errors.ArgumentTypeError: describe() takes a model name, a NetworkSpec, ...
    """


class SpecError(MnaszooError, ValueError):
    """A block spec, network spec or block string is malformed or inconsistent.

    Example:
        >>> import mnaszoo
        >>> mnaszoo.decode_block("xyz")
        Traceback (most recent call last):
        ...
        mnaszoo.errors.SpecError: Unknown token 'xyz' in block string 'xyz'; accepted tokens ...
    """


class UnknownModelError(MnaszooError, ValueError):
    """A model name is not in the registry.

    Example:
        >>> import mnaszoo
        >>> mnaszoo.create("mnasnet_a2")
        Traceback (most recent call last):
        ...
        mnaszoo.errors.UnknownModelError: Unknown model 'mnasnet_a2'. Did you mean 'mnasnet_a1', ...
    """


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
    """Base class of the errors about pretrained weights and checkpoints.

    Example:
        >>> import mnaszoo
        >>> try:
        ...     mnaszoo.get_weights("mnasnet_a1.nope")
        ... except mnaszoo.WeightsError as error:
        ...     print(type(error).__name__)
        UnknownWeightsError
    """


class UnknownWeightsError(WeightsError, ValueError):
    """A weights id or tag is not in the manifest.

    Example:
        >>> import mnaszoo
        >>> mnaszoo.get_weights("mnasnet_a1.nope")
        Traceback (most recent call last):
        ...
        mnaszoo.errors.UnknownWeightsError: Unknown weights 'mnasnet_a1.nope'. Did you mean ...
    """


class ManifestError(WeightsError, ValueError):
    """The weights manifest is malformed (the message names the entry and field).

    Example:
        Raised while the manifest is read, so a damaged ``weights_manifest.json`` stops the
        first call that needs it; it is a ``ValueError`` too:

        >>> import mnaszoo
        >>> issubclass(mnaszoo.ManifestError, (mnaszoo.WeightsError, ValueError))
        True
    """


class WeightsNotCachedError(WeightsError, FileNotFoundError):
    """Offline (or ``local_files_only``) and the file is not in the cache.

    Example:
        >>> import tempfile, mnaszoo
        >>> empty_cache = tempfile.mkdtemp()
        >>> mnaszoo.create(
        ...     "mnasnet_a1", pretrained=True, local_files_only=True, cache_dir=empty_cache
        ... )
        Traceback (most recent call last):
        ...
        mnaszoo.errors.WeightsNotCachedError: 'pytorch_model.bin' of timm/... is not in the ...
    """


class DownloadError(WeightsError, ConnectionError):
    """The Hub or URL could not be reached, or kept failing, after bounded retries.

    Example:
        A ``ConnectionError`` too, so a handler for network failures catches it:

        >>> import mnaszoo
        >>> issubclass(mnaszoo.DownloadError, (mnaszoo.WeightsError, ConnectionError))
        True
    """


class RemoteFileNotFoundError(WeightsError, FileNotFoundError):
    """The server answered 404: the repository, revision or file does not exist.

    Example:
        >>> import mnaszoo
        >>> issubclass(mnaszoo.RemoteFileNotFoundError, (mnaszoo.WeightsError, FileNotFoundError))
        True
    """


class AccessDeniedError(WeightsError, PermissionError):
    """The server answered 401 or 403: a token is missing or lacks access.

    Example:
        >>> import mnaszoo
        >>> issubclass(mnaszoo.AccessDeniedError, (mnaszoo.WeightsError, PermissionError))
        True
    """


class IntegrityError(WeightsError):
    """A downloaded or cached file does not have the expected sha256 or size.

    Example:
        The file is never used; catch it with the other weights errors:

        >>> import mnaszoo
        >>> issubclass(mnaszoo.IntegrityError, mnaszoo.WeightsError)
        True
    """


class CorruptFileError(MnaszooError, ValueError):
    """A file cannot be loaded: damaged, truncated, unreadable or of another format (an
    ``.onnx`` model, an ExecuTorch ``.pte`` program, a checkpoint). The message names the file
    and says what to do.

    Example:
        >>> import tempfile, mnaszoo
        >>> try:
        ...     mnaszoo.from_pretrained(tempfile.mkdtemp())  # an empty folder
        ... except mnaszoo.CorruptFileError as error:
        ...     print(type(error).__name__, "lacks config.json" in str(error))
        CorruptCheckpointError True
    """


class WriteError(MnaszooError, OSError):
    """A file or folder cannot be written: a full disk, a read-only file system, missing
    permissions. ``errno`` is the operating system's code; nothing half-written is left.

    Example:
        An ``OSError`` too, with the operating system's ``errno``:

        >>> import mnaszoo
        >>> issubclass(mnaszoo.WriteError, (mnaszoo.MnaszooError, OSError))
        True
    """


class CorruptCheckpointError(WeightsError, CorruptFileError):
    """A checkpoint file cannot be read: truncated, corrupt, a Git-LFS pointer or an HTML page.

    Example:
        >>> import tempfile, mnaszoo
        >>> mnaszoo.from_pretrained(tempfile.mkdtemp())  # an empty folder
        Traceback (most recent call last):
        ...
        mnaszoo.errors.CorruptCheckpointError: ... lacks config.json: it is not a directory ...
    """


class IncompatibleWeightsError(WeightsError, ValueError):
    """A checkpoint's keys or shapes do not fit the model (the message lists the differences).

    Example:
        >>> import mnaszoo
        >>> issubclass(mnaszoo.IncompatibleWeightsError, (mnaszoo.WeightsError, ValueError))
        True
    """


class CacheNotWritableError(WeightsError, PermissionError):
    """The cache directory cannot be written.

    Example:
        >>> import mnaszoo
        >>> issubclass(mnaszoo.CacheNotWritableError, (mnaszoo.WeightsError, PermissionError))
        True
    """


class InvalidImageError(MnaszooError, ValueError):
    """An input image cannot be used: unreadable, corrupt, too large, or of a wrong shape/dtype.

    The message names the item (its index in the batch, or its path).

    Example:
        >>> import mnaszoo
        >>> mnaszoo.load_image(b"not an image")
        Traceback (most recent call last):
        ...
        mnaszoo.errors.InvalidImageError: image: not an image file PIL can identify
    """


class SearchStateError(MnaszooError, ValueError):
    """A saved architecture-search state or log cannot be resumed: corrupt, or written for a
    different search space, strategy or seed. The message names the file and the mismatch."""
