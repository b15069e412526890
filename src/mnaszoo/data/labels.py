"""Class names: the ImageNet-1k labels shipped with mnaszoo, and user class files."""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

from .._validate import check_labels
from ..errors import InvalidArgumentError

__all__ = ["check_labels", "imagenet_labels", "imagenet_synsets", "labels_for", "read_class_file"]


@functools.cache
def _data_lines(name: str) -> tuple[str, ...]:
    text = resources.files("mnaszoo").joinpath("data").joinpath(name).read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in class-index order (torchvision's names)."""
    return _data_lines("imagenet_classes.txt")


def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 WordNet ids (``n01440764``, ...) in class-index order (sorted)."""
    return _data_lines("imagenet_synsets.txt")


LABEL_SETS = {"imagenet-1k": imagenet_labels}


def read_class_file(
    path: str | os.PathLike[str], num_classes: int | None = None
) -> tuple[str, ...]:
    """Read one label per line (blank lines ignored), checking the count against ``num_classes``.

    Raises:
        InvalidArgumentError: the file cannot be read, is empty, or has the wrong count.
    """
    try:
        text = Path(path).read_text("utf-8-sig")  # a BOM (Windows editors) is not a label
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidArgumentError(f"Cannot read the class file {path}: {error}") from error
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not labels:
        raise InvalidArgumentError(f"The class file {path} holds no labels (one per line).")
    if num_classes is not None and len(labels) != num_classes:
        raise InvalidArgumentError(
            f"The class file {path} has {len(labels)} labels but the model has {num_classes}"
            " classes: give one label per output, in class-index order."
        )
    return labels


def labels_for(model: object) -> tuple[str, ...]:
    """The class names of a model: its weights' labels; else the ImageNet names for a
    1000-class model (a timm or torchvision checkpoint loaded with ``checkpoint=``); else
    ``class_0 ... class_{n-1}``."""
    num_classes = int(getattr(model, "num_classes", 0))
    info = getattr(model, "weights_info", None)
    labels = getattr(info, "labels", None)
    if isinstance(labels, str) and labels in LABEL_SETS:
        names = LABEL_SETS[labels]()
    elif isinstance(labels, tuple) and labels:
        names = labels
    elif num_classes == len(imagenet_labels()):
        names = imagenet_labels()
    else:
        names = ()
    if len(names) != num_classes:
        return tuple(f"class_{i}" for i in range(num_classes))
    return names
