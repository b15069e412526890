"""What a run shows and leaves behind: the progress bar, ``metrics.jsonl``, the plot and
TensorBoard events.

* The progress bar (tqdm, on stderr, only on a terminal) shows the running loss, accuracy and
  images per second of the epoch; one summary line per epoch is logged in any case.
* ``metrics.jsonl``: one JSON object per epoch, rewritten atomically with the whole history
  (so a resumed run's file holds each epoch exactly once).
* ``curves.png`` and ``curves.svg``: loss and accuracy per epoch, with matplotlib
  (``mnaszoo[train]``); without it the plot is skipped with a note in the log.
* TensorBoard events under ``OUT/tensorboard`` when ``torch.utils.tensorboard`` can be used
  (the ``tensorboard`` package is installed).
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..._io import atomic_path, write_text_atomic

__all__ = ["Progress", "TensorBoard", "plot_curves", "write_metrics"]

logger = logging.getLogger("mnaszoo.train")


class Progress:
    """A per-epoch bar with loss, accuracy and images/s (nothing when disabled)."""

    def __init__(self, total: int, description: str, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            tqdm = importlib.import_module("tqdm.auto").tqdm
            # disable=None: only on a terminal, so that logs and CI output stay clean.
            self._bar = tqdm(
                total=total,
                desc=description,
                unit="step",
                leave=False,
                disable=None,
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def update(self, loss: float, accuracy: float, images_per_second: float) -> None:
        """Advance one step and show the running figures."""
        if self._bar is not None:
            self._bar.set_postfix(
                loss=f"{loss:.3f}",
                acc=f"{100 * accuracy:.1f}%",
                img_s=f"{images_per_second:.0f}",
                refresh=False,
            )
            self._bar.update(1)

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()


def write_metrics(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Write the history as JSON lines, atomically."""
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in history))


def plot_curves(history: Sequence[dict[str, Any]], folder: Path, title: str) -> list[Path]:
    """Loss and accuracy per epoch as ``curves.png`` and ``curves.svg`` in ``folder``.

    Returns:
        The files written; none (and a log note) without matplotlib or history.
    """
    if not history:
        return []
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        logger.info(
            "matplotlib is not installed: no loss/accuracy plot (pip install 'mnaszoo[train]')"
        )
        return []
    # A Figure of its own, not pyplot: no global backend or figure state is touched. Text stays
    # text in the SVG (small, searchable); fixed ids make it reproducible.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mnaszoo"}):
        return _draw(importlib.import_module("matplotlib.figure").Figure, history, folder, title)


def _draw(
    figure_class: Any, history: Sequence[dict[str, Any]], folder: Path, title: str
) -> list[Path]:
    epochs = [row["epoch"] for row in history]
    figure = figure_class(figsize=(9, 3.4))
    loss_axes, acc_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [row["train_loss"] for row in history], label="train")
    loss_axes.plot(epochs, [row["val_loss"] for row in history], label="validation")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss")
    loss_axes.legend()
    acc_axes.plot(epochs, [100 * row["train_acc"] for row in history], label="train")
    acc_axes.plot(epochs, [100 * row["val_acc"] for row in history], label="validation")
    if any(row.get("ema_val_acc") is not None for row in history):
        acc_axes.plot(
            epochs,
            [100 * (row.get("ema_val_acc") or float("nan")) for row in history],
            label="validation (EMA)",
        )
    acc_axes.set_xlabel("epoch")
    acc_axes.set_ylabel("accuracy (%)")
    acc_axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    written = []
    for suffix in ("png", "svg"):
        target = folder / f"curves.{suffix}"
        with atomic_path(target) as temp:
            figure.savefig(temp, format=suffix, dpi=100)
        written.append(target)
    return written


class TensorBoard:
    """Scalars per epoch under ``folder`` if ``torch.utils.tensorboard`` works, else nothing."""

    def __init__(self, folder: Path, enabled: bool) -> None:
        self._writer: Any = None
        if not enabled:
            return
        try:
            module = importlib.import_module("torch.utils.tensorboard")
        except ImportError:
            return
        self._writer = module.SummaryWriter(str(folder))

    def log(self, row: dict[str, Any]) -> None:
        """Add every number of ``row`` at its epoch."""
        if self._writer is None:
            return
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self._writer.add_scalar(key, value, row["epoch"])
        self._writer.flush()

    def close(self) -> None:
        """Close the event file."""
        if self._writer is not None:
            self._writer.close()
