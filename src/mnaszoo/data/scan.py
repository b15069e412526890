"""Find the image files of a folder tree: the one scanner every command uses.

``evaluate``, the search's image folders, fine-tuning data and the calibration images of an int8
export all read folders through :func:`scan_files` or :func:`scan_class_folders`, so every one
of them gets the same guarantees:

- files are returned in sorted path order; names starting with ``.`` are skipped;
- directory symlinks are followed, but every real directory (its device and inode) is visited
  once: a link back to a parent (a loop) or a second link to a folder already read is refused,
  naming both paths, instead of counting images twice or scanning for ever;
- the depth of the tree and the number of files examined are bounded, so a wrong folder (``/``)
  fails in seconds with a clear message instead of filling the memory;
- a folder that cannot be read (permissions) is an error, never silently skipped.

Every failure is an :class:`~mnaszoo.errors.InvalidArgumentError` that says what was found, what
is accepted and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArgumentTypeError, InvalidArgumentError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FILES",
    "IMAGE_EXTENSIONS",
    "ClassFolders",
    "scan_class_folders",
    "scan_files",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""File extensions read as images (compared case-insensitively)."""
DEFAULT_MAX_DEPTH = 32
"""How many folder levels below the root are searched."""
DEFAULT_MAX_FILES = 10_000_000
"""How many files (matching or not) a scan examines before it stops with an error."""


@dataclass(frozen=True)
class ClassFolders:
    """A class-per-folder dataset as found on disk.

    Attributes:
        root: the scanned folder.
        classes: the visible subfolder names of ``root``, sorted.
        files: ``files[i]`` are the sorted matching paths under ``classes[i]``.
        loose: matching files directly in ``root``, outside any class folder.

    Example:
        >>> import tempfile, mnaszoo
        >>> from pathlib import Path
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("cat", "dog"):
        ...     (root / name).mkdir()
        ...     for i in range(2):
        ...         _ = (root / name / f"{i}.png").write_bytes(b"")
        >>> folders = mnaszoo.scan_class_folders(root)
        >>> folders.classes, [len(files) for files in folders.files], folders.loose
        (('cat', 'dog'), [2, 2], 0)
    """

    root: Path
    classes: tuple[str, ...]
    files: tuple[tuple[str, ...], ...]
    loose: int


class _Walk:
    """One scan: the real directories already visited and the files examined so far."""

    def __init__(self, suffixes: tuple[str, ...] | None, max_depth: int, max_files: int) -> None:
        self.suffixes = suffixes
        self.max_depth = max_depth
        self.max_files = max_files
        self.visited: dict[tuple[int, int], str] = {}
        self.examined = 0

    def enter(self, directory: str) -> None:
        """Record a directory, refusing one that was reached before by another path."""
        try:
            info = os.stat(directory)
        except OSError as error:
            raise _unreadable(directory, error) from error
        key = (info.st_dev, info.st_ino)
        first = self.visited.get(key)
        if first is not None:
            loop = _is_inside(directory, first)
            what = "a symlink loop: it leads back to" if loop else "the same folder as"
            raise InvalidArgumentError(
                f"{directory!r} is {what} {first!r} (a directory symlink), so its images would be"
                " counted again (or for ever). Remove the link, or copy the images instead of"
                " linking the folder twice."
            )
        self.visited[key] = directory

    def files(self, directory: str, depth: int) -> list[str]:
        """The matching files under ``directory`` (already entered), sorted."""
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as error:
            raise _unreadable(directory, error) from error
        found: list[str] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir:
                if depth >= self.max_depth:
                    raise InvalidArgumentError(
                        f"{entry.path!r} is more than {self.max_depth} folders deep below the"
                        " folder given: a symlink loop, or the wrong folder. Give the folder"
                        " that holds the class folders (or the images) themselves."
                    )
                self.enter(entry.path)
                found.extend(self.files(entry.path, depth + 1))
                continue
            self.examined += 1
            if self.examined > self.max_files:
                raise InvalidArgumentError(
                    f"More than {self.max_files:,} files below the folder given (stopped in"
                    f" {directory!r}): is it the right folder? Give the folder of the images"
                    " themselves, or split the data into smaller folders."
                )
            if self.suffixes is None or entry.name.lower().endswith(self.suffixes):
                found.append(entry.path)
        return found


def _is_inside(path: str, ancestor: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(ancestor)]) == (
        os.path.abspath(ancestor)
    )


def _unreadable(directory: str, error: OSError) -> InvalidArgumentError:
    reason = error.strerror or type(error).__name__
    return InvalidArgumentError(
        f"Cannot read the folder {directory!r}: {reason}. Give a folder this user can read"
        " (check its permissions), or move it out of the data."
    )


def _root(root: object) -> str:
    if not isinstance(root, (str, os.PathLike)):
        raise ArgumentTypeError(f"folder must be a path, got {type(root).__name__}.")
    path = os.fspath(root)
    if not isinstance(path, str):
        raise ArgumentTypeError("folder must be a str path, not bytes.")
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.exists(path) else "is not a directory"
        raise InvalidArgumentError(
            f"The image folder {path!r} {what}; give a folder with one subfolder per class."
        )
    return path


def _walk(extensions: Iterable[str] | None, max_depth: object, max_files: object) -> _Walk:
    from .._validate import check_int

    depth = check_int("max_depth", max_depth, minimum=0)
    files = check_int("max_files", max_files, minimum=1)
    if isinstance(extensions, str):
        raise ArgumentTypeError("extensions must be a collection of suffixes, not one string.")
    suffixes = None if extensions is None else tuple(e.lower() for e in extensions)
    return _Walk(suffixes, depth, files)


def scan_files(
    root: str | os.PathLike[str],
    *,
    extensions: Iterable[str] | None = IMAGE_EXTENSIONS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_files: int = DEFAULT_MAX_FILES,
) -> list[str]:
    """The files under ``root`` whose names end with one of ``extensions``, sorted.

    Args:
        root: the folder to search, recursively.
        extensions: lower-case suffixes to keep (compared case-insensitively); ``None`` keeps
            every file.
        max_depth: folder levels below ``root`` searched; deeper is an error.
        max_files: files examined (matching or not) before the scan stops with an error.

    Returns:
        Paths as ``str`` (``root`` joined with the path below it), in sorted order.

    Raises:
        InvalidArgumentError: ``root`` is not a directory, a directory is reached twice (a
            symlink loop, or two links to one folder), the tree is deeper than ``max_depth`` or
            holds more than ``max_files`` files, or a folder cannot be read.
        ArgumentTypeError: ``root`` is not a path.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> (folder / "a").mkdir(); (folder / "a" / "1.JPG").touch(); (folder / "notes.txt").touch()
        >>> [pathlib.Path(p).relative_to(folder).as_posix() for p in scan_files(folder)]
        ['a/1.JPG']
    """
    path = _root(root)
    walk = _walk(extensions, max_depth, max_files)
    walk.enter(path)
    return sorted(walk.files(path, 0))


def scan_class_folders(
    root: str | os.PathLike[str],
    *,
    extensions: Iterable[str] | None = IMAGE_EXTENSIONS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_files: int = DEFAULT_MAX_FILES,
) -> ClassFolders:
    """The class folders of ``root`` (its visible subfolders) and the files in each.

    One scan covers the whole tree, so a class folder that links to another class, or back to
    ``root``, is refused rather than counted twice. Having no class folder, or no file, is not
    an error here: callers say what they need.

    Args:
        root: the folder holding one subfolder per class.
        extensions: as for :func:`scan_files`.
        max_depth: folder levels below a class folder searched.
        max_files: files examined in all, as for :func:`scan_files`.

    Returns:
        A :class:`ClassFolders`.

    Raises:
        InvalidArgumentError: as for :func:`scan_files`.
        ArgumentTypeError: ``root`` is not a path.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("cat/1.jpg", "cat/2.png", "dog/1.jpg", "loose.jpg"):
        ...     (root / name).parent.mkdir(exist_ok=True); (root / name).touch()
        >>> found = scan_class_folders(root)
        >>> found.classes, [len(files) for files in found.files], found.loose
        (('cat', 'dog'), [2, 1], 1)
    """
    path = _root(root)
    walk = _walk(extensions, max_depth, max_files)
    walk.enter(path)
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as error:
        raise _unreadable(path, error) from error
    classes: list[str] = []
    files: list[tuple[str, ...]] = []
    loose = 0
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            walk.enter(entry.path)
            classes.append(entry.name)
            files.append(tuple(sorted(walk.files(entry.path, 1))))
        else:
            walk.examined += 1
            if walk.suffixes is None or entry.name.lower().endswith(walk.suffixes):
                loose += 1
    return ClassFolders(Path(path), tuple(classes), tuple(files), loose)
