"""File I/O shared by every part: atomic writes and JSON reading with errors that say what to do.

Atomic writes go to a temporary file beside the target, renamed over it on success: readers, and
a crash half-way, see the old file or the whole new one, never part of one; a failed write leaves
no temporary file behind. Files get the permissions the process's umask gives a new file (a
temporary file would otherwise keep ``mkstemp``'s 0600, unreadable to other users of a shared
cache), or those of the file they replace.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError, SearchStateError

__all__ = [
    "atomic_path",
    "check_writable",
    "new_file_mode",
    "read_json",
    "read_json_object",
    "replace_directory",
    "write_text_atomic",
]


def _umask() -> int:
    # /proc gives it without changing it; elsewhere set-and-restore (not thread-safe, brief).
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(directory: bool = False) -> int:
    """The permission bits a newly created file (or directory) gets under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return new_file_mode()


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
    temp = Path(name)
    try:
        os.fchmod(handle, _mode_for(path))
    finally:
        os.close(handle)
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


def check_writable(path: Path, what: str) -> None:
    """Check, before any long work, that ``path`` can be written (by creating and removing a
    temporary file beside it), so a computed result is not lost at the end.

    Raises:
        InvalidArgumentError: the directory is missing or cannot be written, or ``path`` is a
            directory.
    """
    if path.is_dir():
        raise InvalidArgumentError(
            f"Cannot write {what} to {path}: it is a directory. Name a file (a path inside it,"
            " or beside it) instead; nothing in the directory was touched."
        )
    directory = path.parent
    if not directory.is_dir():
        raise InvalidArgumentError(
            f"Cannot write {what} to {path}: the directory {directory} does not exist."
        )
    try:
        with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", dir=directory):
            pass
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
    except OSError as error:
        raise InvalidArgumentError(f"Cannot write {what} to {path}: {error}.") from error


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _contains_cwd(path: Path) -> bool:
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return False
    target = path.resolve()
    return cwd == target or target in cwd.parents


def replace_directory(
    path: Path, fill: Callable[[Path], None], order: tuple[str, ...] = ()
) -> None:
    """Make ``path`` a directory holding what ``fill(staging)`` writes, all or nothing.

    ``fill`` writes into a fresh sibling directory; the entries of an existing ``path`` that
    ``fill`` does not write are carried over (hard links, else copies); then the old directory
    is renamed aside, the new one renamed into place and the old one removed. A failure at any
    step leaves ``path`` as it was; no temporary directory is left behind.

    A directory that cannot be renamed (a mount point, the working directory of this process,
    a parent that forbids it) is updated file by file instead, each file atomically, in
    ``order`` (then the others): the caller makes its last file the one that commits.

    Raises:
        OSError: the directory cannot be written (the caller maps it to its own error).
    """
    path = Path(os.path.abspath(path))  # "." has no name and no parent to stage in
    path = path.resolve() if path.is_symlink() else path
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
    aside = path.parent / f".{path.name}.old-{uuid.uuid4().hex}"
    try:
        fill(staging)
        written = {entry.name for entry in staging.iterdir()}
        for name in written:  # on disk before the rename makes them the checkpoint
            with open(staging / name, "rb") as handle:
                os.fsync(handle.fileno())
        if path.is_dir():
            for entry in path.iterdir():
                if entry.name in written:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.copytree(
                        entry, staging / entry.name, symlinks=True, copy_function=_link_or_copy
                    )
                elif entry.is_symlink():
                    os.symlink(os.readlink(entry), staging / entry.name)
                else:
                    _link_or_copy(str(entry), str(staging / entry.name))
            if _contains_cwd(path):
                _replace_files(staging, path, order)
                return
            os.chmod(staging, stat.S_IMODE(path.stat().st_mode))
            try:
                os.rename(path, aside)
            except OSError as error:
                if error.errno not in _CANNOT_RENAME:
                    raise
                _replace_files(staging, path, order)
                return
            try:
                os.rename(staging, path)
            except OSError:
                os.rename(aside, path)
                raise
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.chmod(staging, new_file_mode(directory=True))
            os.rename(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_CANNOT_RENAME = frozenset({errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES, errno.EINVAL})


def _replace_files(staging: Path, path: Path, order: tuple[str, ...]) -> None:
    names = [n for n in order if (staging / n).exists()]
    names += sorted(e.name for e in staging.iterdir() if e.name not in names)
    for name in names:
        os.replace(staging / name, path / name)


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
