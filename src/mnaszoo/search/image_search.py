"""Platform-aware search on your own image folder (and, with a kit's table, your own device).

:func:`search_images` is :func:`~mnaszoo.search.experiment.search_digits` with the proxy task
decoded from a class-per-folder dataset (:func:`~mnaszoo.search.image_data.load_image_folder_proxy`)
and, by default, the in-context latency predictor (:mod:`.context_table`); ``table_path`` may name
a table measured on the target device by a latency kit (:mod:`.kit`). The output folder holds the
same files as a digits search; ``finalize`` then trains the best architectures fully
(:func:`~mnaszoo.search.finalize.finalize_search`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .._validate import check_choice, check_int
from ..errors import InvalidArgumentError
from ._session import DEFAULT_BUDGET, PREDICTORS, checked_setup, run_one, run_settings
from .context_fit import CALIBRATION_NETWORKS, DEVICE_FORMAT
from .finalize import FinalModel, finalize_search
from .image_data import load_image_folder_proxy
from .runner import STRATEGIES, SearchResult

__all__ = ["search_images"]


def _is_device_table(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8")[:4096]
    except (OSError, UnicodeDecodeError):
        return False
    return f'"format": "{DEVICE_FORMAT}"' in head


def search_images(
    output: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    val: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    images_per_class: int | None = None,
    corrupt: str = "skip",
    augment: bool = False,
    strategy: str = "controller",
    budget: int = DEFAULT_BUDGET,
    seed: int = 0,
    target_ms: float | None = None,
    reward: str = "soft",
    latency_backend: str = "torch",
    predictor: str = "context",
    image_size: int = 224,
    proxy_size: int = 32,
    proxy_epochs: int = 3,
    proxy_batch_size: int = 64,
    proxy_lr: float = 1e-2,
    proxy_seed: int = 0,
    threads: int = 1,
    table_path: str | os.PathLike[str] | None = None,
    calibrate: int = CALIBRATION_NETWORKS,
    validate: int = 0,
    finalize: int = 0,
    finalize_epochs: int = 30,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
) -> tuple[SearchResult, list[FinalModel]]:
    """Search the default space on an image folder; write the results to ``output``.

    Args:
        output: the output folder (created; rerunning the same call continues the search).
        data: the training images, one subfolder per class (as ``mnaszoo evaluate`` reads).
        val: validation images with the same class subfolders; ``None``: a seeded
            ``val_fraction`` of every class of ``data``.
        val_fraction: share of every class held out when ``val`` is ``None``.
        images_per_class: train the proxy on at most this many images per class.
        corrupt: ``"skip"`` unreadable images (each reported with its path) or ``"error"``.
        augment: random flips and shifts in proxy training.
        strategy: ``"controller"``, ``"ppo"`` or ``"random"``.
        budget: total trials.
        seed: seeds the strategy.
        target_ms: the latency target; ``None``: the predicted latency of the space's base
            architecture.
        reward: ``"soft"`` or ``"hard"``.
        latency_backend: ``"torch"``, ``"torch-optimized"`` or ``"onnxruntime"`` (ignored with a
            device table, which is onnxruntime on the device).
        predictor: ``"context"`` (in-context table, calibrated per backend) or ``"layers"``.
        image_size: the deployment resolution latency is predicted at.
        proxy_size: resolution the images are decoded at for proxy training.
        proxy_epochs: training epochs per trial.
        proxy_batch_size: images per step.
        proxy_lr: peak learning rate.
        proxy_seed: the proxy trainer's seed.
        threads: CPU threads for training and latency measurement.
        table_path: a latency table to use or create; a device table from a latency kit makes
            the search predict latency on that device.
        calibrate: calibration networks for a new table.
        validate: held-out networks to validate the predictor on afterwards (not with a
            device table, whose device is elsewhere).
        finalize: train this many best architectures fully afterwards (0: none).
        finalize_epochs: their training epochs.
        progress: show a progress line.
        workers: train this many trials at once on a local Ray cluster (``None``: one at a
            time, in this process); the trials are the same either way.
        ray_address: train the trials on the running Ray cluster at this address instead.

    Returns:
        ``(result, finals)``: the search's :class:`~mnaszoo.search.runner.SearchResult` and the
        :class:`~mnaszoo.search.finalize.FinalModel` of every finalized architecture.

    Raises:
        InvalidArgumentError: bad folders or arguments (see
            :func:`~mnaszoo.search.image_data.load_image_folder_proxy`).
        InvalidImageError: ``corrupt="error"`` and unreadable images.
        SearchStateError: ``output`` holds a search with other settings.
    """
    check_choice("strategy", strategy, sorted(STRATEGIES))
    check_choice("predictor", predictor, PREDICTORS)
    check_int("seed", seed, minimum=0)
    check_int("finalize", finalize, minimum=0)
    check_int("finalize_epochs", finalize_epochs, minimum=1)
    if validate and table_path is not None and _is_device_table(Path(os.fspath(table_path))):
        raise InvalidArgumentError(
            "validate measures networks end to end here, but the device table describes another"
            " device; validate on the device (python measure.py), or pass validate=0."
        )
    task = load_image_folder_proxy(
        data,
        val=val,
        val_fraction=val_fraction,
        image_size=proxy_size,
        images_per_class=images_per_class,
        seed=0,
        corrupt=corrupt,
    )
    folder, proxy, setup = checked_setup(
        output,
        reward=reward,
        budget=budget,
        validate=validate,
        progress=progress,
        proxy={
            "proxy_size": proxy_size,
            "proxy_epochs": proxy_epochs,
            "proxy_train_limit": None,
            "proxy_batch_size": proxy_batch_size,
            "proxy_lr": proxy_lr,
            "proxy_seed": proxy_seed,
        },
        table_path=table_path,
        target_ms=target_ms,
        latency_backend=latency_backend,
        image_size=image_size,
        threads=threads,
        calibrate=calibrate,
        predictor=predictor,
        task=task,
        proxy_augment=augment,
    )
    settings = run_settings(
        setup,
        strategy=strategy,
        seed=seed,
        reward=reward,
        latency_backend=setup.table.backend,
        image_size=image_size,
        threads=threads,
        **proxy,
    )
    result = run_one(
        folder,
        setup,
        strategy=strategy,
        budget=budget,
        seed=seed,
        reward=reward,
        progress=progress,
        validate=validate,
        settings=settings,
        placement={"workers": workers, "ray_address": ray_address},
    )
    finals = (
        finalize_search(Path(folder), task, top=finalize, epochs=finalize_epochs, augment=True)
        if finalize
        else []
    )
    return result, finals
