"""``mnaszoo.train``: train a model on a class-per-folder dataset, resumably.

The pieces live in their own modules: the settings (:mod:`.recipes`), the schedule
(:mod:`.schedule`), augmentation (:mod:`.augment`), targets and losses (:mod:`.losses`), the
data (:mod:`.data`), the model and optimizer (:mod:`.model`), one epoch (:mod:`.epoch`), the
state file (:mod:`.state`), the output folder (:mod:`.output`), what is shown and plotted
(:mod:`.report`) and torchrun (:mod:`.distributed`). This module puts them together.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..._validate import check_bool, check_choice, check_float, check_int
from ...errors import InvalidArgumentError
from ...models.mnasnet import MnasNet
from ...weights.manifest import Preprocessing
from .augment import AUGMENT_BACKENDS
from .distributed import setup, teardown
from .recipes import Recipe, check_recipe, get_recipe
from .run import TrainResult, run_training

__all__ = ["TrainResult", "train"]

logger = logging.getLogger("mnaszoo.train")


def _device(device: str | torch.device | None) -> torch.device:
    from ..._validate import check_device

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(check_device(device))


def train(
    data: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    model: str | MnasNet = "mnasnet_a1",
    pretrained: bool | str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    val: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    recipe: str | Recipe = "standard",
    input_size: int | None = None,
    crop_pct: float | None = None,
    preprocessing: Preprocessing | None = None,
    seed: int = 0,
    patience: int | None = None,
    teacher: str | MnasNet | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str | torch.device | None = None,
    augment_backend: str = "auto",
    corrupt: str = "skip",
    progress: bool = True,
    tensorboard: bool = True,
    local_files_only: bool = False,
    **settings: Any,
) -> TrainResult:
    """Train (or fine-tune) a classifier on a folder with one subfolder of images per class.

    Args:
        data: the training folder; sorted subfolder names are the classes.
        output: the run's folder (created); it becomes a ``save_pretrained`` folder that
            ``predict``, ``evaluate`` and ``export`` take as it is.
        model: a registered name, a ``save_pretrained`` folder, ``"hf-hub:user/name"`` or a
            :class:`~mnaszoo.models.mnasnet.MnasNet`.
        pretrained: for a registered name: start from its published weights (``True``, the
            default, or a tag such as ``"tv_in1k"``) or from scratch (``False``).
        checkpoint: a weights file for a registered name (timm, torchvision or mnaszoo layout).
        val: a validation folder with the same class subfolders; ``None`` holds out a seeded,
            stratified ``val_fraction`` of every class (recorded in ``split.json``).
        val_fraction: share of each class held out when ``val`` is ``None``, in (0, 1).
        recipe: ``"quick"``, ``"standard"``, ``"strong"`` or a :class:`Recipe`.
        input_size: the training and evaluation resolution (default: the weights' recipe, or
            224 from scratch); the resize scales with it.
        crop_pct: the centre crop's share of the resized image (``1.0``: no crop, for images
            whose content fills the frame); default: the weights' recipe (0.875 from scratch).
        preprocessing: the whole evaluation recipe (overrides ``input_size``), e.g. for images
            that must not be cropped.
        seed: seeds the split, the initial weights, the data order and the augmentation.
        patience: stop when validation accuracy has not improved for this many epochs.
        teacher: a trained model of the same classes to distil from (name, folder, Hub id or
            model), weighted by the recipe's ``distill_alpha``.
        resume: continue the run checkpointed in ``output`` (its saved settings are used).
        overwrite: replace a previous run in ``output`` (only the files a run writes).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default CUDA if available. Under
            torchrun, each process takes the GPU of its ``LOCAL_RANK``.
        augment_backend: RandAugment from ``"kornia"``, plain ``"torch"``, or ``"auto"``.
        corrupt: unreadable images are skipped (``"skip"``, each logged and listed in
            ``split.json``) or refused (``"error"``).
        progress: show a progress bar per epoch (on a terminal).
        tensorboard: write TensorBoard events when ``tensorboard`` is installed.
        local_files_only: never download weights.
        **settings: any :class:`Recipe` field, e.g. ``epochs=5``, ``batch_size=16``,
            ``hflip=False``, replacing the preset's value.

    Returns:
        A :class:`TrainResult`.

    Raises:
        InvalidArgumentError: a folder, setting or model cannot be used (the message says
            what is accepted), or ``output`` holds another run.
        InvalidImageError: ``corrupt="error"`` and some images cannot be read.
        CacheNotWritableError: the output cannot be written (e.g. a full disk); the last
            checkpoint stays complete, so the run can be resumed once there is room.
        WeightsError: pretrained weights cannot be found, downloaded or read.

    Example:
        >>> result = mnaszoo.train("photos/", "runs/photos", model="mnasnet_small",
        ...                        recipe="quick")  # doctest: +SKIP
        >>> result.best_val_acc  # doctest: +SKIP
        0.97
    """
    check_bool("resume", resume)
    check_bool("overwrite", overwrite)
    check_choice("augment_backend", augment_backend, AUGMENT_BACKENDS)
    check_int("seed", seed, minimum=0)
    if patience is not None:
        check_int("patience", patience, minimum=1)
    if crop_pct is not None:
        check_float("crop_pct", crop_pct, minimum=0.0, maximum=1.0, min_inclusive=False)
    chosen = get_recipe(recipe).replace(**settings)
    check_recipe(chosen)
    out = Path(output).expanduser()
    for folder in (data, val):
        if folder is not None and _inside(out, Path(folder).expanduser()):
            raise InvalidArgumentError(
                f"The output folder {str(out)!r} is inside the image folder {str(folder)!r}: its"
                " files would become a class of the next run. Choose an output folder elsewhere."
            )
    env = setup(_device(device))
    level = logger.level
    if not env.main:  # one log, from rank 0
        logger.setLevel(logging.WARNING)
    try:
        return run_training(
            env,
            Path(data),
            out,
            model=model,
            pretrained=pretrained,
            checkpoint=checkpoint,
            val=val,
            val_fraction=val_fraction,
            recipe=chosen,
            input_size=input_size,
            crop_pct=crop_pct,
            preprocessing=preprocessing,
            seed=seed,
            patience=patience,
            teacher=teacher,
            resume=resume,
            overwrite=overwrite,
            augment_backend=augment_backend,
            corrupt=corrupt,
            progress=progress,
            tensorboard=tensorboard,
            local_files_only=local_files_only,
        )
    finally:
        logger.setLevel(level)
        teardown(env)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True
