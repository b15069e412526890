"""File I/O shared by every part: atomic writes and JSON reading with errors that say what to do.

Atomic writes go to a temporary file beside the target, renamed over it on success: readers, and
a crash half-way, see the old file or the whole new one, never part of one; a failed write leaves
no temporary file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError, SearchStateError

__all__ = ["atomic_path", "read_json", "read_json_object", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, moved onto it only when the block succeeds.

    Raises:
        InvalidArgumentError: the directory of ``path`` does not exist.
    """
    directory = path.parent
    if not directory.is_dir():
        raise InvalidArgumentError(
            f"Cannot write {path}: the directory {directory} does not exist."
        )
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, synced to disk before the rename."""
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def read_json(path: Path, what: str, hint: str = "Delete it to start afresh.") -> Any:
    """The JSON value in ``path``; ``what`` names the file in errors, ``hint`` says what to do.

    Raises:
        SearchStateError: the file cannot be read or is not JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SearchStateError(
            f"Cannot read {what} {str(path)!r}: {error}. {hint}".rstrip()
        ) from error


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """Like :func:`read_json`, and the value must be a JSON object."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise SearchStateError(f"{what.capitalize()} {str(path)!r} is not a JSON object.")
    return data
