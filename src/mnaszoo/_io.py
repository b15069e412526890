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
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError, SearchStateError

__all__ = [
    "Owned",
    "atomic_path",
    "check_directory_target",
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
def atomic_path(path: Path, what: str = "the file") -> Iterator[Path]:
    """A temporary path beside ``path``, moved onto it only when the block succeeds.

    Raises:
        InvalidArgumentError: the directory of ``path`` does not exist, or ``path`` is a
            directory.
        WriteError: an OS error (a full disk, a read-only folder) while writing: the message
            names ``path`` and ``what``, never the temporary file.
    """
    from ._wrap import writing

    directory = path.parent
    if not directory.is_dir():
        raise InvalidArgumentError(
            f"Cannot write {path}: the directory {directory} does not exist."
        )
    if path.is_dir():
        raise InvalidArgumentError(
            f"Cannot write {what} to {path}: it is a directory. Name a file instead; nothing"
            " in the directory was touched."
        )
    with writing(what, path):
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


Owned = Callable[[Path], "Collection[str] | None"]
"""Given an existing directory, the relative paths (``/``-separated) of the files an earlier
write of this kind made there, or ``None`` if the directory is not of this kind."""


def _files_under(root: Path) -> set[str]:
    """Relative paths of the files and symlinks under ``root`` (symlinks not followed)."""
    found: set[str] = set()
    for directory, subdirs, files in os.walk(root):
        base = Path(directory).relative_to(root)
        for name in files + [d for d in subdirs if (Path(directory) / d).is_symlink()]:
            found.add((base / name).as_posix())
    return found


def _is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None


def check_directory_target(
    path: str | os.PathLike[str],
    *,
    kind: str,
    owned: Owned,
    exclusive: bool,
    overwrite: bool,
    expected: Collection[str] = (),
) -> set[str]:
    """Check that :func:`replace_directory` may write a ``kind`` (a latency kit, a checkpoint)
    at ``path``, and return the files of an earlier one there (its own, to be replaced).

    Call it before long work: the same check runs again when the directory is replaced.

    Args:
        path: the directory.
        kind: what is written, for messages ("a latency kit").
        owned: recognises an earlier ``kind`` and lists its files (see :data:`Owned`).
        exclusive: the directory must be absent, empty or an earlier ``kind``. Otherwise other
            files may stay beside it, but none of them is ever replaced or removed.
        overwrite: an earlier ``kind`` may be replaced.
        expected: the relative paths about to be written, checked against other files now.

    Raises:
        InvalidArgumentError: ``path`` is a file, holds files that are not a ``kind`` (and
            ``exclusive``, or one of them would be replaced), or holds a ``kind`` and not
            ``overwrite``.
    """
    target = Path(os.path.abspath(path))
    if target.exists() and not target.is_dir():
        raise InvalidArgumentError(
            f"Cannot write {kind} to {target}: it is a file, not a folder. Name a new or empty"
            " folder; the file was not touched."
        )
    if not target.is_dir() or _is_empty_dir(target):
        return set()
    listed = owned(target)
    # Only plain relative paths inside the folder: a crafted manifest naming "../x" or "/etc/x"
    # must not make a replace remove anything outside it.
    mine = None if listed is None else {n for n in listed if _inside(n)}
    if mine is None:
        if exclusive:
            raise InvalidArgumentError(
                f"{target} is not empty and does not hold {kind}: mnaszoo never deletes files it"
                f" did not write, with or without overwrite. Name a new or empty folder for"
                f" {kind}."
            )
        _refuse_clashes(target, kind, set(), expected)
        return set()
    if not overwrite:
        raise InvalidArgumentError(
            f"{target} already holds {kind}; pass overwrite=True (--overwrite) to replace it,"
            " or name another folder."
        )
    _refuse_clashes(target, kind, set(mine), expected)
    return set(mine)


def _inside(name: str) -> bool:
    path = Path(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


def _refuse_clashes(target: Path, kind: str, mine: set[str], names: Collection[str]) -> None:
    clashes: list[str] = []
    for name in sorted(names):
        parts = Path(name).parts
        for depth in range(1, len(parts) + 1):
            rel = Path(*parts[:depth])
            where = target / rel
            last = depth == len(parts)
            if not (where.exists() or where.is_symlink()):
                break
            if (last or not where.is_dir() or where.is_symlink()) and rel.as_posix() not in mine:
                clashes.append(rel.as_posix())
                break
    if clashes:
        shown = ", ".join(map(repr, clashes[:5])) + (" ..." if len(clashes) > 5 else "")
        raise InvalidArgumentError(
            f"{target} holds {shown}, which writing {kind} there would replace, but mnaszoo did"
            " not write it. Move it away, or name a new or empty folder; nothing was changed."
        )


def replace_directory(
    path: str | os.PathLike[str],
    fill: Callable[[Path], None],
    *,
    kind: str,
    owned: Owned,
    exclusive: bool = False,
    overwrite: bool = True,
    order: tuple[str, ...] = (),
) -> None:
    """Make ``path`` hold what ``fill(staging)`` writes, all or nothing, removing nothing but
    the files of an earlier ``kind`` that it wrote itself.

    The rules (see :func:`check_directory_target`): an absent or empty directory is written; an
    earlier ``kind`` (recognised by ``owned``) is replaced if ``overwrite``: its files are
    replaced or removed, other files in the directory stay; a directory of anything else is
    refused if ``exclusive``, else written beside its files, provided no file of it would be
    replaced. A refused directory is left as it was.

    ``fill`` writes into a fresh staging directory. A directory that can be renamed gets a
    complete new copy (the kept files hard-linked, else copied) swapped in by two renames. A
    mount point (a container volume), the working directory or a directory whose parent cannot
    be written is updated in place instead: staged inside itself (the same file system), then
    moved file by file, each atomically: the others first, then those named in ``order``, in
    that order, so the caller makes the last of ``order`` the file that commits (a manifest, a
    config). No staging directory is left behind.

    Raises:
        InvalidArgumentError: the directory is refused (nothing was written).
        OSError: the directory cannot be written (the caller maps it to its own error).
    """
    target = Path(os.path.abspath(path))  # "." has no name and no parent to stage in
    target = target.resolve() if target.is_symlink() else target
    mine = check_directory_target(
        target, kind=kind, owned=owned, exclusive=exclusive, overwrite=overwrite
    )
    exists = target.is_dir()
    in_place = exists and (os.path.ismount(target) or _contains_cwd(target))
    staging: Path | None = None
    if not in_place:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
        except PermissionError:
            if not exists:
                raise
            in_place = True  # a writable folder in a read-only parent
    if staging is None:
        staging = Path(tempfile.mkdtemp(prefix=".mnaszoo-new-", dir=target))
    try:
        fill(staging)
        written = _files_under(staging)
        for name in written:  # on disk before a rename makes them the new directory
            if not (staging / name).is_symlink():
                with open(staging / name, "rb") as handle:
                    os.fsync(handle.fileno())
        if exists:
            _refuse_clashes(target, kind, mine, written)
        stale = sorted(mine - written)
        if not exists:
            os.chmod(staging, new_file_mode(directory=True))
            os.rename(staging, target)
            return
        if in_place or not _swap(staging, target, written, stale):
            _move_files(staging, target, written, order)
        _remove_files(target, stale)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap(staging: Path, target: Path, written: set[str], stale: list[str]) -> bool:
    """Swap a complete new copy of ``target`` in; ``False`` if ``target`` cannot be renamed."""
    skip = written | set(stale)
    for directory, subdirs, files in os.walk(target):
        base = Path(directory).relative_to(target)
        for name in subdirs:
            source = Path(directory) / name
            if source.is_symlink():
                if (base / name).as_posix() not in skip:
                    os.symlink(os.readlink(source), staging / base / name)
            else:
                (staging / base / name).mkdir(exist_ok=True)
        subdirs[:] = [d for d in subdirs if not (Path(directory) / d).is_symlink()]
        for name in files:
            rel = (base / name).as_posix()
            if rel in skip:
                continue
            source = Path(directory) / name
            if source.is_symlink():
                os.symlink(os.readlink(source), staging / rel)
            else:
                _link_or_copy(str(source), str(staging / rel))
    os.chmod(staging, stat.S_IMODE(target.stat().st_mode))
    aside = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
    try:
        os.rename(target, aside)
    except OSError as error:
        if error.errno not in _CANNOT_RENAME:
            raise
        return False
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(aside, target)
        raise
    # The old directory holds only files that are in the new one (linked or copied) or that
    # an earlier write of this kind made (replaced or stale).
    shutil.rmtree(aside, ignore_errors=True)
    return True


_CANNOT_RENAME = frozenset({errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES, errno.EINVAL})


def _move_files(staging: Path, target: Path, written: set[str], order: tuple[str, ...]) -> None:
    last = [n for n in order if n in written]
    names = sorted(n for n in written if n not in last) + last
    for name in names:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target / name)


def _remove_files(target: Path, stale: list[str]) -> None:
    """Remove files of an earlier write (listed by ``owned``), then the folders they leave
    empty; never a folder that still holds anything."""
    for name in stale:
        (target / name).unlink(missing_ok=True)
        parent = (target / name).parent
        while parent != target:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


def read_json(path: Path, what: str, hint: str = "Delete it to start afresh.") -> Any:
    """The JSON value in ``path``; ``what`` names the file in errors, ``hint`` says what to do.

    Raises:
        SearchStateError: the file cannot be read or is not JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    # RecursionError: a file nested deeper than the parser's recursion limit.
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise SearchStateError(
            f"Cannot read {what} {str(path)!r}: {error}. {hint}".rstrip()
        ) from error


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """Like :func:`read_json`, and the value must be a JSON object."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise SearchStateError(f"{what.capitalize()} {str(path)!r} is not a JSON object.")
    return data
