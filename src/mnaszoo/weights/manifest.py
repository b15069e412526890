"""The weights manifest: every published checkpoint mnaszoo can load, with its provenance.

The manifest ships inside the package (``weights_manifest.json``) and is validated when first
read; ``MNASZOO_MANIFEST=/path/to/manifest.json`` replaces it (a private mirror, a test server).
Each record says where the file is (a Hub repo pinned to a commit, or a URL), how to verify it
(sha256), how to convert it (the publisher's layout), and how to use it (labels, preprocessing).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from .._validate import MAX_INPUT_SIZE
from ..errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    ManifestError,
    UnknownWeightsError,
    close_matches_hint,
)
from ._files import REVISION, SHA256, SHA256_PREFIX

__all__ = [
    "DEFAULT_PREPROCESSING",
    "HubSource",
    "LocalSource",
    "Manifest",
    "Metric",
    "Preprocessing",
    "UrlSource",
    "WeightsRecord",
    "get_weights",
    "list_weights",
    "load_manifest",
]

MANIFEST_ENV = "MNASZOO_MANIFEST"
Layout = Literal["mnaszoo", "timm", "torchvision"]
"""The state-dict layouts mnaszoo converts from: its own, timm's and torchvision's."""
LAYOUTS: tuple[Layout, ...] = get_args(Layout)
Interpolation = Literal["bilinear", "bicubic"]
_INTERPOLATIONS = ("bilinear", "bicubic")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True)
class HubSource:
    """A file in a Hugging Face Hub repository, pinned to a commit."""

    repo_id: str
    revision: str
    filename: str

    def __str__(self) -> str:
        return f"hf://{self.repo_id}@{self.revision[:8]}/{self.filename}"


@dataclass(frozen=True)
class UrlSource:
    """A file at a fixed URL (pinned by its hash)."""

    url: str

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class LocalSource:
    """A checkpoint directory written by :func:`mnaszoo.weights.hub.save_pretrained`, or a Hub
    repository holding one."""

    location: str

    def __str__(self) -> str:
        return self.location


MAX_RESIZE = 4 * MAX_INPUT_SIZE
"""The largest shorter-side resize a recipe may ask for (8192 pixels)."""


def _recipe_problem(
    size: object, mean: Sequence[object], std: Sequence[object], crop: object, resize: object
) -> str | None:
    """What is wrong with a recipe's values, or ``None``."""
    if isinstance(size, bool) or not isinstance(size, int):
        return f"'input_size' must be an int, got {size!r}."
    if not 1 <= size <= MAX_INPUT_SIZE:  # a crop; the model's own range is checked at run
        return f"'input_size' must be 1 to {MAX_INPUT_SIZE} pixels, got {size}."
    for name, values in (("mean", mean), ("std", std)):
        if len(values) != 3 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            return f"{name!r} must be 3 finite numbers (R, G, B), got {list(values)!r}."
    if min(float(v) for v in std) <= 0:  # type: ignore[arg-type]
        return (
            f"'std' must be > 0 for every channel, got {list(std)!r}: the image is divided"
            " by it, so 0 would turn every pixel into infinity. Use the standard deviation the"
            " weights were trained with (ImageNet: [0.229, 0.224, 0.225])."
        )
    if crop is not None:
        if isinstance(crop, bool) or not isinstance(crop, int | float) or not 0 < crop < 100:
            return f"'crop_pct' must be a number > 0 (timm's are about 0.875 to 1), got {crop!r}."
        resized = math.floor(size / crop)  # size is checked above
        if resize is None and not 1 <= resized <= MAX_RESIZE:
            return (
                f"'crop_pct' {crop!r} resizes to {resized} pixels, outside 1 to {MAX_RESIZE};"
                " timm's crop_pct is about 0.875 to 1."
            )
    if resize is not None:
        if isinstance(resize, bool) or not isinstance(resize, int):
            return f"'resize_size' must be an int, got {resize!r}."
        if not 1 <= resize <= MAX_RESIZE:
            return f"'resize_size' must be 1 to {MAX_RESIZE} pixels, got {resize}."
    return None


@dataclass(frozen=True)
class Preprocessing:
    """The evaluation transform a checkpoint was measured with.

    Resize the shorter side to :attr:`resize` (``resize_size``, or ``floor(input_size /
    crop_pct)`` as timm computes it), centre-crop ``input_size``, scale to [0, 1], normalise.
    :func:`mnaszoo.make_transform` builds the transform.

    Attributes:
        input_size: side of the square centre crop.
        interpolation: ``"bilinear"`` or ``"bicubic"``.
        mean: per-channel mean subtracted after scaling to [0, 1] (RGB).
        std: per-channel standard deviation divided by (RGB).
        crop_pct: the crop's share of the resize (timm's convention), or ``None``.
        resize_size: the resize itself (torchvision's convention), or ``None``; exactly one of
            ``crop_pct`` and ``resize_size`` is set.

    Example:
        >>> p = get_weights("mnasnet_a1").preprocessing
        >>> p.input_size, p.crop_pct, p.resize, p.interpolation
        (224, 0.875, 256, 'bicubic')
    """

    input_size: int
    interpolation: Interpolation
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float | None = None
    resize_size: int | None = None

    def __post_init__(self) -> None:
        problem = _recipe_problem(
            self.input_size, self.mean, self.std, self.crop_pct, self.resize_size
        )
        if problem is not None:
            raise InvalidArgumentError(f"Preprocessing: {problem}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        """Inverse of :meth:`to_dict` (validated like a manifest entry).

        Raises:
            ManifestError: a field is missing, of the wrong type or out of range (the message
                names it and the accepted range).
        """
        return _parse_preprocessing(dict(data), "preprocessing")

    @property
    def resize(self) -> int:
        """The shorter-side resize before the centre crop."""
        if self.resize_size is not None:
            return self.resize_size
        return math.floor(self.input_size / (self.crop_pct or 1.0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "input_size": self.input_size,
            "crop_pct": self.crop_pct,
            "resize_size": self.resize_size,
            "interpolation": self.interpolation,
            "mean": list(self.mean),
            "std": list(self.std),
        }


DEFAULT_PREPROCESSING = Preprocessing(
    input_size=224,
    interpolation="bicubic",
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    crop_pct=0.875,
)
"""ImageNet statistics, bicubic, crop 0.875 (timm's default pretrained config): the convention every
MnasNet checkpoint was trained with, used for models that carry no weights' recipe."""


@dataclass(frozen=True)
class Metric:
    """A reported result, with where it was reported.

    Attributes:
        dataset: e.g. ``"imagenet-1k-val"``, ``"imagenet-real"``.
        top1: top-1 accuracy in percent.
        top5: top-5 accuracy in percent, if reported.
        source: who reported it, and where (a results file, a weights' metadata).
    """

    dataset: str
    top1: float
    top5: float | None
    source: str


@dataclass(frozen=True)
class WeightsRecord:
    """One published checkpoint: an entry of ``weights_manifest.json``.

    Returned by :func:`get_weights` and set as ``model.weights_info`` on pretrained models.

    Attributes:
        id: ``<model>.<tag>``, e.g. ``"mnasnet_a1.rmsp_in1k"``.
        source: where the file is: a Hub repository pinned to a commit, a URL, or (for
            :func:`~mnaszoo.weights.hub.from_pretrained`) a local directory.
        sha256: the file's full sha256, if recorded.
        sha256_prefix: a sha256 prefix (torchvision's file names carry one), if recorded.
        size: the file's size in bytes, if recorded.
        layout: the state-dict layout: ``"mnaszoo"``, ``"timm"`` or ``"torchvision"``.
        num_classes: classifier outputs.
        labels: the name of a label set (``"imagenet-1k"``) or the class names themselves.
        preprocessing: the evaluation transform the metrics were measured with.
        metrics: the reported results, each with its dataset and source.
        license: the weights' license (SPDX-style, lowercase).
        num_params: parameters of the model the weights fit.
        publisher: who published the weights, and under which name.
        notes: anything else worth knowing (training recipe, caveats).
        sha256_source: where the full ``sha256`` is published (a page of the Hub's Git-LFS
            details, a results file), or, for an entry without one, how the file is pinned
            instead (``"trust-on-first-use: ..."``).

    Example:
        >>> record = get_weights("mnasnet_small")
        >>> record.id, record.model, record.tag, record.layout
        ('mnasnet_small.lamb_in1k', 'mnasnet_small', 'lamb_in1k', 'timm')
        >>> [m.dataset for m in record.metrics]
        ['imagenet-1k-val', 'imagenet-real', 'imagenetv2-matched-frequency']
    """

    id: str
    source: HubSource | UrlSource | LocalSource
    sha256: str | None
    sha256_prefix: str | None
    size: int | None
    layout: Layout
    num_classes: int
    labels: str | tuple[str, ...]
    preprocessing: Preprocessing
    metrics: tuple[Metric, ...]
    license: str
    num_params: int
    publisher: str
    notes: str
    sha256_source: str | None = None

    @property
    def tofu(self) -> bool:
        """Whether the file is pinned on first download (no full sha256 is published)."""
        return self.sha256 is None

    @property
    def model(self) -> str:
        """The registered model name (the part of the id before the dot)."""
        return self.id.split(".", 1)[0]

    @property
    def tag(self) -> str:
        """The weights tag (the part of the id after the dot)."""
        return self.id.split(".", 1)[1]

    @property
    def top1(self) -> float | None:
        """Reported ImageNet-1k validation top-1, if any."""
        return next((m.top1 for m in self.metrics if m.dataset == "imagenet-1k-val"), None)


@dataclass(frozen=True)
class Manifest:
    """All records, by id, and the default record of each model (its best reported top-1)."""

    path: str
    records: Mapping[str, WeightsRecord]
    defaults: Mapping[str, str]
    label_sets: Mapping[str, str]


class _Fields:
    """Typed access to one JSON object, with errors naming the entry and field."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ManifestError(f"{where} must be a JSON object, got {type(data).__name__}.")
        self.data: dict[str, Any] = data
        self.where = where
        self.used: set[str] = set()

    def get(self, name: str, types: type | tuple[type, ...], *, optional: bool = False) -> Any:
        self.used.add(name)
        if name not in self.data:
            raise ManifestError(f"{self.where} lacks the field {name!r}.")
        value = self.data[name]
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, types):
            names = (
                types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
            )
            raise ManifestError(
                f"{self.where}: field {name!r} must be {names}"
                f"{' or null' if optional else ''}, got {value!r}."
            )
        return value

    def match(
        self, name: str, pattern: re.Pattern[str], what: str, *, optional: bool = False
    ) -> Any:
        value = self.get(name, str, optional=optional)
        if value is not None and not pattern.fullmatch(value):
            raise ManifestError(f"{self.where}: field {name!r} must be {what}, got {value!r}.")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ManifestError(f"{self.where} has unknown fields {unknown}.")


def _parse_source(data: object, where: str) -> HubSource | UrlSource:
    fields = _Fields(data, f"{where}: field 'source'")
    kind = fields.get("type", str)
    if kind == "hub":
        source: HubSource | UrlSource = HubSource(
            repo_id=fields.get("repo_id", str),
            revision=fields.match("revision", REVISION, "a 40-hex commit hash"),
            filename=fields.get("filename", str),
        )
    elif kind == "url":
        url = fields.get("url", str)
        if not url.startswith(("https://", "http://")):
            raise ManifestError(f"{where}: source url must be http(s), got {url!r}.")
        source = UrlSource(url)
    else:
        raise ManifestError(f"{where}: source type must be 'hub' or 'url', got {kind!r}.")
    fields.finish()
    return source


def _parse_preprocessing(data: object, where: str) -> Preprocessing:
    fields = _Fields(data, f"{where}: field 'preprocessing'")
    mean, std = fields.get("mean", list), fields.get("std", list)
    for name, values in (("mean", mean), ("std", std)):
        if len(values) != 3 or not all(isinstance(v, (int, float)) for v in values):
            raise ManifestError(f"{fields.where}: {name!r} must be 3 numbers, got {values!r}.")
    interpolation = fields.get("interpolation", str)
    if interpolation not in _INTERPOLATIONS:
        raise ManifestError(
            f"{fields.where}: 'interpolation' must be one of {_INTERPOLATIONS}, got"
            f" {interpolation!r}."
        )
    crop_pct = fields.get("crop_pct", (int, float), optional=True)
    resize_size = fields.get("resize_size", int, optional=True)
    if (crop_pct is None) == (resize_size is None):
        raise ManifestError(f"{fields.where}: give exactly one of 'crop_pct' and 'resize_size'.")
    input_size = fields.get("input_size", int)
    fields.finish()
    # Checked here too, so that the message names the manifest entry or config file.
    problem = _recipe_problem(input_size, mean, std, crop_pct, resize_size)
    if problem is not None:
        raise ManifestError(f"{fields.where}: {problem}")
    return Preprocessing(
        input_size=input_size,
        interpolation=interpolation,
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        std=(float(std[0]), float(std[1]), float(std[2])),
        crop_pct=None if crop_pct is None else float(crop_pct),
        resize_size=resize_size,
    )


def _parse_metric(data: object, where: str) -> Metric:
    fields = _Fields(data, f"{where}: a 'metrics' item")
    metric = Metric(
        dataset=fields.get("dataset", str),
        top1=float(fields.get("top1", (int, float))),
        top5=fields.get("top5", (int, float), optional=True),
        source=fields.get("source", str),
    )
    fields.finish()
    return metric


def _parse_record(data: object, index: int, label_sets: Mapping[str, str]) -> WeightsRecord:
    from ..models.registry import MODELS  # the manifest may only name registered models

    fields = _Fields(data, f"weights entry #{index}")
    record_id = fields.get("id", str)
    where = f"weights entry {record_id!r}"
    fields.where = where
    model, _, tag = record_id.partition(".")
    if model not in MODELS or not _TAG.match(tag):
        raise ManifestError(
            f"{where}: field 'id' must be '<registered model>.<tag>' (lowercase tag), got"
            f" {record_id!r}.{close_matches_hint(model, MODELS)}"
        )
    layout = fields.get("layout", str)
    if layout not in LAYOUTS:
        raise ManifestError(f"{where}: field 'layout' must be one of {LAYOUTS}, got {layout!r}.")
    labels = fields.get("labels", str)
    if labels not in label_sets:
        raise ManifestError(f"{where}: field 'labels' names unknown label set {labels!r}.")
    record = WeightsRecord(
        id=record_id,
        source=_parse_source(fields.get("source", dict), where),
        sha256=fields.match("sha256", SHA256, "64 lowercase hex characters", optional=True),
        sha256_prefix=fields.match(
            "sha256_prefix", SHA256_PREFIX, "8-64 lowercase hex characters", optional=True
        ),
        size=fields.get("size", int, optional=True),
        layout=layout,
        num_classes=fields.get("num_classes", int),
        labels=labels,
        preprocessing=_parse_preprocessing(fields.get("preprocessing", dict), where),
        metrics=tuple(_parse_metric(m, where) for m in fields.get("metrics", list)),
        license=fields.get("license", str),
        num_params=fields.get("num_params", int),
        publisher=fields.get("publisher", str),
        notes=fields.get("notes", str),
        sha256_source=fields.get("sha256_source", str) if "sha256_source" in fields.data else None,
    )
    fields.finish()
    # Every file is pinned by a hash: a full sha256, a hash prefix, or (Hub only) the LFS sha256
    # that the Hub reports for the pinned commit.
    if (
        record.sha256 is None
        and record.sha256_prefix is None
        and isinstance(record.source, UrlSource)
    ):
        raise ManifestError(f"{where}: a URL source needs 'sha256' or 'sha256_prefix'.")
    return record


def parse_manifest(data: object, path: str) -> Manifest:
    """Validate manifest JSON data; errors name the bad entry and field."""
    top = _Fields(data, f"manifest {path}")
    version = top.get("format_version", int)
    if version != 1:
        raise ManifestError(f"manifest {path}: unsupported format_version {version}; expected 1.")
    label_sets = top.get("label_sets", dict)
    records: dict[str, WeightsRecord] = {}
    for index, item in enumerate(top.get("weights", list)):
        record = _parse_record(item, index, label_sets)
        if record.id in records:
            raise ManifestError(f"manifest {path}: duplicate weights id {record.id!r}.")
        records[record.id] = record
    top.finish()
    defaults: dict[str, str] = {}
    for record in records.values():
        current = defaults.get(record.model)
        if current is None or (record.top1 or -1.0) > (records[current].top1 or -1.0):
            defaults[record.model] = record.id
    return Manifest(path=path, records=records, defaults=defaults, label_sets=dict(label_sets))


@functools.lru_cache(maxsize=4)
def _load(path: str | None) -> Manifest:
    if path is None:
        text = (
            resources.files("mnaszoo.weights").joinpath("weights_manifest.json").read_text("utf-8")
        )
        where = "mnaszoo/weights/weights_manifest.json"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as error:
            raise ManifestError(
                f"Cannot read the manifest {path} (from ${MANIFEST_ENV}): {error}"
            ) from error
        where = path
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"manifest {where} is not valid JSON: {error}") from error
    return parse_manifest(data, where)


def load_manifest() -> Manifest:
    """The validated manifest (the packaged one, or ``$MNASZOO_MANIFEST``); cached per path."""
    return _load(os.environ.get(MANIFEST_ENV) or None)


def list_weights(pattern: str | None = None) -> list[str]:
    """Ids (``<model>.<tag>``) of the published weights, sorted, optionally filtered.

    Args:
        pattern: a shell-style pattern over the whole id, e.g. ``"mnasnet_b1*"`` or
            ``"*.tv_in1k"``; ``None`` lists every published checkpoint.

    Returns:
        The matching ids (an empty list if none match).

    Raises:
        ArgumentTypeError: ``pattern`` is not a string.
        ManifestError: the manifest (``$MNASZOO_MANIFEST``, if set) is malformed.

    Example:
        >>> list_weights("mnasnet_b1.*")
        ['mnasnet_b1.rmsp_in1k', 'mnasnet_b1.tv_in1k']
    """
    if pattern is not None and not isinstance(pattern, str):
        raise ArgumentTypeError(f"pattern must be a str or None, got {type(pattern).__name__}.")
    ids = sorted(load_manifest().records)
    return ids if pattern is None else [i for i in ids if fnmatch.fnmatchcase(i, pattern)]


def get_weights(name: str, tag: str | None = None) -> WeightsRecord:
    """The record of a checkpoint.

    Args:
        name: a weights id (``"mnasnet_a1.rmsp_in1k"``) or a model name (``"mnasnet_a1"``).
        tag: with a model name, the tag; ``None`` picks the model's default (best top-1).

    Returns:
        The :class:`WeightsRecord`; nothing is downloaded or built.

    Raises:
        UnknownWeightsError: no such weights (the message lists what exists).
        ArgumentTypeError: ``name`` or ``tag`` is not a string.

    Example:
        >>> get_weights("mnasnet_b1").id
        'mnasnet_b1.rmsp_in1k'
        >>> record = get_weights("mnasnet_b1", "tv_in1k")
        >>> record.top1, record.license, record.preprocessing.resize
        (73.456, 'bsd-3-clause', 256)
    """
    if not isinstance(name, str) or (tag is not None and not isinstance(tag, str)):
        raise ArgumentTypeError("get_weights takes a str name and an optional str tag.")
    manifest = load_manifest()
    if "." in name:
        if tag is not None:
            raise UnknownWeightsError(f"Give a tag either in {name!r} or as tag={tag!r}, not both.")
        weights_id = name
    elif tag is None:
        weights_id = manifest.defaults.get(name, name)
    else:
        weights_id = f"{name}.{tag}"
    record = manifest.records.get(weights_id)
    if record is None:
        model = weights_id.split(".", 1)[0]
        available = [i for i in manifest.records if i.startswith(f"{model}.")]
        listing = (
            f" Weights for {model!r}: {', '.join(sorted(available))}."
            if available
            else f" {model!r} has no published weights; models with weights:"
            f" {', '.join(sorted(manifest.defaults))}."
        )
        hint = close_matches_hint(weights_id, manifest.records) if available else ""
        raise UnknownWeightsError(
            f"Unknown weights {weights_id!r}.{hint}{listing} (mnaszoo.list_weights() lists them"
            " all.)"
        )
    return record
