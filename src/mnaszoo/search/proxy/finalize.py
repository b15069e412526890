"""Train the architectures a search found, fully, into ordinary ``save_pretrained`` folders.

A search trains each candidate for a few proxy epochs; :func:`finalize_search` takes the best
(or the ``top`` best distinct) architectures of a finished search and trains each from scratch for
longer with the fine-tuning helpers (:func:`mnaszoo.tasks.finetune.param_groups`: no weight decay
on BatchNorm and biases; AdamW with warm-up and cosine decay), then writes a normal
:func:`mnaszoo.save_pretrained` directory (weights, architecture, class names, preprocessing) that
``mnaszoo predict``, ``evaluate`` and ``export`` accept.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from ..._io import read_json_object
from ..._validate import check_float, check_int
from ...errors import SearchStateError
from ...models.specs import NetworkSpec
from ..latency.open import spec_key
from ..run.runner import Trial
from .image_data import ImageFolderTask
from .schedule import OneCycle, planned_steps

__all__ = ["FinalModel", "finalize_search"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinalModel:
    """One finalized architecture.

    Attributes:
        path: its ``save_pretrained`` directory.
        trial: the search trial it came from.
        accuracy: top-1 accuracy on the validation images after the full training.
        latency_ms: the search's predicted latency.
    """

    path: Path
    trial: int
    accuracy: float
    latency_ms: float


def _best_trials(output: Path, top: int) -> list[Trial]:
    state = read_json_object(output / "state.json", "the search state")
    try:
        trials = [Trial.from_dict(item) for item in state["trials"]]
    except (KeyError, TypeError, ValueError) as error:
        raise SearchStateError(f"The search state in {output} is malformed: {error}.") from error
    if not trials:
        raise SearchStateError(f"The search in {output} has no trials to finalize.")
    chosen: list[Trial] = []
    seen: set[str] = set()
    for trial in sorted(trials, key=lambda t: (-t.reward, t.index)):
        key = spec_key(trial.network_spec())
        if key not in seen:  # a network met twice is finalized once
            seen.add(key)
            chosen.append(trial)
        if len(chosen) == top:
            break
    return chosen


def _train(
    spec: NetworkSpec,
    task: ImageFolderTask,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    augment: bool,
) -> tuple[Any, float]:
    from ...models.factory import build
    from ...tasks.finetune import param_groups
    from .trainer import ProxyTrainer, _augment, recalibrate_batchnorm

    images, labels = task.train
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(spec, num_classes=len(task.classes))
        optimizer = torch.optim.AdamW(param_groups(model, lr=lr, weight_decay=0.05))
        schedule = OneCycle(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=planned_steps(images.shape[0], batch_size, epochs),
            pct_start=0.1,
        )
        generator = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(images.shape[0], generator=generator)
            for start in range(0, images.shape[0], batch_size):
                batch = order[start : start + batch_size]
                if len(batch) < 2:  # BatchNorm cannot train on one image
                    continue
                x = images[batch]
                if augment:
                    x = _augment(x, generator)
                loss = F.cross_entropy(model(x), labels[batch], label_smoothing=0.1)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                schedule.step()
        # As the proxy trainer does: a short run leaves the running statistics far from the
        # data's (MnasNet's momentum is 0.01), and the saved model would predict at chance.
        recalibrate_batchnorm(model, images, batch_size)
    scorer = ProxyTrainer(task.train, task.val, epochs=1)
    return model.eval(), scorer.evaluate(model)


def finalize_search(
    output: str | os.PathLike[str],
    task: ImageFolderTask,
    *,
    top: int = 1,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    augment: bool = True,
) -> list[FinalModel]:
    """Train the ``top`` best distinct architectures of the search in ``output`` on ``task``.

    Args:
        output: a search's output folder (its ``state.json``).
        task: the data (:func:`~mnaszoo.search.proxy.image_data.load_image_folder_proxy`),
            usually the search's own, perhaps at a higher resolution or with all images per
            class.
        top: how many architectures, best reward first (networks met twice count once).
        epochs: training epochs for each.
        lr: peak learning rate (AdamW, one-cycle schedule).
        batch_size: images per step.
        seed: seeds initialisation, shuffling and augmentation.
        augment: random flips and shifts of the training images.

    Returns:
        One :class:`FinalModel` per architecture; its folder is ``output/final`` for the best and
        ``output/final_2``, ``final_3``... for the next. ``output/final.json`` lists them.

    Raises:
        SearchStateError: ``output`` holds no finished search.
        InvalidArgumentError: an out-of-range argument.
    """
    from ..._io import write_text_atomic
    from ...weights.hub import save_pretrained
    from ...weights.manifest import LocalSource, WeightsRecord

    folder = Path(os.fspath(output))
    check_int("top", top, minimum=1)
    check_int("epochs", epochs, minimum=1)
    check_float("lr", lr, minimum=0.0, min_inclusive=False)
    check_int("batch_size", batch_size, minimum=2)
    check_int("seed", seed, minimum=0)
    finals: list[FinalModel] = []
    for rank, trial in enumerate(_best_trials(folder, top), start=1):
        spec = trial.network_spec()
        logger.info("finalizing trial %d (rank %d): %d epochs", trial.index, rank, epochs)
        model, accuracy = _train(
            spec, task, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, augment=augment
        )
        target = folder / ("final" if rank == 1 else f"final_{rank}")
        model.weights_info = WeightsRecord(
            id=f"{spec.name}.searched",
            source=LocalSource(str(target)),
            sha256=None,
            sha256_prefix=None,
            size=None,
            layout="mnaszoo",
            num_classes=len(task.classes),
            labels=task.classes,
            preprocessing=task.preprocessing,
            metrics=(),
            license="",
            num_params=sum(p.numel() for p in model.parameters()),
            publisher="mnaszoo search --finalize",
            notes=f"trial {trial.index} of the search in {folder}, trained {epochs} epochs",
        )
        save_pretrained(model, target, overwrite=True, labels=list(task.classes))
        finals.append(FinalModel(target, trial.index, accuracy, trial.latency_ms))
        logger.info("wrote %s: validation accuracy %.3f", target, accuracy)
    listing = [
        {"path": str(f.path), "trial": f.trial, "accuracy": f.accuracy, "latency_ms": f.latency_ms}
        for f in finals
    ]
    write_text_atomic(folder / "final.json", json.dumps(listing, indent=1) + "\n")
    return finals
