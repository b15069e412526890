"""One way to turn the errors of third-party loaders and writers into mnaszoo errors.

safetensors, onnxruntime, ExecuTorch and the operating system each report a full disk, a
read-only folder or a damaged file in their own words (``SafetensorError``, onnxruntime's
``Fail``/``InvalidProtobuf``, a bare ``RuntimeError``, ``OSError`` with an errno). The two
context managers here catch them at the call that reads or writes a file and raise a mnaszoo
error that says what could not be done, why, and what to do, chained to the original.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Callable, Iterator

from .errors import CorruptFileError, MnaszooError, WriteError

__all__ = ["os_error_reason", "reading", "writing"]

# "(os error 28)" in the messages of Rust-based libraries (safetensors).
_RUST_ERRNO = re.compile(r"os error (\d+)")
_ADVICE = {
    errno.ENOSPC: "Free some space, or write somewhere else",
    errno.EDQUOT: "Free some space, or write somewhere else",
    errno.EROFS: "The file system is read-only: write to a writable folder",
    errno.EACCES: "Check the folder's permissions, or write somewhere else",
    errno.EPERM: "Check the folder's permissions, or write somewhere else",
    errno.ENAMETOOLONG: "Use a shorter path",
}


def _errno_of(error: BaseException) -> int | None:
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno
    found = _RUST_ERRNO.search(str(error))
    return int(found.group(1)) if found else None


def os_error_reason(error: BaseException) -> str:
    """Why a file operation failed, with what to do (``"No space left on device. Free..."``)."""
    code = _errno_of(error)
    if code is not None:
        advice = _ADVICE.get(code)
        return os.strerror(code) + (f". {advice}" if advice else f" (errno {code})")
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"


@contextlib.contextmanager
def writing(
    what: str,
    path: str | os.PathLike[str],
    error_type: Callable[[str], MnaszooError] = WriteError,
) -> Iterator[None]:
    """Raise ``error_type`` (:class:`~mnaszoo.errors.WriteError`) for any OS or library error
    raised while writing ``what`` to ``path``; its ``errno`` is the original one.

    mnaszoo's own errors pass through unchanged. The caller guarantees (with the atomic writers
    of :mod:`mnaszoo._io`) that nothing half-written is left, so the message says so.
    """
    try:
        yield
    except MnaszooError:
        raise
    except Exception as error:
        code = _errno_of(error)
        if not isinstance(error, OSError) and code is None and not _third_party(error):
            raise
        wrapped = error_type(
            f"Cannot write {what} to {os.fspath(path)}: {os_error_reason(error)}. Nothing"
            " half-written was left there."
        )
        if isinstance(wrapped, OSError):
            wrapped.errno = code
        raise wrapped from error


@contextlib.contextmanager
def reading(what: str, path: str | os.PathLike[str], fix: str) -> Iterator[None]:
    """Raise :class:`~mnaszoo.errors.CorruptFileError` for any error (but mnaszoo's own) raised
    while a library reads ``what`` from ``path``: the block holds only that library call, so
    whatever it raises means the file cannot be used. ``fix`` says what to do about it."""
    try:
        yield
    except MnaszooError:
        raise
    except OSError as error:
        raise CorruptFileError(
            f"Cannot read {what} {os.fspath(path)}: {os_error_reason(error)}."
        ) from error
    except Exception as error:  # each library has its own exception types
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise CorruptFileError(
            f"{os.fspath(path)} is not {what} that can be loaded ({type(error).__name__}:"
            f" {detail}): it is damaged, truncated or of another format. {fix}"
        ) from error


def _third_party(error: BaseException) -> bool:
    """Whether ``error`` comes from a loader library rather than from a bug in mnaszoo."""
    module = type(error).__module__.split(".")[0]
    if module in {"safetensors", "onnxruntime", "onnx", "executorch", "google"}:
        return True
    # ExecuTorch's runtime raises plain RuntimeError/ValueError from its C++ bindings.
    traceback = error.__traceback__
    while traceback is not None:
        name = traceback.tb_frame.f_globals.get("__name__", "")
        if isinstance(name, str) and name.split(".")[0] in {"executorch", "onnxruntime"}:
            return True
        traceback = traceback.tb_next
    return False
