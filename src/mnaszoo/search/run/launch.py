"""Run the search a :class:`~mnaszoo.search.config.SearchConfig` describes: on the digits or an
image folder, then (for a folder) finalize the best architectures.

This is the one path from a config to a search; :func:`~mnaszoo.search.search_images`,
:func:`~mnaszoo.search.search_digits`, :func:`~mnaszoo.search.compare_strategies` and ``mnaszoo
search`` all come through it, so a setting cannot be lost on one of the ways in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...errors import InvalidArgumentError
from ..config import SearchConfig
from ..latency.calibration import DEVICE_FORMAT
from ..proxy.finalize import FinalModel, finalize_search
from ..proxy.image_data import ImageFolderTask, load_image_folder_proxy
from .distributed import check_placement
from .resume import check_resume, record_config
from .runner import SearchResult
from .session import Setup, checked_setup, run_one, run_settings

__all__ = ["launch", "open_setup", "run_configured_one"]


def _is_device_table(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8")[:4096]
    except (OSError, UnicodeDecodeError):
        return False
    return f'"format": "{DEVICE_FORMAT}"' in head


def _proxy_settings(config: SearchConfig) -> dict[str, Any]:
    proxy, limit = config.proxy, config.data.train_limit
    return {
        "proxy_size": proxy.input_size,
        "proxy_epochs": proxy.epochs,
        "proxy_train_limit": limit or None,
        "proxy_batch_size": proxy.batch_size,
        "proxy_lr": proxy.lr,
        "proxy_seed": proxy.seed,
    }


def open_setup(
    output: str | os.PathLike[str], config: SearchConfig
) -> tuple[Path, Setup, ImageFolderTask | None]:
    """Check ``config`` (resolved), read the data, open the latency table and the target.

    Everything that can be refused is refused here, before any latency is measured.
    """
    latency, execution = config.latency, config.execution
    check_placement(execution.workers, execution.ray_address, execution.threads)
    if latency.validate and latency.table is not None and _is_device_table(Path(latency.table)):
        raise InvalidArgumentError(
            "validate measures networks end to end here, but the device table describes another"
            " device; validate on the device (python measure.py), or pass validate=0."
        )
    task = None
    data = config.data
    if data.folder is not None:
        task = load_image_folder_proxy(
            data.folder,
            val=data.val,
            val_fraction=data.val_fraction,
            image_size=config.proxy.input_size or 32,
            images_per_class=data.images_per_class,
            seed=0,
            corrupt=data.corrupt,
        )
    folder, _, setup = checked_setup(
        output,
        reward=config.controller.reward,
        budget=config.controller.budget,
        validate=latency.validate,
        progress=execution.progress,
        proxy=_proxy_settings(config),
        table_path=latency.table,
        target_ms=config.controller.target_ms,
        latency_backend=latency.backend,
        image_size=latency.input_size,
        threads=execution.threads,
        calibrate=latency.calibrate,
        predictor=latency.predictor or "layers",
        task=task,
        proxy_augment=config.proxy.augment,
    )
    return folder, setup, task


def run_configured_one(output: Path, setup: Setup, config: SearchConfig) -> SearchResult:
    """One resumable search run of ``config`` on an opened ``setup``."""
    controller, execution = config.controller, config.execution
    digits = config.data.folder is None
    settings = run_settings(
        setup,
        strategy=controller.strategy,
        seed=controller.seed,
        reward=controller.reward,
        # Recorded as given for the digits; as the table measured it for a folder (a device
        # table is onnxruntime whatever was asked).
        latency_backend=config.latency.backend if digits else setup.table.backend,
        image_size=config.latency.input_size,
        threads=execution.threads,
        **_proxy_settings(config),
    )
    result = run_one(
        output,
        setup,
        strategy=controller.strategy,
        budget=controller.budget,
        seed=controller.seed,
        reward=controller.reward,
        progress=execution.progress,
        validate=config.latency.validate,
        settings=settings,
        placement={"workers": execution.workers, "ray_address": execution.ray_address},
    )
    record_config(output, config)
    return result


def launch(
    output: str | os.PathLike[str], config: SearchConfig
) -> tuple[SearchResult, list[FinalModel]]:
    """Run the search ``config`` describes into ``output``; finalize for a folder.

    Returns:
        ``(result, finals)``; ``finals`` is empty unless ``config.proxy.finalize``.
    """
    config = config.resolved()
    check_resume(Path(os.fspath(output)), config)
    folder, setup, task = open_setup(output, config)
    result = run_configured_one(folder, setup, config)
    finals: list[FinalModel] = []
    if task is not None and config.proxy.finalize:
        finals = finalize_search(
            folder,
            task,
            top=config.proxy.finalize,
            epochs=config.proxy.finalize_epochs,
            augment=True,
        )
    return result, finals
