"""Predict over a corpus of any size on one machine, in bounded memory.

The corpus (:class:`~mnaszoo.tasks.corpus.Corpus`) is cut into *parts* of ``part_size`` images
and each part into batches of ``batch_size``. Worker processes (a torch ``DataLoader`` over an
iterable dataset; worker ``w`` of ``W`` decodes batches ``w, w + W, ...``) read, decode and
preprocess batches while the model runs on the previous ones in this process; the loader hands
the batches back in corpus order. Memory holds a few batches of pixels and one part of results,
whatever the number of images.

:func:`predict_batches` yields the results batch by batch; :func:`predict_to_file` writes them
to Parquet or JSON Lines through :class:`~mnaszoo.tasks.parts.PartStore`, atomically per part,
and can resume a job that was interrupted.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .._validate import check_bool, check_choice, check_int
from ..data.transforms import ImageTransform
from ..errors import InvalidImageError
from .corpus import Corpus, _Plan
from .parts import Columns, PartStore
from .scoring import Scorer, decode

__all__ = ["BatchSummary", "predict_batches", "predict_to_file"]

logger = logging.getLogger(__name__)

OnError = Literal["skip", "fail"]
DEFAULT_PART_SIZE = 4096


class _Decoded(IterableDataset[dict[str, Any]]):
    """The batches of a plan, decoded; worker ``w`` of ``W`` takes batches ``w, w + W, ...``,
    which the DataLoader returns round-robin, that is in corpus order."""

    def __init__(self, plan: _Plan, transform: ImageTransform) -> None:
        self.plan = plan
        self.transform = transform

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        size = self.transform.input_size
        for number, (part, start, paths) in enumerate(self.plan.batches()):
            if number % workers != worker:
                continue
            tensors: list[torch.Tensor] = []
            errors: list[str | None] = []
            for path in paths:
                tensor, error = decode(path, self.transform)
                errors.append(error)
                if tensor is not None:
                    tensors.append(tensor)
            pixels = torch.stack(tensors) if tensors else torch.zeros(0, 3, size, size)
            yield {"part": part, "start": start, "paths": paths, "pixels": pixels, "errors": errors}


def _one_thread(_: int) -> None:
    # Decoding workers each use one core; the model keeps the main process's threads.
    torch.set_num_threads(1)


def _batches(
    plan: _Plan, scorer: Scorer, workers: int, on_error: str
) -> Iterator[tuple[int, Columns]]:
    loader = DataLoader(
        _Decoded(plan, scorer.transform),
        batch_size=None,
        num_workers=workers,
        worker_init_fn=_one_thread if workers else None,
        prefetch_factor=2 if workers else None,
    )
    for batch in loader:
        errors: list[str | None] = batch["errors"]
        if on_error == "fail":
            failed = next((error for error in errors if error is not None), None)
            if failed is not None:
                raise InvalidImageError(failed)
        columns = scorer.rows(batch["paths"], batch["pixels"], errors)
        start = int(batch["start"])
        yield int(batch["part"]), {"index": list(range(start, start + len(errors))), **columns}


def _check_common(batch_size: int, workers: int, part_size: int, on_error: str) -> None:
    check_int("batch_size", batch_size, minimum=1)
    check_int("workers", workers, minimum=0)
    check_int("part_size", part_size, minimum=1)
    check_choice("on_error", on_error, ("skip", "fail"))


def predict_batches(
    sources: Sequence[str | os.PathLike[str]],
    model: str | nn.Module = "mnasnet_a1",
    *,
    batch_size: int = 32,
    workers: int = 0,
    on_error: OnError = "skip",
    path_column: str = "path",
    **scorer_options: Any,
) -> Iterator[dict[str, list[Any]]]:
    """Classify every image of a corpus, yielding the results one batch at a time.

    Args:
        sources: image files, folders (walked recursively), ``@list`` files and
            ``.parquet``/``.csv`` tables (see :mod:`mnaszoo.tasks.corpus`).
        model: a registered name or a classification model, as in :func:`mnaszoo.predict`.
        batch_size: images per forward pass.
        workers: processes decoding images while the model runs (0: in this process).
        on_error: ``"skip"``: an image that cannot be used becomes a row with its ``error``
            (and empty class lists); ``"fail"``: it stops the job with
            :class:`~mnaszoo.errors.InvalidImageError`.
        path_column: the column of image paths in tables.
        **scorer_options: ``topk``, ``embeddings``, ``weights``, ``checkpoint``,
            ``class_file``, ``input_size``, ``device``, ``cache_dir``, ``local_files_only``,
            ``backend``, as in :func:`mnaszoo.predict` (``embeddings=True`` adds the pooled
            features before the classifier).

    Yields:
        Dicts of equal-length lists: ``index``, ``path``, ``labels``, ``indices``, ``scores``,
        ``error`` (and ``embedding``), in corpus order.

    Example:
        >>> import pathlib, tempfile, mnaszoo
        >>> from PIL import Image
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (64, 48)).save(folder / "a.png")
        >>> (folder / "b.jpg").write_bytes(b"not an image")
        12
        >>> model = mnaszoo.create("mnasnet_small", num_classes=3)
        >>> for batch in predict_batches([folder], model, topk=1, device="cpu"):
        ...     print(len(batch["scores"][0]), batch["error"][0], batch["error"][1].split("/")[-1])
        1 None b.jpg': not an image file PIL can identify
    """
    _check_common(batch_size, workers, 1, on_error)
    corpus = Corpus.of(sources, path_column)
    scorer = Scorer(model, **scorer_options)
    total = sum(1 for _ in corpus.paths())
    plan = _Plan(corpus, total, batch_size, max(total, 1), frozenset())
    for _, columns in _batches(plan, scorer, workers, on_error):
        yield columns


@dataclass(frozen=True)
class BatchSummary:
    """What :func:`predict_to_file` did.

    Attributes:
        output: the file written.
        images: images in the corpus.
        errors: images that could not be used (rows with an ``error``), in the parts run now.
        skipped_parts: parts already written by an earlier run (resumed).
        seconds: wall time of this run.
        predicted: images run now (those of the skipped parts excluded).
    """

    output: str
    images: int
    errors: int
    skipped_parts: int
    seconds: float
    predicted: int = 0


def _progress(total: int, enabled: bool | None) -> Any:
    # huggingface_hub's tqdm, as evaluate uses (it honours HF_HUB_DISABLE_PROGRESS_BARS).
    bars = importlib.import_module("huggingface_hub.utils.tqdm")
    show = sys.stderr.isatty() if enabled is None else enabled
    return bars.tqdm(total=total, unit="img", desc="predict", disable=not show, smoothing=0.1)


def _manifest(
    corpus: Corpus,
    total: int,
    fingerprint: str,
    scorer: Scorer,
    model: object,
    part_size: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    name = model if isinstance(model, str) else type(model).__name__
    return {
        "images": total,
        "fingerprint": fingerprint,
        "part_size": part_size,
        "model": name,
        "topk": scorer.topk,
        "embeddings": scorer.embeddings,
        "input_size": scorer.transform.input_size,
        **{key: options[key] for key in ("weights", "checkpoint") if options.get(key) is not None},
    }


def predict_to_file(
    sources: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    model: str | nn.Module = "mnasnet_a1",
    *,
    batch_size: int = 32,
    workers: int = 0,
    on_error: OnError = "skip",
    path_column: str = "path",
    part_size: int = DEFAULT_PART_SIZE,
    resume: bool = False,
    progress: bool | None = None,
    ray: Any = None,
    **scorer_options: Any,
) -> BatchSummary:
    """Classify every image of a corpus into a Parquet or JSON Lines file, resumably.

    The results are written part by part (``part_size`` images each) into ``OUTPUT.parts``,
    each part atomically, then assembled into ``output`` (see :mod:`mnaszoo.tasks.parts`). An
    empty corpus gives a valid empty file (and a warning).

    Args:
        sources: as in :func:`predict_batches`.
        output: ``*.parquet`` (needs pyarrow: ``mnaszoo[batch]``) or ``*.jsonl``.
        model: as in :func:`predict_batches`.
        batch_size: images per forward pass.
        workers: decoding processes (0: in this process); with ``ray``, model actors.
        on_error: as in :func:`predict_batches`.
        path_column: the column of image paths in tables.
        part_size: images per part file.
        resume: continue an interrupted job (its parts folder); it must be the same job (same
            corpus, model and options), else :class:`~mnaszoo.errors.InvalidArgumentError`.
        progress: show a progress bar on stderr (images/s, time left); ``None``: when stderr
            is a terminal.
        ray: run on Ray Data instead: ``"local"`` (a local cluster), ``"auto"`` or
            ``"HOST:PORT"`` (see :mod:`mnaszoo.tasks.ray_batch`).
        **scorer_options: as in :func:`predict_batches`.

    Returns:
        A :class:`BatchSummary`.

    Raises:
        InvalidArgumentError: a source is missing, the output cannot be written (checked
            before any work), an unfinished job is in the way without ``resume``, or an
            argument is out of range.
        InvalidImageError: with ``on_error="fail"``, the first image that cannot be used (the
            parts written until then stay, for ``resume``).
    """
    _check_common(batch_size, workers, part_size, on_error)
    check_bool("resume", resume)
    start_time = time.perf_counter()
    corpus = Corpus.of(sources, path_column)
    target = Path(output)
    # Check the output before counting the corpus or loading the model.
    from .._io import check_writable
    from .parts import output_format

    output_format(target)
    check_writable(target, "the predictions")
    scorer = Scorer(model, **scorer_options)
    total, fingerprint = corpus.scan()
    manifest = _manifest(corpus, total, fingerprint, scorer, model, part_size, scorer_options)
    store = PartStore(target, manifest, resume=resume)
    done = store.open()
    if total == 0:
        logger.warning(
            "No images found in %s: writing an empty %s.", ", ".join(corpus.sources), target
        )
    plan = _Plan(corpus, total, batch_size, part_size, frozenset(done))
    remaining = sum(plan.part_rows(p) for p in range(-(-total // part_size)) if p not in done)
    errors = 0
    if ray is not None:
        from .ray_batch import ray_part_columns

        stream = ray_part_columns(
            plan,
            model,
            scorer,
            ray,
            workers=workers,
            batch_size=batch_size,
            on_error=on_error,
            scorer_options=scorer_options,
        )
    else:
        stream = _batches(plan, scorer, workers, on_error)
    pending: Columns = {}
    current = -1
    with _progress(remaining, progress) as bar:
        for part, columns in stream:
            if part != current:
                pending = {name: [] for name in columns}
                current = part
            for name, values in columns.items():
                pending[name].extend(values)
            errors += sum(error is not None for error in columns["error"])
            bar.update(len(columns["index"]))
            if len(pending["index"]) == plan.part_rows(part):
                store.write_part(part, pending)
                pending = {}
    store.assemble(-(-total // part_size))
    return BatchSummary(
        output=str(target),
        images=total,
        errors=errors,
        skipped_parts=len(done),
        seconds=time.perf_counter() - start_time,
        predicted=remaining,
    )
