"""The confusion matrix and per-class accuracy in ``evaluate``'s result and JSON.

The reference is :func:`mnaszoo.predict` run on each image on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import mnaszoo


def test_the_confusion_matrix_counts_first_predictions_per_folder(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = mnaszoo.create("mnasnet_small", num_classes=4).eval()
    folders = ["class_0", "class_1", "class_3"]  # class_2 is a class no folder holds
    rng = np.random.default_rng(0)
    truth: dict[str, list[Path]] = {}
    for name in folders:
        truth[name] = []
        for i in range(4):
            path = tmp_path / name / f"{i}.png"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
            truth[name].append(path)
    result = mnaszoo.evaluate(model, tmp_path, device="cpu", progress=False, batch_size=5)
    assert result.mapping == "labels"
    column = {3: 2, 0: 0, 1: 1}
    counts = [[0, 0, 0] for _ in folders]
    other = [0, 0, 0]
    for row, name in enumerate(folders):
        for path in truth[name]:
            first = mnaszoo.predict(str(path), model, topk=1, device="cpu")[0].index
            if first in column:
                counts[row][column[first]] += 1
            else:
                other[row] += 1
    data = json.loads(result.to_json())
    assert data["confusion_matrix"] == {
        "rows": folders,
        "columns": folders,
        "counts": counts,
        "other": other,
    }
    assert sum(map(sum, counts)) + sum(other) == 12
    for row, entry in enumerate(data["per_class"]):
        assert entry["top1_correct"] == counts[row][row]
        assert entry["top1"] == 100.0 * counts[row][row] / 4
        assert sum(entry["predicted"].values()) == 4
