"""The output folder of a run: a ``save_pretrained`` folder plus the run's own record.

::

    OUT/model.safetensors, config.json   the best weights by validation accuracy, with their
                                         class names and evaluation preprocessing
                                         (predict, evaluate and export take OUT as it is)
    OUT/classes.txt                      one class name per line, in class-index order
    OUT/training.json                    settings, model source, data, environment, results
    OUT/split.json                       which file went to training, validation, or was skipped
    OUT/metrics.jsonl                    one line per epoch
    OUT/curves.png, curves.svg           loss and accuracy per epoch (with matplotlib)
    OUT/last/                            the last epoch's weights, also a save_pretrained folder
    OUT/checkpoints/last.pt              the full training state, for --resume
    OUT/tensorboard/                     TensorBoard events (with tensorboard installed)

Every file is written atomically, and the weights with their config as one unit, so a run
killed at any moment leaves each file either as it was or complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ..._io import write_text_atomic
from ...errors import InvalidArgumentError
from ...models.mnasnet import MnasNet
from ...weights.manifest import LocalSource, Preprocessing, WeightsRecord
from ...weights.model_card import card_is_ours

__all__ = [
    "RUN_FILES",
    "STATE_PATH",
    "as_mnasnet",
    "check_output",
    "save_epoch",
    "trained_record",
    "write_json",
]

logger = logging.getLogger("mnaszoo.train")

STATE_PATH = Path("checkpoints") / "last.pt"
RUN_FILES = (
    "model.safetensors",
    "config.json",
    "classes.txt",
    "training.json",
    "split.json",
    "metrics.jsonl",
    "curves.png",
    "curves.svg",
    "last",
    "checkpoints",
    "tensorboard",
)
"""What a run writes into its output folder; ``overwrite`` removes these and nothing else."""

CARD_FILES = ("README.md", "architecture.svg")
"""The model card save_pretrained writes beside the weights, removed with them while unchanged."""


def check_output(output: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder; with ``overwrite``, remove the previous run's files.

    Raises:
        InvalidArgumentError: ``output`` is a file; or it holds a run and neither ``resume`` nor
            ``overwrite`` is set; or ``resume`` is set and it holds no training state.
    """
    if output.exists() and not output.is_dir():
        raise InvalidArgumentError(f"The output {str(output)!r} is a file; give a folder.")
    state = output / STATE_PATH
    if resume:
        _recover(output)
        if not state.is_file():
            raise InvalidArgumentError(
                f"Cannot resume: {str(state)!r} does not exist (no run was checkpointed in"
                f" {str(output)!r}). Start the run without --resume."
            )
        # A write killed half-way leaves its temporary file (never read): tidy them up.
        for stale in state.parent.glob(f".{state.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        return
    present = [name for name in RUN_FILES if (output / name).exists()]
    if "config.json" in present and card_is_ours(output):
        # The model card save_pretrained wrote (unchanged since) is the run's too; a card the
        # user wrote or edited is not, and stays.
        present += [name for name in CARD_FILES if (output / name).exists()]
    if present and not overwrite:
        raise InvalidArgumentError(
            f"{str(output)!r} already holds a run ({', '.join(present[:4])}); pass --resume to"
            " continue it, --overwrite to start again, or choose another output folder."
        )
    for name in present:
        target = output / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()


def _recover(output: Path) -> None:
    """Put back a folder caught between the two renames of a checkpoint update.

    ``save_pretrained`` swaps a complete new folder in: ``OUT`` is renamed to
    ``.OUT.old-<id>``, then the new one to ``OUT``. A process killed between the two leaves no
    ``OUT``, but the whole previous one aside; it is renamed back.
    """
    if output.exists():
        return
    aside = sorted(output.parent.glob(f".{output.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if aside and (aside[-1] / STATE_PATH).is_file():
        os.rename(aside[-1], output)
        logger.warning(
            "recovered %s from %s (a checkpoint update was interrupted)", output, aside[-1]
        )


def trained_record(
    name: str, classes: Sequence[str], preprocessing: Preprocessing, output: Path
) -> WeightsRecord:
    """What ``save_pretrained`` stores with the trained model: labels and evaluation recipe."""
    return WeightsRecord(
        id=f"{name}.trained",
        source=LocalSource(str(output)),
        sha256=None,
        sha256_prefix=None,
        size=None,
        layout="mnaszoo",
        num_classes=len(classes),
        labels=tuple(classes),
        preprocessing=preprocessing,
        metrics=(),
        license="",
        num_params=0,
        publisher="mnaszoo train",
        notes="",
    )


def write_json(path: Path, data: Any) -> None:
    """Pretty JSON, written atomically."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def save_epoch(out: Path, kept: nn.Module, classes: tuple[str, ...], improved: bool) -> None:
    """The epoch's weights into ``out/last``, and into ``out`` itself when they are the best."""
    from ...weights.hub import save_pretrained

    weights = as_mnasnet(kept)
    (out / "last").mkdir(exist_ok=True)
    save_pretrained(weights, out / "last", labels=classes, overwrite=True)
    if improved:
        save_pretrained(weights, out, labels=classes, overwrite=True)


def as_mnasnet(module: nn.Module) -> MnasNet:
    """``module`` as a MnasNet (the model, or the module an EMA wrapper averages)."""
    if not isinstance(module, MnasNet):  # pragma: no cover - AveragedModel keeps a MnasNet
        raise InvalidArgumentError(f"expected a MnasNet, got {type(module).__name__}")
    return module
