"""Your own images as the search's proxy task: a class-per-folder dataset decoded once, up front.

The folder layout is the one ``mnaszoo evaluate`` and the fine-tuning example read (one subfolder
per class, found by :func:`mnaszoo.tasks.evaluation.scan_image_folder`). Every image is decoded and
preprocessed before the search starts, at the proxy resolution with the evaluation transform
(resize the shorter side, centre crop, ImageNet normalisation) that a finalized model records for
``predict``/``evaluate``. A corrupt image therefore surfaces in the first seconds, reported with
its path: skipped (the default) or refused, never an exception in trial 400.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..._validate import check_choice, check_float, check_int
from ...data.images import report_unreadable
from ...errors import InvalidArgumentError, InvalidImageError
from .trainer import TensorPair, _stratified_split

__all__ = ["CORRUPT_POLICIES", "ImageFolderTask", "load_image_folder_proxy"]

logger = logging.getLogger(__name__)

CORRUPT_POLICIES: tuple[str, ...] = ("skip", "error")
"""What to do with an image that cannot be decoded: skip it (reported) or refuse the dataset."""


@dataclass(frozen=True)
class ImageFolderTask:
    """A proxy task decoded from image folders.

    Attributes:
        train: ``(images[N, 3, S, S], labels[N])``.
        val: the held-out pair.
        classes: class folder names; label ``i`` is ``classes[i]``.
        skipped: ``(path, reason)`` of every image left out as corrupt.
        preprocessing: the evaluation recipe the images were prepared with.
        source: what was read (folders, split, limits), for the search's settings.
    """

    train: TensorPair
    val: TensorPair
    classes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    preprocessing: Any
    source: dict[str, Any] = field(default_factory=dict)


def _scan(folder: str | os.PathLike[str]) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    from ...tasks.evaluation import check_image_folder, scan_image_folder

    root = check_image_folder(folder)
    count = sum(1 for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    # As many classes as folders: sorted folder order is the label (rule 3 of the scan).
    found = scan_image_folder(root, num_classes=max(count, 1))
    return found.classes, list(found.samples)


def _same_folder(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return Path(os.fspath(a)).resolve() == Path(os.fspath(b)).resolve()
    except OSError:
        return False


def _decode(
    samples: list[tuple[str, int]], transform: Any, corrupt: str
) -> tuple[list[torch.Tensor], list[int], list[tuple[str, str]]]:
    images: list[torch.Tensor] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    for path, label in samples:
        try:
            images.append(transform(path))
        except (InvalidImageError, OSError) as error:
            skipped.append((path, str(error) or type(error).__name__))
            continue
        labels.append(label)
    report_unreadable(skipped, corrupt, logger)
    return images, labels, skipped


def _limit(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of at most ``per_class`` images of every class, drawn with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    keep: list[torch.Tensor] = []
    for label in torch.unique(labels).tolist():
        items = torch.nonzero(labels == label).flatten()
        keep.append(items[torch.randperm(len(items), generator=generator)][:per_class])
    return torch.sort(torch.cat(keep)).values


def load_image_folder_proxy(
    data: str | os.PathLike[str],
    *,
    val: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    image_size: int = 32,
    images_per_class: int | None = None,
    seed: int = 0,
    corrupt: str = "skip",
) -> ImageFolderTask:
    """Decode a class-per-folder dataset into an in-memory proxy task.

    Args:
        data: the training folder (one subfolder per class).
        val: a validation folder with the same class subfolders; ``None`` holds out a seeded
            ``val_fraction`` of every class of ``data`` instead.
        val_fraction: share of every class held out when ``val`` is ``None``, in (0, 1).
        image_size: side of the square proxy images (>= 16).
        images_per_class: train on at most this many images per class (seeded); ``None``: all.
        seed: seeds the split and the limit.
        corrupt: ``"skip"`` (log each unreadable image with its path and leave it out) or
            ``"error"`` (refuse with the list).

    Returns:
        An :class:`ImageFolderTask`.

    Raises:
        InvalidArgumentError: a folder is missing, has no class subfolders or images, the
            validation classes differ from the training classes, a class has too few readable
            images to split, or an argument is out of range.
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
    check_int("image_size", image_size, minimum=16)
    if images_per_class is not None:
        check_int("images_per_class", images_per_class, minimum=1)
    check_int("seed", seed, minimum=0)
    check_choice("corrupt", corrupt, CORRUPT_POLICIES)
    from ...data.transforms import make_transform

    transform = make_transform(None, input_size=image_size)
    classes, samples = _scan(data)
    images, labels, skipped = _decode(samples, transform, corrupt)
    label_tensor = torch.tensor(labels, dtype=torch.int64)
    empty = [classes[i] for i in range(len(classes)) if not bool((label_tensor == i).any())]
    if empty:
        raise InvalidArgumentError(
            f"The classes {', '.join(map(repr, empty[:5]))} of {str(data)!r} have no readable"
            " images; every class folder needs some."
        )
    if len(classes) < 2:
        # One class: every network scores 100 % and the search learns nothing from accuracy.
        raise InvalidArgumentError(
            f"{str(data)!r} holds {len(classes)} class folder ({', '.join(map(repr, classes))});"
            " a search needs at least 2 classes (one subfolder of images per class)."
        )
    stacked = torch.stack(images)
    if val is None:
        small = [classes[i] for i in range(len(classes)) if int((label_tensor == i).sum()) < 2]
        if small:
            raise InvalidArgumentError(
                f"The classes {', '.join(map(repr, small[:5]))} of {str(data)!r} have fewer than"
                " 2 readable images, too few to hold one out for validation: every class needs at"
                " least 2 (1 to train on, 1 to validate on), or pass a --val folder (then 1 per"
                " class is enough)."
            )
        train_index, val_index = _stratified_split(label_tensor, val_fraction, seed)
        val_pair = (stacked[val_index], label_tensor[val_index])
        train_pair = (stacked[train_index], label_tensor[train_index])
    else:
        val_classes, val_samples = _scan(val)
        if val_classes != classes:
            missing = sorted(set(classes) - set(val_classes))
            extra = sorted(set(val_classes) - set(classes))
            raise InvalidArgumentError(
                f"The validation folder {str(val)!r} must have the same class subfolders as"
                f" {str(data)!r}; missing {missing[:5]}, unexpected {extra[:5]}."
            )
        if _same_folder(data, val):
            logger.warning(
                "the validation folder is the training folder %s: the proxy accuracy then"
                " measures memorisation, not generalisation; leave out --val to hold out a share"
                " of every class instead",
                data,
            )
        val_images, val_labels, val_skipped = _decode(val_samples, transform, corrupt)
        found = set(val_labels)
        bare = [name for i, name in enumerate(classes) if i not in found]
        if bare:
            raise InvalidArgumentError(
                f"The validation classes {', '.join(map(repr, bare[:5]))} of {str(val)!r} have no"
                " readable images; every validation class folder needs at least 1."
            )
        skipped += val_skipped
        val_pair = (torch.stack(val_images), torch.tensor(val_labels, dtype=torch.int64))
        train_pair = (stacked, label_tensor)
    if images_per_class is not None:
        keep = _limit(train_pair[1], images_per_class, seed)
        train_pair = (train_pair[0][keep], train_pair[1][keep])
    source = {
        "data": str(Path(os.fspath(data)).resolve()),
        "val": None if val is None else str(Path(os.fspath(val)).resolve()),
        "val_fraction": None if val is not None else val_fraction,
        "image_size": image_size,
        "images_per_class": images_per_class,
        "split_seed": seed,
        "corrupt": corrupt,
        "classes": list(classes),
        "train_images": int(train_pair[0].shape[0]),
        "val_images": int(val_pair[0].shape[0]),
        "skipped_images": len(skipped),
    }
    return ImageFolderTask(
        train_pair, val_pair, classes, tuple(skipped), transform.preprocessing, source
    )
