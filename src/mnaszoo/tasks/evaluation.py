"""``mnaszoo.evaluate``: top-1 / top-5 accuracy of a model on a folder of labelled images.

The folder is laid out like torchvision's ``ImageFolder`` (no torchvision needed): one
subfolder per class, images inside (found by :func:`mnaszoo.data.scan.scan_class_folders`:
searched recursively, ``.jpg .jpeg .png .bmp .webp .tif .tiff`` in any case, names starting with
``.`` ignored, each folder read once even through symlinks). Class folders are taken in sorted
order, images in sorted path order. Folder names are mapped to the model's class indices **by
name first**:

1. ``"synsets"``: every folder is an ImageNet synset (``n01440764``, ...) and the model has 1000
   classes: the synset's index (the layout of ImageNet's validation set);
2. ``"labels"``: every folder is one of the model's class names (its weights' labels): that
   class's index;
3. ``"order"``: NO folder name is a synset or a class name of the model, and there are exactly
   as many folders as the model has classes: sorted folder order is the class index (as
   ``ImageFolder`` assigns them during training).

When some folder names match the model's classes and others do not, nothing is guessed: that
is an :class:`~mnaszoo.errors.InvalidArgumentError` naming the folders that match no class
(rename them, or remove them). Anything else that fits no rule is an error that explains these
rules. The rule used is in the result (:attr:`EvaluationResult.mapping`) and in the output of
``mnaszoo evaluate``.
Images are preprocessed with the weights' own evaluation transform
(:func:`mnaszoo.data.transforms.make_transform`), as the publishers measured their results.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._validate import check_bool, check_int
from ..data.labels import imagenet_labels, imagenet_synsets, labels_for
from ..data.scan import IMAGE_EXTENSIONS, scan_class_folders
from ..data.transforms import ImageTransform, make_transform
from ..errors import ArgumentTypeError, InvalidArgumentError, InvalidImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAPPING_RULES",
    "ClassResult",
    "EvaluationResult",
    "ImageFolderSamples",
    "check_image_folder",
    "evaluate",
    "scan_image_folder",
]

logger = logging.getLogger(__name__)


_LAYOUTS = (
    "Accepted layouts: (1) ImageNet synset folders (n01440764, ...) for a 1000-class model;"
    " (2) folders named exactly like the model's class names; (3) folders named after none of"
    " them, as many as the model has classes, whose sorted order is the class index."
)

MAPPING_RULES = {
    "synsets": "by name (ImageNet synsets)",
    "labels": "by name (the model's class names)",
    "order": "by sorted folder order (no folder is named after a class)",
}
"""How :attr:`EvaluationResult.mapping` reads in words."""


@dataclass(frozen=True)
class ImageFolderSamples:
    """The images of a class-per-folder dataset and the class index of each."""

    root: Path
    classes: tuple[str, ...]
    """Class folder names, sorted."""
    class_indices: tuple[int, ...]
    """The model's class index of each folder in :attr:`classes`."""
    mapping: str
    """Which rule mapped folders to classes: ``"synsets"``, ``"labels"`` or ``"order"``."""
    samples: tuple[tuple[str, int], ...]
    """``(path, position in classes)`` of every image, in sorted order."""


@dataclass(frozen=True)
class ClassResult:
    """The results of one class folder."""

    name: str
    """The folder name."""
    index: int
    """The model's class index."""
    label: str
    """The model's name for that class."""
    images: int
    top1_correct: int
    top5_correct: int
    predicted: dict[int, int] = field(default_factory=dict)
    """How often each class index was the first prediction for this folder's images (its row of
    the confusion matrix)."""

    @property
    def top1(self) -> float:
        """Top-1 accuracy of this class, in percent (0 for a class with no images)."""
        return 100.0 * self.top1_correct / self.images if self.images else 0.0

    @property
    def top5(self) -> float:
        """Top-5 accuracy of this class, in percent (0 for a class with no images)."""
        return 100.0 * self.top5_correct / self.images if self.images else 0.0


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` measured.

    ``top1`` and ``top5`` are percentages over :attr:`num_images`. With fewer than five classes
    ``top5`` counts the top ``topk`` (= the number of classes) predictions.

    Attributes:
        model: the model's name (its spec name for a model object).
        weights: the weights id, or ``None`` for a model without published weights.
        folder: the evaluated folder.
        top1: top-1 accuracy, in percent.
        top5: top-5 (or top-``topk``) accuracy, in percent.
        top1_correct: images whose first prediction is right.
        top5_correct: images with the right class among the first ``topk`` predictions.
        num_images: images evaluated.
        num_classes_seen: class folders with at least one evaluated image.
        topk: the k of ``top5`` (5, or the number of classes if fewer).
        mapping: how folders were mapped to classes: ``"synsets"``, ``"labels"`` or ``"order"``
            (see the module docstring; :data:`MAPPING_RULES` in words).
        seconds: wall-clock time of the evaluation.
        images_per_second: throughput.
        device: where the model ran.
        batch_size: images per forward pass.
        preprocessing: the evaluation transform's recipe
            (:meth:`~mnaszoo.weights.manifest.Preprocessing.to_dict` and the resolved ``resize``).
        per_class: one :class:`ClassResult` per class folder.

    Example:
        A freshly initialised 2-class model on a folder of 2 classes, 2 images each:

        >>> import tempfile, mnaszoo
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("cat", "dog"):
        ...     (root / name).mkdir()
        ...     for i in range(2):
        ...         Image.new("RGB", (32, 32), (100 * i, 50, 0)).save(root / name / f"{i}.png")
        >>> model = mnaszoo.create("mnasnet_small", num_classes=2)
        >>> result = mnaszoo.evaluate(model, root, progress=False)
        >>> result.num_images, result.num_classes_seen, result.topk, result.mapping
        (4, 2, 2, 'order')
        >>> [row.name for row in result.per_class], 0 <= result.top1 <= 100
        (['cat', 'dog'], True)
    """

    model: str
    weights: str | None
    folder: str
    top1: float
    top5: float
    top1_correct: int
    top5_correct: int
    num_images: int
    num_classes_seen: int
    topk: int
    mapping: str
    seconds: float
    images_per_second: float
    device: str
    batch_size: int
    preprocessing: dict[str, Any]
    per_class: tuple[ClassResult, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (``per_class`` as a list of dicts)."""
        data = asdict(self)
        data["per_class"] = [
            {**asdict(c), "predicted": {str(k): v for k, v in sorted(c.predicted.items())},
             "top1": c.top1, "top5": c.top5}
            for c in self.per_class
        ]  # fmt: skip
        data["confusion_matrix"] = self.confusion_matrix()
        return data

    def confusion_matrix(self) -> dict[str, Any]:
        """Counts of (true folder, first prediction) over the evaluated folders: ``rows`` and
        ``columns`` name the folders, ``counts[i][j]`` is how many images of folder ``i`` the
        model put first in folder ``j``'s class, and ``other[i]`` how many it put in a class
        of no evaluated folder."""
        columns = {c.index: j for j, c in enumerate(self.per_class)}
        counts = [[0] * len(self.per_class) for _ in self.per_class]
        other = [0] * len(self.per_class)
        for i, row in enumerate(self.per_class):
            for index, count in row.predicted.items():
                if index in columns:
                    counts[i][columns[index]] += count
                else:
                    other[i] += count
        names = [c.name for c in self.per_class]
        return {"rows": names, "columns": names, "counts": counts, "other": other}

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """One line: accuracies, images, classes and speed."""
        top5 = "top-5" if self.topk == 5 else f"top-{self.topk}"
        rule = MAPPING_RULES.get(self.mapping, self.mapping)
        return (
            f"{self.model} ({self.weights or 'no published weights'}) on {self.folder}:"
            f" top-1 {self.top1:.2f}%  {top5} {self.top5:.2f}%  ({self.num_images} images,"
            f" {self.num_classes_seen} classes matched {rule},"
            f" {self.seconds:.1f} s,"
            f" {self.images_per_second:.1f} images/s on {self.device})"
        )


def _match_labels(classes: Sequence[str], labels: Sequence[str]) -> tuple[int, ...]:
    indices: list[int] = []
    for name in classes:
        matches = [i for i, label in enumerate(labels) if label == name]
        if len(matches) > 1:
            raise InvalidArgumentError(
                f"The class folder {name!r} matches the model's classes {matches}, whose"
                " names are equal; name the folders by ImageNet synset (n01440764, ...)"
                " instead."
            )
        indices.append(matches[0])
    return tuple(indices)


def _map_classes(
    classes: Sequence[str], num_classes: int, labels: Sequence[str]
) -> tuple[tuple[int, ...], str]:
    """The model's class index of every folder, and the rule used (module docstring)."""
    synsets = imagenet_synsets() if num_classes == len(imagenet_synsets()) else ()
    known = set(labels) | set(synsets)
    matched = [name for name in classes if name in known]
    if synsets and all(name in synsets for name in classes):
        position = {synset: index for index, synset in enumerate(synsets)}
        return tuple(position[name] for name in classes), "synsets"
    if labels and all(name in labels for name in classes):
        return _match_labels(classes, labels), "labels"
    if matched:
        # Some names are the model's classes: sorted order would score them as other classes.
        unmatched = [name for name in classes if name not in known]
        shown = ", ".join(map(repr, unmatched[:5])) + (" ..." if len(unmatched) > 5 else "")
        example = ", ".join(map(repr, matched[:3]))
        raise InvalidArgumentError(
            f"{len(matched)} of the {len(classes)} class folders are named after the model's"
            f" classes (e.g. {example}) but {len(unmatched)} are not: {shown}. Folders are"
            " matched to classes by name, so every folder must be named after one of the"
            " model's classes (or ImageNet synset), or none (then sorted folder order is the"
            " class index). Rename or remove those folders."
        )
    if len(classes) == num_classes:
        logger.info(
            "None of the %d class folders is an ImageNet synset or one of the model's class"
            " names: taking their sorted order as the class index (%r is class 0).",
            len(classes),
            classes[0],
        )
        return tuple(range(num_classes)), "order"
    raise InvalidArgumentError(
        f"Cannot map the {len(classes)} class folders (e.g."
        f" {', '.join(map(repr, classes[:3]))}) to the model's {num_classes} classes: no"
        f" folder is named after one of its classes, and the counts differ. {_LAYOUTS}"
    )


def check_image_folder(folder: object) -> Path:
    """``folder`` as a Path if it is an existing directory; a mnaszoo error otherwise."""
    if not isinstance(folder, (str, os.PathLike)):
        raise ArgumentTypeError(f"folder must be a path, got {type(folder).__name__}.")
    root = Path(folder)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise InvalidArgumentError(
            f"The image folder {str(root)!r} {what}; give a folder with one subfolder per class."
        )
    return root


def scan_image_folder(
    folder: str | os.PathLike[str], *, num_classes: int, labels: Sequence[str] = ()
) -> ImageFolderSamples:
    """Find the class folders and images of ``folder`` and map the folders to class indices.

    Args:
        folder: the root holding one subfolder per class.
        num_classes: the model's number of outputs.
        labels: the model's class names (``labels_for(model)``).

    Raises:
        InvalidArgumentError: ``folder`` is not a directory, has no class subfolders or no
            images, or its folders cannot be mapped to the model's classes (see the module
            docstring).
    """
    root = check_image_folder(folder)
    found = scan_class_folders(root)
    classes = found.classes
    if not classes:
        detail = f" (it holds {found.loose} images directly)" if found.loose else ""
        raise InvalidArgumentError(
            f"The image folder {str(root)!r} has no class subfolders{detail}: put the images of"
            " each class in a subfolder named after the class."
        )
    class_indices, mapping = _map_classes(classes, num_classes, tuple(labels))
    samples: list[tuple[str, int]] = []
    empty: list[str] = []
    for position, (name, images) in enumerate(zip(classes, found.files, strict=True)):
        if not images:
            empty.append(name)
        samples.extend((path, position) for path in images)
    if not samples:
        raise InvalidArgumentError(
            f"The image folder {str(root)!r} has {len(classes)} class folders but no images"
            f" (looked for {' '.join(IMAGE_EXTENSIONS)}, any case)."
        )
    if empty:
        logger.info("%d class folders hold no images: %s", len(empty), ", ".join(empty[:5]))
    return ImageFolderSamples(
        root=root,
        classes=classes,
        class_indices=class_indices,
        mapping=mapping,
        samples=tuple(samples),
    )


def _take(samples: Sequence[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """At most ``limit`` samples, round-robin over classes, in their original order."""
    rank: dict[int, int] = {}
    keyed: list[tuple[int, int, int]] = []
    for order, (_, position) in enumerate(samples):
        rank[position] = rank.get(position, -1) + 1
        keyed.append((rank[position], position, order))
    chosen = sorted(order for _, _, order in sorted(keyed)[:limit])
    return [samples[order] for order in chosen]


class _Images(Dataset[tuple[torch.Tensor, int, str]]):
    """``(image tensor, class position, error message)``; a bad image yields its error, so that
    the main process raises it intact (the DataLoader would rewrap a worker's exception)."""

    def __init__(self, samples: Sequence[tuple[str, int]], transform: ImageTransform) -> None:
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        path, position = self.samples[index]
        try:
            return self.transform(path), position, ""
        except InvalidImageError as error:
            size = self.transform.input_size
            return torch.zeros(3, size, size), position, str(error) or repr(path)


def _collate(
    items: Sequence[tuple[torch.Tensor, int, str]],
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    images = torch.stack([item[0] for item in items])
    positions = torch.tensor([item[1] for item in items], dtype=torch.long)
    return images, positions, [item[2] for item in items]


def _progress_bar(total: int, enabled: bool) -> Any:
    # huggingface_hub's tqdm also honours HF_HUB_DISABLE_PROGRESS_BARS.
    bars = importlib.import_module("huggingface_hub.utils.tqdm")
    return bars.tqdm(
        total=total,
        unit="img",
        desc="evaluate",
        disable=not (enabled and sys.stderr.isatty()),
        leave=False,
    )


def evaluate(
    model: str | nn.Module,
    folder: str | os.PathLike[str],
    *,
    weights: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    input_size: int | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    limit: int | None = None,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    ray: str | None = None,
) -> EvaluationResult:
    """Measure top-1 and top-5 accuracy on a class-per-folder image dataset.

    Args:
        model: a registered name (its published weights, see
            :func:`mnaszoo.tasks.prediction.load_model`) or a classification model (e.g. one made
            by :func:`mnaszoo.create`).
        folder: one subfolder per class (see the module docstring for how folders map to
            classes).
        weights: a weights tag or id for a model name (default: its default weights).
        checkpoint: a local weights file or ``save_pretrained`` directory instead.
        input_size: evaluate at another resolution (the resize scales with it).
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes decoding images (0: in this process); with
            ``ray``, the number of model actors (at least 1).
        device: default CUDA if available, else CPU (for a model object: where it is).
        limit: evaluate at most this many images, taken round-robin over the classes (the
            first image of every class, then the second, ...) so a subset covers all classes.
        progress: show a progress bar (only when stderr is a terminal).
        cache_dir: where downloads are cached, as in :func:`mnaszoo.create`.
        local_files_only: never use the network, as in :func:`mnaszoo.create`.
        ray: run on Ray (``pip install 'mnaszoo[distributed,batch]'``): ``"local"`` starts a
            local cluster, ``"auto"`` or ``"HOST:PORT"`` joins one. Images are decoded by Ray
            tasks and scored by ``num_workers`` model actors on their CPUs, exactly as
            ``mnaszoo predict --ray`` does; the counts equal a local run's.

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        InvalidArgumentError: the folder is missing, empty or laid out in a way that cannot be
            mapped to the model's classes, or an argument is out of range.
        ArgumentTypeError: an argument has the wrong type.
        InvalidImageError: an image cannot be read (the message names the file); nothing is
            skipped silently.
        WeightsError: the weights cannot be obtained (see :func:`mnaszoo.create`).

    Example:
        Published weights on ImageNet's validation set, sorted into synset folders:

        >>> mnaszoo.evaluate("mnasnet_b1", "imagenet/val", weights="tv_in1k")  # doctest: +SKIP

        Any model on any class-per-folder dataset, here two images of two classes:

        >>> import pathlib, tempfile, mnaszoo
        >>> from PIL import Image
        >>> folder = tempfile.TemporaryDirectory()
        >>> for name in ("cat", "dog"):
        ...     (pathlib.Path(folder.name) / name).mkdir()
        ...     Image.new("RGB", (64, 64)).save(pathlib.Path(folder.name, name, "1.png"))
        >>> model = mnaszoo.create("mnasnet_small", num_classes=2)
        >>> result = mnaszoo.evaluate(model, folder.name, device="cpu", progress=False)
        >>> result.num_images, result.mapping
        (2, 'order')
        >>> folder.cleanup()
    """
    from .prediction import borrowed, resolve_model

    check_int("batch_size", batch_size, minimum=1)
    check_int("num_workers", num_workers, minimum=0)
    if limit is not None:
        check_int("limit", limit, minimum=1)
    check_bool("progress", progress)
    if ray is not None:
        if not isinstance(ray, str) or not ray:
            raise InvalidArgumentError(
                "ray must be 'local', 'auto' or a cluster's 'HOST:PORT', or None to run here."
            )
        if device is not None and torch.device(device).type != "cpu":
            raise InvalidArgumentError(
                f"With ray=, the model runs on the Ray workers' CPUs; device={device!r} cannot"
                " apply. Leave out device (or pass 'cpu'), or leave out ray to use the GPU."
            )
        device = "cpu"
    check_image_folder(folder)  # before loading any model
    if isinstance(model, nn.Module):
        if weights is not None or checkpoint is not None:
            raise InvalidArgumentError(
                "weights= and checkpoint= apply to a model name, not a model object."
            )
        # The caller's model is given back as it came: every module's mode, and its device.
        with borrowed(model, device) as net:
            return _evaluate(
                net,
                _model_name(net),
                folder,
                _Run(input_size, batch_size, num_workers, limit, progress, ray),
            )
    net = resolve_model(
        model,
        weights=weights,
        checkpoint=checkpoint,
        device=device,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
    )
    # A checkpoint carries its own architecture: report that, not the name it was loaded under.
    name = model if checkpoint is None else _model_name(net)
    return _evaluate(
        net, name, folder, _Run(input_size, batch_size, num_workers, limit, progress, ray)
    )


def _model_name(net: nn.Module) -> str:
    """The registry name of the model's architecture (spec and width), else its spec's name."""
    from ..models.registry import MODELS

    config = getattr(net, "config", None)
    spec = getattr(config, "spec", None)
    if spec is None:
        return type(net).__name__
    width = getattr(config, "width_mult", 1.0)
    for entry in MODELS.values():
        if entry.spec == spec and entry.width_mult == width:
            return entry.name
    name = str(getattr(spec, "name", type(net).__name__))
    return name if width == 1.0 else f"{name} (width x{width:g})"


@dataclass(frozen=True)
class _Run:
    """How an evaluation runs (the options of :func:`evaluate` beyond model and folder)."""

    input_size: int | None
    batch_size: int
    num_workers: int
    limit: int | None
    progress: bool
    ray: str | None


class _Tally:
    """Per-class counts of images, top-1 and top-k hits, and first predictions."""

    def __init__(self, class_indices: Sequence[int]) -> None:
        self.targets = list(class_indices)
        self.images = [0] * len(self.targets)
        self.top1 = [0] * len(self.targets)
        self.topk = [0] * len(self.targets)
        self.first: list[dict[int, int]] = [{} for _ in self.targets]

    def add(self, positions: Sequence[int], predicted: Sequence[Sequence[int]]) -> None:
        """Count images of class ``positions`` whose top-k predictions are ``predicted``."""
        for position, top in zip(positions, predicted, strict=True):
            target = self.targets[position]
            counts = self.first[position]
            counts[top[0]] = counts.get(top[0], 0) + 1
            self.images[position] += 1
            self.top1[position] += top[0] == target
            self.topk[position] += target in top


def _local_batches(
    net: nn.Module,
    samples: Sequence[tuple[str, int]],
    transform: ImageTransform,
    run: _Run,
    topk: int,
) -> Iterator[tuple[list[int], list[list[int]]]]:
    """``(class positions, top-k predictions)`` per batch, decoded by a DataLoader here and
    scored as batch prediction scores them (:class:`~mnaszoo.tasks.scoring.Scorer`: on the CPU, a
    MnasNet runs with BatchNorm folded, in channels-last), so a Ray run counts the same."""
    from .scoring import Scorer

    scorer = Scorer(net, topk=topk, input_size=run.input_size, backend="torch")
    loader = DataLoader(
        _Images(samples, transform),
        batch_size=run.batch_size,
        shuffle=False,
        num_workers=run.num_workers,
        collate_fn=_collate,
    )
    for batch, positions, errors in loader:
        failed = next((message for message in errors if message), None)
        if failed is not None:
            raise InvalidImageError(failed)
        _, predicted, _ = scorer(batch)
        yield positions.tolist(), predicted


def _ray_batches(
    net: nn.Module, samples: Sequence[tuple[str, int]], run: _Run, address: str, topk: int
) -> Iterator[tuple[list[int], list[list[int]]]]:
    """The same from the Ray cluster at ``address``: decoded by Ray tasks, scored by model
    actors."""
    from .ray_batch import ray_topk

    for rows, predicted in ray_topk(
        [path for path, _ in samples],
        net,
        address,
        workers=max(1, run.num_workers),
        batch_size=run.batch_size,
        topk=topk,
        input_size=run.input_size,
    ):
        yield [samples[row][1] for row in rows], predicted


def _evaluate(
    net: nn.Module, name: str, folder: str | os.PathLike[str], run: _Run
) -> EvaluationResult:
    """Evaluate an eval-mode model (see :func:`evaluate`)."""
    num_classes = int(getattr(net, "num_classes", 0))
    if num_classes < 1:
        raise InvalidArgumentError(
            "The model has no classifier (num_classes=0); evaluate needs class scores."
        )
    info = getattr(net, "weights_info", None)
    weights_id = getattr(info, "id", None)
    labels = labels_for(net)
    data = scan_image_folder(folder, num_classes=num_classes, labels=labels)
    if data.mapping == "synsets":
        labels = imagenet_labels()
    samples = list(data.samples) if run.limit is None else _take(data.samples, run.limit)
    transform = make_transform(net, input_size=run.input_size)
    topk = min(5, num_classes)
    tally = _Tally(data.class_indices)
    param = next(net.parameters(), None)
    run_device = param.device if param is not None else torch.device("cpu")
    recipe = transform.preprocessing
    logger.info(
        "Evaluating %s on %d images of %d classes in %s (resize %d %s, crop %d).",
        weights_id or f"{name} (no published weights)",
        len(samples),
        len({position for _, position in samples}),
        data.root,
        recipe.resize,
        recipe.interpolation,
        recipe.input_size,
    )
    batches = (
        _local_batches(net, samples, transform, run, topk)
        if run.ray is None
        else _ray_batches(net, samples, run, run.ray, topk)
    )
    start = time.perf_counter()
    with _progress_bar(len(samples), run.progress) as bar:
        for positions, predicted in batches:
            tally.add(positions, predicted)
            bar.update(len(positions))
    seconds = time.perf_counter() - start
    total = sum(tally.images)
    per_class = tuple(
        ClassResult(folder_name, index, labels[index], count, one, five, predicted)
        for folder_name, index, count, one, five, predicted in zip(
            data.classes,
            data.class_indices,
            tally.images,
            tally.top1,
            tally.topk,
            tally.first,
            strict=True,
        )
    )
    return EvaluationResult(
        model=name,
        weights=weights_id,
        folder=str(data.root),
        top1=100.0 * sum(tally.top1) / total,
        top5=100.0 * sum(tally.topk) / total,
        top1_correct=sum(tally.top1),
        top5_correct=sum(tally.topk),
        num_images=total,
        num_classes_seen=sum(1 for count in tally.images if count),
        topk=topk,
        mapping=data.mapping,
        seconds=seconds,
        images_per_second=total / seconds if seconds > 0 else 0.0,
        device=str(run_device)
        if run.ray is None
        else f"ray ({max(1, run.num_workers)} actors, cpu)",
        batch_size=run.batch_size,
        preprocessing={**recipe.to_dict(), "resize": recipe.resize},
        per_class=per_class,
    )
