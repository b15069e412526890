"""Result files of a large prediction job, written one atomic part at a time.

A job writing ``OUT.parquet`` (or ``OUT.jsonl``) keeps its parts in the folder ``OUT.parquet.parts``
beside it: ``manifest.json`` (what the job is: corpus fingerprint, size, part size, model,
columns), then ``part-000000.parquet``, ``part-000001.parquet``, ... Part ``p`` holds the rows of
the images ``p * part_size`` to ``(p + 1) * part_size - 1`` of the corpus, in order. Every file
is written to a temporary name and renamed into place, so a part on disk is always whole: a job
killed at any moment (even ``kill -9``) leaves whole parts, and a rerun with ``resume=True``
skips them. When the last part is written, the parts are streamed into ``OUT`` (again through a
temporary file and a rename) and the folder is removed.

Columns (one row per image, in corpus order): ``index`` (position in the corpus), ``path``,
``labels``, ``indices`` and ``scores`` (the top-k classes, highest score first), ``error`` (null,
or why the image could not be used; its class lists are then empty) and, when asked for,
``embedding`` (the pooled features the classifier sees).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._io import atomic_path, check_writable, read_json_object, write_text_atomic
from ..errors import InvalidArgumentError, MnaszooError

__all__ = ["COLUMNS", "FORMATS", "PartStore", "output_format"]

FORMATS = (".parquet", ".jsonl")
"""The output file suffixes a job can write."""

COLUMNS = ("index", "path", "labels", "indices", "scores", "error")
"""The columns of every result row (``embedding`` is added when asked for)."""

Columns = dict[str, list[Any]]


def output_format(output: str | os.PathLike[str]) -> str:
    """``".parquet"`` or ``".jsonl"``, from the output's suffix.

    Raises:
        InvalidArgumentError: another suffix, or Parquet without pyarrow.
    """
    suffix = Path(output).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidArgumentError(
            f"Cannot tell the format of the output {os.fspath(output)!r}: name it *.parquet or"
            " *.jsonl."
        )
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as error:
            raise InvalidArgumentError(
                "Writing Parquet needs pyarrow: pip install 'mnaszoo[batch]' (or write *.jsonl)."
            ) from error
    return suffix


def _schema(embeddings: bool) -> Any:
    import pyarrow as pa

    fields = [
        pa.field("index", pa.int64(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("labels", pa.list_(pa.string())),
        pa.field("indices", pa.list_(pa.int64())),
        pa.field("scores", pa.list_(pa.float32())),
        pa.field("error", pa.string()),
    ]
    if embeddings:
        fields.append(pa.field("embedding", pa.list_(pa.float32())))
    return pa.schema(fields)


class PartStore:
    """The parts folder of one output file (see the module docstring).

    Args:
        output: the final file, ``*.parquet`` or ``*.jsonl``.
        manifest: what identifies the job; a resumed job must have the same one.
        resume: continue the parts already written (else an existing parts folder is an error).
    """

    def __init__(self, output: Path, manifest: Mapping[str, Any], *, resume: bool) -> None:
        self.output = output
        self.suffix = output_format(output)
        self.folder = output.with_name(output.name + ".parts")
        self.manifest = dict(manifest)
        self.embeddings = bool(self.manifest.get("embeddings"))
        self.resume = resume

    def open(self) -> set[int]:
        """Check that the output can be written, create or check the parts folder, and return
        the numbers of the parts already done (empty unless resuming).

        Raises:
            InvalidArgumentError: the output cannot be written, an unfinished job is in the way
                without ``resume``, or the job resumed differs from this one.
        """
        check_writable(self.output, "the predictions")
        manifest_file = self.folder / "manifest.json"
        if self.folder.exists():
            if not self.resume:
                raise InvalidArgumentError(
                    f"{str(self.folder)!r} holds the parts of an unfinished job: pass --resume"
                    " (resume=True) to continue it, or delete the folder to start again."
                )
            old = read_json_object(manifest_file, "the job manifest")
            changed = sorted(
                key
                for key in set(old) | set(self.manifest)
                if old.get(key) != self.manifest.get(key)
            )
            if changed:
                was = ", ".join(repr(old.get(k)) for k in changed)
                raise InvalidArgumentError(
                    f"Cannot resume {str(self.folder)!r}: this job differs from the one that wrote"
                    f" it in {', '.join(changed)} (was {was})."
                    " Run the same job again, or delete the folder to start again."
                )
            done = set()
            for entry in self.folder.iterdir():
                name = entry.name
                if name.startswith("part-") and name.endswith(self.suffix):
                    done.add(int(name[5 : -len(self.suffix)]))
            return done
        try:
            self.folder.mkdir()
            write_text_atomic(manifest_file, json.dumps(self.manifest, indent=2) + "\n")
        except OSError as error:
            raise InvalidArgumentError(
                f"Cannot write the parts folder {str(self.folder)!r}: {error}."
            ) from error
        return set()

    def part_path(self, part: int) -> Path:
        """The file of part number ``part``."""
        return self.folder / f"part-{part:06d}{self.suffix}"

    def write_part(self, part: int, columns: Columns) -> None:
        """Write one part atomically (synced to disk before it is renamed into place)."""
        path = self.part_path(part)
        if self.suffix == ".jsonl":
            write_text_atomic(path, "".join(_jsonl_lines(columns)))
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pydict(columns, schema=_schema(self.embeddings))
        with atomic_path(path) as temp:
            pq.write_table(table, temp)
            _fsync(temp)

    def assemble(self, count: int) -> None:
        """Stream the ``count`` parts, in order, into the output file (atomically) and remove
        the folder.

        Raises:
            MnaszooError: a part is missing (the images changed while the job ran).
        """
        parts = [self.part_path(part) for part in range(count)]
        missing = [path.name for path in parts if not path.exists()]
        if missing:
            raise MnaszooError(
                f"{str(self.folder)!r} lacks {', '.join(missing[:3])}: images were removed while"
                " the job ran. Delete the folder and run the job again."
            )
        with atomic_path(self.output) as temp:
            if self.suffix == ".jsonl":
                with open(temp, "wb") as handle:
                    for part in parts:
                        with open(part, "rb") as source:
                            shutil.copyfileobj(source, handle)
            else:
                import pyarrow.parquet as pq

                # One part in memory at a time, whatever the number of rows.
                with pq.ParquetWriter(temp, _schema(self.embeddings)) as writer:
                    for part in parts:
                        writer.write_table(pq.read_table(part, schema=_schema(self.embeddings)))
            _fsync(temp)
        shutil.rmtree(self.folder, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _jsonl_lines(columns: Columns) -> Iterable[str]:
    names = list(columns)
    for values in zip(*(columns[name] for name in names), strict=True):
        yield json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False) + "\n"


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a finished output file, as dicts (for small files: tests and examples)."""
    file = Path(path)
    if file.suffix.lower() == ".jsonl":
        with open(file, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = pq.read_table(file).to_pylist()
    return rows
