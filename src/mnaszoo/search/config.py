"""One description of a search: five small frozen dataclasses, one per concern, and
:class:`SearchConfig` holding them.

========================  ===============================================================
:class:`DataConfig`       what the proxy trains on: an image folder, or the digits
:class:`ProxyConfig`      how a candidate is trained and scored, and ``finalize``
:class:`LatencyConfig`    how latency is predicted: backend, predictor, table, resolution
:class:`ControllerConfig` which networks are tried: strategy, budget, seed, reward, target
:class:`ExecutionConfig`  where the trials run: threads, Ray workers, progress
========================  ===============================================================

Every value is checked when the dataclass is made, so a bad setting is refused before anything
is read or measured, under the field's name. ``mnaszoo search`` maps its flags onto these fields
one to one; :func:`~mnaszoo.search.search_images` and :func:`~mnaszoo.search.search_digits` take
a ``config`` and, as a shorthand, the fields as keywords (:data:`KEYWORDS`). The output folder
records the config (``search_config.json``); resuming with another one is refused, naming the
field that differs (:func:`~mnaszoo.search.run.resume.check_resume`).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._validate import check_bool, check_choice, check_float, check_int
from ..deploy.runtimes import LATENCY_BACKENDS
from ..errors import ArgumentTypeError, InvalidArgumentError, SearchStateError
from .latency.calibration import CALIBRATION_NETWORKS

__all__ = [
    "KEYWORDS",
    "ControllerConfig",
    "DataConfig",
    "ExecutionConfig",
    "LatencyConfig",
    "ProxyConfig",
    "SearchConfig",
]

STRATEGY_NAMES: tuple[str, ...] = ("controller", "ppo", "random")
REWARD_NAMES: tuple[str, ...] = ("soft", "hard")
PREDICTOR_NAMES: tuple[str, ...] = ("layers", "context")
BACKEND_NAMES: tuple[str, ...] = LATENCY_BACKENDS
CORRUPT_NAMES: tuple[str, ...] = ("skip", "error")
CONFIG_FILE = "search_config.json"


def _optional_int(name: str, value: int | None, minimum: int) -> None:
    if value is not None:
        check_int(name, value, minimum=minimum)


@dataclass(frozen=True)
class DataConfig:
    """What the proxy trains on.

    Attributes:
        folder: training images, one subfolder per class; ``None``: scikit-learn's digits.
        val: validation images with the same class subfolders; ``None``: a seeded
            ``val_fraction`` of every class of ``folder``.
        val_fraction: share of every class held out when ``val`` is ``None``, in (0, 1).
        images_per_class: train on at most this many images per class (folders).
        corrupt: unreadable images: ``"skip"`` (each reported) or ``"error"``.
        train_limit: train on a seeded subset of this many images (digits); ``None``: 800 for
            the digits; 0: all.

    Example:
        >>> DataConfig("photos", val_fraction=0.25).val_fraction
        0.25
    """

    folder: str | None = None
    val: str | None = None
    val_fraction: float = 0.2
    images_per_class: int | None = None
    corrupt: str = "skip"
    train_limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("folder", "val"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, os.fspath(value))
        check_float(
            "val_fraction",
            self.val_fraction,
            minimum=0.0,
            maximum=1.0,
            min_inclusive=False,
            max_inclusive=False,
        )
        _optional_int("images_per_class", self.images_per_class, 1)
        check_choice("corrupt", self.corrupt, CORRUPT_NAMES)
        if self.train_limit not in (None, 0):
            check_int("train_limit", self.train_limit, minimum=2)
        if self.folder is None and (self.val is not None or self.images_per_class is not None):
            raise InvalidArgumentError("val and images_per_class need an image folder.")


@dataclass(frozen=True)
class ProxyConfig:
    """How a candidate network is trained and scored (and, afterwards, finalized).

    Attributes:
        input_size: the proxy training resolution (>= 16); ``None``: 16 for the digits, 32
            for a folder.
        epochs: training epochs per trial; ``None``: 2 for the digits, 3 for a folder.
        batch_size: images per step (>= 2).
        lr: peak learning rate.
        seed: the trainer's seed (fixed, so a network's accuracy depends on it alone).
        augment: random flips and shifts while training.
        finalize: afterwards, train this many best architectures fully (folders only).
        finalize_epochs: their epochs.

    Example:
        >>> config = ProxyConfig(epochs=1, finalize=2)
        >>> config.epochs, config.batch_size, config.finalize, config.finalize_epochs
        (1, 64, 2, 30)
        >>> SearchConfig(data=DataConfig("photos")).resolved().proxy.input_size  # a folder's
        32
    """

    input_size: int | None = None
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 1e-2
    seed: int = 0
    augment: bool = False
    finalize: int = 0
    finalize_epochs: int = 30

    def __post_init__(self) -> None:
        _optional_int("proxy input_size", self.input_size, 16)
        _optional_int("proxy epochs", self.epochs, 1)
        check_int("proxy batch_size", self.batch_size, minimum=2)
        check_float("proxy lr", self.lr, minimum=0.0, min_inclusive=False)
        check_int("proxy seed", self.seed, minimum=0)
        check_bool("augment", self.augment)
        check_int("finalize", self.finalize, minimum=0)
        check_int("finalize_epochs", self.finalize_epochs, minimum=1)


@dataclass(frozen=True)
class LatencyConfig:
    """How latency is predicted.

    Attributes:
        backend: ``"torch"``, ``"torch-optimized"`` or ``"onnxruntime"`` (a device table is
            onnxruntime on the device whatever this says).
        predictor: ``"layers"`` or ``"context"``; ``None``: layers for the digits, context for
            a folder (a table file of either kind decides by itself).
        input_size: the deployment resolution latency is predicted at (>= 16).
        table: a latency table file to use or create; ``None``: ``OUTPUT/latency_table.json``.
        calibrate: networks timed end to end to calibrate a new table (0: none).
        validate: afterwards, time this many held-out networks and report the predictor's
            error (0: none; else >= 2).

    Example:
        >>> LatencyConfig(backend="onnxruntime", input_size=160).calibrate  # the default
        32
    """

    backend: str = "torch"
    predictor: str | None = None
    input_size: int = 224
    table: str | None = None
    calibrate: int = CALIBRATION_NETWORKS
    validate: int = 0

    def __post_init__(self) -> None:
        if self.table is not None:
            object.__setattr__(self, "table", os.fspath(self.table))
        check_choice("latency backend", self.backend, BACKEND_NAMES)
        if self.predictor is not None:
            check_choice("predictor", self.predictor, PREDICTOR_NAMES)
        check_int("latency input_size", self.input_size, minimum=16)
        check_int("calibrate", self.calibrate, minimum=0)
        check_int("validate", self.validate, minimum=0)
        if self.validate == 1:
            raise InvalidArgumentError("validate must be 0 or >= 2, got 1.")


@dataclass(frozen=True)
class ControllerConfig:
    """Which networks are tried, and how they are rewarded.

    Attributes:
        strategy: ``"controller"`` (REINFORCE, as in the paper), ``"ppo"`` or ``"random"``.
        budget: total trials, those of a resumed search included.
        seed: seeds the strategy.
        reward: ``"soft"`` or ``"hard"``.
        target_ms: the latency target; ``None``: the predicted latency of the space's base
            (MobileNetV2 skeleton) architecture.
    """

    strategy: str = "controller"
    budget: int = 30
    seed: int = 0
    reward: str = "soft"
    target_ms: float | None = None

    def __post_init__(self) -> None:
        check_choice("strategy", self.strategy, STRATEGY_NAMES)
        check_int("budget", self.budget, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_choice("reward", self.reward, REWARD_NAMES)
        if self.target_ms is not None:
            check_float("target_ms", self.target_ms, minimum=0.0, min_inclusive=False)


@dataclass(frozen=True)
class ExecutionConfig:
    """Where the trials run; none of it changes the trials.

    Attributes:
        threads: CPU threads for training and latency measurement.
        workers: train this many trials at once on a local Ray cluster; ``None``: one at a
            time in this process.
        ray_address: train the trials on the running Ray cluster at this address instead.
        progress: show a progress line.

    Example:
        >>> ExecutionConfig(workers=4).threads
        1
    """

    threads: int = 1
    workers: int | None = None
    ray_address: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        check_int("threads", self.threads, minimum=1)
        _optional_int("workers", self.workers, 1)
        if self.ray_address is not None and not isinstance(self.ray_address, str):
            raise ArgumentTypeError("ray_address must be a string (HOST:PORT or 'auto').")
        if self.workers is not None and self.ray_address is not None:
            raise InvalidArgumentError("workers and ray_address exclude each other: pass one.")
        check_bool("progress", self.progress)


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "proxy": ProxyConfig,
    "latency": LatencyConfig,
    "controller": ControllerConfig,
    "execution": ExecutionConfig,
}

KEYWORDS: dict[str, tuple[str, str]] = {
    "val": ("data", "val"),
    "val_fraction": ("data", "val_fraction"),
    "images_per_class": ("data", "images_per_class"),
    "corrupt": ("data", "corrupt"),
    "proxy_train_limit": ("data", "train_limit"),
    "proxy_size": ("proxy", "input_size"),
    "proxy_epochs": ("proxy", "epochs"),
    "proxy_batch_size": ("proxy", "batch_size"),
    "proxy_lr": ("proxy", "lr"),
    "proxy_seed": ("proxy", "seed"),
    "augment": ("proxy", "augment"),
    "finalize": ("proxy", "finalize"),
    "finalize_epochs": ("proxy", "finalize_epochs"),
    "latency_backend": ("latency", "backend"),
    "predictor": ("latency", "predictor"),
    "input_size": ("latency", "input_size"),
    "image_size": ("latency", "input_size"),  # deprecated spelling of input_size
    "table_path": ("latency", "table"),
    "calibrate": ("latency", "calibrate"),
    "validate": ("latency", "validate"),
    "strategy": ("controller", "strategy"),
    "budget": ("controller", "budget"),
    "seed": ("controller", "seed"),
    "reward": ("controller", "reward"),
    "target_ms": ("controller", "target_ms"),
    "threads": ("execution", "threads"),
    "workers": ("execution", "workers"),
    "ray_address": ("execution", "ray_address"),
    "progress": ("execution", "progress"),
}
"""The keywords :func:`~mnaszoo.search.search_images` and friends accept as a shorthand: each
names one field of one section (``budget=`` is ``controller.budget``)."""


@dataclass(frozen=True)
class SearchConfig:
    """A whole search: one dataclass per concern (see the module notes).

    Example:
        >>> config = SearchConfig(controller=ControllerConfig(budget=10))
        >>> config.replace(budget=20, proxy_epochs=1).controller.budget
        20
    """

    data: DataConfig = field(default_factory=DataConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def __post_init__(self) -> None:
        for name, kind in _SECTIONS.items():
            if not isinstance(getattr(self, name), kind):
                raise ArgumentTypeError(
                    f"SearchConfig.{name} must be a {kind.__name__}, got"
                    f" {type(getattr(self, name)).__name__}."
                )
        if self.data.folder is None and (self.proxy.finalize or self.proxy.augment):
            raise InvalidArgumentError("finalize and augment need an image folder.")

    def replace(self, **keywords: Any) -> SearchConfig:
        """A copy with the :data:`KEYWORDS` given changed (``budget=20``, ``proxy_epochs=1``).

        Raises:
            ArgumentTypeError: a keyword that names no field (the message lists them).
        """
        changes: dict[str, dict[str, Any]] = {}
        for keyword, value in keywords.items():
            if keyword not in KEYWORDS:
                raise ArgumentTypeError(
                    f"Unknown search setting {keyword!r}; the settings are:"
                    f" {', '.join(sorted(KEYWORDS))}."
                )
            section, name = KEYWORDS[keyword]
            if keyword == "image_size":
                warnings.warn(
                    "image_size= is deprecated and goes in the next release; use input_size="
                    " (the same value: the resolution latency is predicted at).",
                    DeprecationWarning,
                    stacklevel=3,
                )
            if keyword == "proxy_train_limit" and value is None:
                value = 0  # the keyword's None always meant "every image"
            changes.setdefault(section, {})[name] = value
        sections = {
            name: dataclasses.replace(getattr(self, name), **changes[name]) for name in changes
        }
        return dataclasses.replace(self, **sections)

    def resolved(self) -> SearchConfig:
        """The config with every ``None`` that means "the task's default" filled in."""
        digits = self.data.folder is None
        limit = self.data.train_limit

        def absolute(path: str | None) -> str | None:
            # Recorded absolute, so that a resume from another directory compares equal.
            return None if path is None else str(Path(path).resolve())

        return dataclasses.replace(
            self,
            data=dataclasses.replace(
                self.data,
                folder=absolute(self.data.folder),
                val=absolute(self.data.val),
                train_limit=(800 if digits else 0) if limit is None else limit,
            ),
            proxy=dataclasses.replace(
                self.proxy,
                input_size=self.proxy.input_size or (16 if digits else 32),
                epochs=self.proxy.epochs or (2 if digits else 3),
            ),
            latency=dataclasses.replace(
                self.latency,
                predictor=self.latency.predictor
                or ("layers" if digits and self.latency.backend != "executorch" else "context"),
                table=absolute(self.latency.table),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (what ``search_config.json`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SearchConfig:
        """The inverse of :meth:`to_dict`.

        Raises:
            SearchStateError: not a search config, or a field out of range.
        """
        if not isinstance(data, dict):
            raise SearchStateError("A search config must be a JSON object of sections.")
        try:
            return cls(**{name: kind(**data[name]) for name, kind in _SECTIONS.items()})
        except (KeyError, TypeError, ValueError) as error:
            raise SearchStateError(f"The search config is unusable: {error}") from error

    @classmethod
    def load(cls, output: str | os.PathLike[str]) -> SearchConfig:
        """The config a search recorded in its output folder."""
        from .._io import read_json

        return cls.from_dict(read_json(Path(os.fspath(output)) / CONFIG_FILE, "the search config"))
