"""The training images: a class-per-folder dataset, split, decoded once into memory.

Folders are found by the same scan as ``mnaszoo evaluate`` (:func:`mnaszoo.tasks.evaluation.
scan_image_folder`: one subfolder per class, sorted folder order is the class index). Every
image is decoded once, before the first step, and kept as 8-bit pixels:

* training images: shorter side resized to the input size, centre-cropped square (the random
  resized crop then zooms inside that square, batched, see :mod:`.augment`);
* validation images: exactly the saved evaluation recipe (resize, centre crop), so the
  validation accuracy is what ``mnaszoo evaluate`` measures on the same folder.

Unreadable images are skipped, each reported with its path (or refused with
``corrupt="error"``), and listed in ``split.json``. The pixels take ``3 * size**2`` bytes per
image (150 KB at 224): 10,000 images at 224 take 1.5 GB of memory.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..._validate import check_choice, check_float
from ...data.images import load_image, report_unreadable
from ...data.transforms import _RESAMPLE, _center_crop, _resize_shorter
from ...errors import InvalidArgumentError, InvalidImageError
from ...weights.manifest import Preprocessing

__all__ = ["MAX_PIXEL_BYTES", "Dataset", "load_datasets"]

logger = logging.getLogger("mnaszoo.train")

MAX_PIXEL_BYTES = 16 * 2**30
"""Refuse datasets whose decoded pixels would take more memory than this (16 GiB)."""


@dataclass(frozen=True)
class Dataset:
    """Decoded images of one split.

    Attributes:
        pixels: ``(N, 3, S, S)`` uint8.
        labels: ``(N,)`` int64 class indices.
        paths: the file of each image (for the record of the split).
    """

    pixels: torch.Tensor
    labels: torch.Tensor
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _scan(
    folder: str | os.PathLike[str], what: str
) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    # The project's one folder scan (sorted class subfolders, hidden entries skipped).
    from ..evaluation import check_image_folder, scan_image_folder

    root = check_image_folder(folder)
    count = sum(1 for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    # The scan's note on mapping folders to a pretrained model's classes does not apply here.
    scan_logger = logging.getLogger("mnaszoo.tasks.evaluation")
    level = scan_logger.level
    scan_logger.setLevel(max(level, logging.WARNING))
    try:
        found = scan_image_folder(root, num_classes=max(count, 1))
    finally:
        scan_logger.setLevel(level)
    classes, samples = found.classes, list(found.samples)
    if len(classes) < 2:
        raise InvalidArgumentError(
            f"The {what} folder {str(folder)!r} has {len(classes)} class subfolder"
            f" ({', '.join(classes) or 'none'}); a classifier needs at least two classes, one"
            " subfolder per class."
        )
    present = {label for _, label in samples}
    empty = [name for i, name in enumerate(classes) if i not in present]
    if empty:
        raise InvalidArgumentError(
            f"The class folders {', '.join(map(repr, empty[:5]))} of the {what} folder"
            f" {str(folder)!r} hold no images; add images (.jpg, .png, ...) or remove the"
            " folders."
        )
    return classes, samples


def _decode(path: str, size: int, resize: int, resample: Any) -> np.ndarray[Any, Any]:
    picture = _center_crop(_resize_shorter(load_image(path), resize, resample), size)
    return np.asarray(picture, dtype=np.uint8)


def _decode_all(
    samples: list[tuple[str, int]], size: int, resize: int, resample: Any, corrupt: str
) -> tuple[Dataset, list[tuple[str, str]]]:
    arrays: list[np.ndarray[Any, Any]] = []
    labels: list[int] = []
    paths: list[str] = []
    skipped: list[tuple[str, str]] = []
    for path, label in samples:
        try:
            arrays.append(_decode(path, size, resize, resample))
        except (InvalidImageError, OSError) as error:
            skipped.append((path, str(error) or type(error).__name__))
            continue
        labels.append(label)
        paths.append(path)
    report_unreadable(skipped, corrupt, logger)
    if arrays:
        stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    else:
        stacked = torch.zeros((0, 3, size, size), dtype=torch.uint8)
    return Dataset(stacked, torch.tensor(labels, dtype=torch.int64), tuple(paths)), skipped


def stratified_split(
    labels: list[int], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Seeded per-class split: ``round(n * val_fraction)`` of every class (at least one, and at
    least one left for training) goes to validation. Returns sorted index lists."""
    generator = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    train: list[int] = []
    val: list[int] = []
    for label in sorted(by_class):
        items = by_class[label]
        order = [items[i] for i in torch.randperm(len(items), generator=generator).tolist()]
        count = min(len(items) - 1, max(1, round(len(items) * val_fraction)))
        val += order[:count]
        train += order[count:]
    return sorted(train), sorted(val)


@dataclass(frozen=True)
class Datasets:
    """The decoded split and its record."""

    train: Dataset
    val: Dataset
    classes: tuple[str, ...]
    record: dict[str, Any]


def load_datasets(
    data: str | os.PathLike[str],
    preprocessing: Preprocessing,
    *,
    val: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    corrupt: str = "skip",
) -> Datasets:
    """Scan, split and decode the training (and validation) folders.

    Raises:
        InvalidArgumentError: a folder is missing, has fewer than two classes, an empty class,
            validation classes that differ from the training classes, a class too small to
            split, or would not fit in memory.
        InvalidImageError: ``corrupt="error"`` and some images cannot be read.
    """
    check_float(
        "val_fraction",
        val_fraction,
        minimum=0.0,
        maximum=1.0,
        min_inclusive=False,
        max_inclusive=False,
    )
    check_choice("corrupt", corrupt, ("skip", "error"))
    classes, samples = _scan(data, "training")
    val_samples: list[tuple[str, int]] = []
    if val is not None:
        val_classes, val_samples = _scan(val, "validation")
        if val_classes != classes:
            missing = sorted(set(classes) - set(val_classes))
            extra = sorted(set(val_classes) - set(classes))
            raise InvalidArgumentError(
                f"The validation folder {str(val)!r} must have the same class subfolders as"
                f" {str(data)!r}: missing {missing[:5]}, unexpected {extra[:5]}. Add or remove"
                " class folders so that both list the same classes."
            )
    size = preprocessing.input_size
    total = len(samples) + len(val_samples)
    if total * 3 * size * size > MAX_PIXEL_BYTES:
        raise InvalidArgumentError(
            f"{total} images at {size}x{size} would take"
            f" {total * 3 * size * size / 2**30:.1f} GiB of memory (the limit is"
            f" {MAX_PIXEL_BYTES / 2**30:.0f} GiB); train at a smaller --input-size or on a subset."
        )
    resample = _RESAMPLE[preprocessing.interpolation]
    logger.info("decoding %d images at %dx%d", total, size, size)
    if val is None:
        everything, skipped = _decode_all(samples, size, size, resample, corrupt)
        counts = torch.bincount(everything.labels, minlength=len(classes)).tolist()
        small = [classes[i] for i, n in enumerate(counts) if n < 2]
        if small:
            raise InvalidArgumentError(
                f"The classes {', '.join(map(repr, small[:5]))} have fewer than 2 readable"
                " images, too few to hold one out for validation: add images or pass a --val"
                " folder."
            )
        train_idx, val_idx = stratified_split(everything.labels.tolist(), val_fraction, seed)
        train_set = _subset(everything, train_idx)
        # Validation images get the evaluation recipe (resize, crop), decoded again from file.
        val_items = [(everything.paths[i], int(everything.labels[i])) for i in val_idx]
        val_set, _ = _decode_all(val_items, size, preprocessing.resize, resample, "skip")
    else:
        train_set, skipped = _decode_all(samples, size, size, resample, corrupt)
        val_set, val_skipped = _decode_all(
            val_samples, size, preprocessing.resize, resample, corrupt
        )
        skipped += val_skipped
        for split, name in ((train_set, "training"), (val_set, "validation")):
            counts = torch.bincount(split.labels, minlength=len(classes)).tolist()
            lost = [classes[i] for i, n in enumerate(counts) if n == 0]
            if lost:
                raise InvalidArgumentError(
                    f"The classes {', '.join(map(repr, lost[:5]))} have no readable {name}"
                    " images; every class needs some."
                )
    record = {
        "data": str(Path(os.fspath(data)).resolve()),
        "val": None if val is None else str(Path(os.fspath(val)).resolve()),
        "val_fraction": None if val is not None else val_fraction,
        "split_seed": seed,
        "classes": list(classes),
        "train": [_relative(p, data) for p in train_set.paths],
        "validation": [_relative(p, val if val is not None else data) for p in val_set.paths],
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
    }
    return Datasets(train_set, val_set, classes, record)


def _subset(dataset: Dataset, indices: list[int]) -> Dataset:
    index = torch.tensor(indices, dtype=torch.int64)
    return Dataset(
        dataset.pixels[index], dataset.labels[index], tuple(dataset.paths[i] for i in indices)
    )


def _relative(path: str, root: str | os.PathLike[str]) -> str:
    try:
        return str(Path(path).relative_to(Path(os.fspath(root))))
    except ValueError:
        return path
