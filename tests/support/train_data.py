"""Tiny class-per-folder image datasets for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40))


def image_folder(
    root: Path,
    classes: int = 3,
    per_class: int = 6,
    size: tuple[int, int] = (36, 28),
    seed: int = 0,
) -> Path:
    """``root/class<i>/<j>.png``: noisy images whose dominant colour is the class."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            noise = rng.integers(0, 60, (size[1], size[0], 3))
            pixels = np.clip(np.array(COLOURS[c % len(COLOURS)]) + noise - 30, 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{j}.png")
    return root


TINY = {
    "model": "mnasnet_small",
    "pretrained": False,
    "input_size": 32,
    "progress": False,
    "tensorboard": False,
    "batch_size": 4,
}
"""Keyword arguments for mnaszoo.train that keep a run at a few seconds per epoch."""
