"""The images of a large prediction job: files, folders, ``@list`` files and path tables.

A *corpus* is described by a list of sources, each one of:

=========================  =================================================================
Source                     Images
=========================  =================================================================
an image file              itself (any extension: a file that is not an image gives an
                           error row when the job runs, not a refusal now)
a folder                   every image below it (``.jpg .jpeg .png .bmp .webp .tif .tiff``,
                           any case), walked recursively in sorted order; names starting with
                           ``.`` are skipped; links to folders are followed, each real folder
                           once (a link loop is refused, not walked for ever)
``@FILE``                  one path per line of ``FILE``; blank lines and lines starting with
                           ``#`` are skipped
``FILE.parquet``           the column ``path_column`` (default ``path``) of a Parquet table
``FILE.csv``               the column ``path_column`` of a CSV table with a header row
=========================  =================================================================

Relative paths inside a list file or table are taken relative to the folder of that file, so a
list travels with the images it names. The corpus is enumerated lazily, twice at most (once to
count and fingerprint it, once to run it): a million paths are never held in memory at once.
The order is deterministic (sources in the order given, folders sorted), which is what lets an
interrupted job resume by part number.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.scan import IMAGE_EXTENSIONS, scan_files
from ..errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["IMAGE_EXTENSIONS", "Corpus", "walk_images"]

"""The file extensions taken from folders (compared case-insensitively)."""

# A walk deeper than this is a mistake (or a bind-mount loop that st_ino tracking cannot see).


def walk_images(folder: Path) -> Iterator[str]:
    """Yield the image files below ``folder``, recursively, in sorted order.

    The walk is mnaszoo's one folder scanner (:func:`mnaszoo.data.scan.scan_files`): directory
    symlinks are followed, each real directory once, so a link loop or two links to one folder
    is refused rather than predicting the same images twice.

    Raises:
        InvalidArgumentError: a folder is reached twice, the tree is too deep or too large, or a
            folder cannot be read.
    """
    yield from scan_files(folder, extensions=IMAGE_EXTENSIONS)


def _relative_to(base: Path, path: str) -> str:
    if os.path.isabs(path) or str(base) in ("", "."):
        return path
    return os.path.join(base, path)


def _list_file(path: Path) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                text = line.strip()
                if text and not text.startswith("#"):
                    yield _relative_to(path.parent, text)
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidArgumentError(
            f"Cannot read the list file {str(path)!r}: {error}. Give a UTF-8 text file with one"
            " image path per line."
        ) from error


def _csv_table(path: Path, column: str) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or column not in reader.fieldnames:
                raise InvalidArgumentError(
                    f"The table {str(path)!r} has no column {column!r} (its columns:"
                    f" {', '.join(reader.fieldnames or []) or 'none'}); name the column of image"
                    " paths with --path-column."
                )
            for row in reader:
                value = (row.get(column) or "").strip()
                if value:
                    yield _relative_to(path.parent, value)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InvalidArgumentError(f"Cannot read the table {str(path)!r}: {error}.") from error


def _parquet_table(path: Path, column: str) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise InvalidArgumentError(
            f"Reading {str(path)!r} needs pyarrow: pip install 'mnaszoo[batch]'."
        ) from error
    try:
        table = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises its own ArrowInvalid/OSError types
        raise InvalidArgumentError(f"Cannot read the table {str(path)!r}: {error}.") from error
    names = table.schema_arrow.names
    if column not in names:
        raise InvalidArgumentError(
            f"The table {str(path)!r} has no column {column!r} (its columns: {', '.join(names)});"
            " name the column of image paths with --path-column."
        )
    # One record batch at a time: a table of millions of rows is never loaded whole.
    for batch in table.iter_batches(columns=[column], batch_size=8192):
        for value in batch.column(0).to_pylist():
            if value:
                yield _relative_to(path.parent, str(value))


@dataclass(frozen=True)
class Corpus:
    """The images of a prediction job, enumerated on demand (see the module docstring).

    Attributes:
        sources: the sources as given.
        path_column: the column of image paths in Parquet and CSV tables.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("b.jpg", "a.png", "notes.txt"):
        ...     (folder / name).write_bytes(b"")
        0
        0
        0
        >>> [pathlib.Path(p).name for p in Corpus.of([folder]).paths()]
        ['a.png', 'b.jpg']
    """

    sources: tuple[str, ...]
    path_column: str = "path"

    @classmethod
    def of(cls, sources: Sequence[str | os.PathLike[str]], path_column: str = "path") -> Corpus:
        """Check ``sources`` (each must exist) and return their corpus.

        Raises:
            InvalidArgumentError: a source does not exist, or a ``@`` names no file.
            ArgumentTypeError: ``sources`` is not a list of paths.
        """
        if isinstance(sources, (str, bytes, os.PathLike)) or not isinstance(sources, (list, tuple)):
            raise ArgumentTypeError(
                f"sources must be a list of paths, got {type(sources).__name__}."
            )
        checked: list[str] = []
        for source in sources:
            if not isinstance(source, (str, os.PathLike)):
                raise ArgumentTypeError(f"A source must be a path, got {type(source).__name__}.")
            text = os.fspath(source)
            target = text[1:] if text.startswith("@") else text
            if not os.path.exists(target):
                what = "list file" if text.startswith("@") else "image, folder or table"
                raise InvalidArgumentError(
                    f"The {what} {target!r} does not exist. Give image files, folders, @LIST"
                    " files (one path per line) or .parquet/.csv tables with a path column."
                )
            checked.append(text)
        if not isinstance(path_column, str) or not path_column:
            raise InvalidArgumentError("path_column must be a non-empty column name.")
        return cls(tuple(checked), path_column)

    def paths(self) -> Iterator[str]:
        """Yield every image path, in the corpus order."""
        for source in self.sources:
            if source.startswith("@"):
                yield from _list_file(Path(source[1:]))
                continue
            path = Path(source)
            if path.is_dir():
                yield from walk_images(path)
            elif path.suffix.lower() == ".parquet":
                yield from _parquet_table(path, self.path_column)
            elif path.suffix.lower() == ".csv":
                yield from _csv_table(path, self.path_column)
            else:
                yield source

    def scan(self) -> tuple[int, str]:
        """Count the images and fingerprint their paths (sha256 of the ordered list), in one
        pass that holds no list: a resumed job checks that it runs over the same corpus."""
        digest = hashlib.sha256()
        count = 0
        for path in self.paths():
            digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
            count += 1
        return count, digest.hexdigest()


@dataclass(frozen=True)
class _Plan:
    corpus: Corpus
    total: int
    batch_size: int
    part_size: int
    done: frozenset[int]

    def part_rows(self, part: int) -> int:
        return min(self.part_size, self.total - part * self.part_size)

    def batches(self) -> Iterator[tuple[int, int, list[str]]]:
        """``(part, first index, paths)`` of every batch still to run, in corpus order."""
        paths: list[str] = []
        start = 0
        for index, path in enumerate(self.corpus.paths()):
            if index >= self.total:
                break  # the corpus grew since it was counted: the job runs what it counted
            part = index // self.part_size
            if part in self.done:
                continue
            if not paths:
                start = index
            paths.append(path)
            last_of_part = (index + 1) % self.part_size == 0 or index + 1 == self.total
            if len(paths) == self.batch_size or last_of_part:
                yield part, start, paths
                paths = []
        if paths:
            yield start // self.part_size, start, paths
