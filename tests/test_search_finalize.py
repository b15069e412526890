"""A finalized network is saved with BatchNorm statistics of its training images.

A finalize run is short on a small folder (tens of steps), and MnasNet's BatchNorm momentum is
0.01, so the running statistics it trained with stay near their initial values (mean 0, variance
1); a model saved that way predicts one class for every image. The test recomputes, outside
mnaszoo, what the stem's BatchNorm must hold after finalize: the average over the training
batches of the per-channel mean and (unbiased) variance of the stem convolution's output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

import mnaszoo
from mnaszoo.search import finalize_search, search_images
from mnaszoo.search.proxy.image_data import load_image_folder_proxy


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("light", 200)):
        (root / name).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(rng.normal(level, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_the_finalized_model_holds_the_batchnorm_statistics_of_its_training_images(
    tmp_path: Path,
) -> None:
    data = _folder(tmp_path / "data")
    search_images(
        tmp_path / "run", data, budget=1, input_size=32, proxy_size=32, proxy_epochs=1,
        calibrate=0, progress=False,
    )  # fmt: skip
    task = load_image_folder_proxy(data, image_size=32)
    batch_size = 4
    (final,) = finalize_search(tmp_path / "run", task, epochs=1, batch_size=batch_size)
    model = mnaszoo.from_pretrained(final.path)
    images = task.train[0]
    means, variances = [], []
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size]
            if batch.shape[0] < 2:
                continue
            out = model.stem.conv(batch)
            means.append(out.mean(dim=(0, 2, 3)))
            variances.append(out.var(dim=(0, 2, 3), unbiased=True))
    bn = model.stem.bn
    torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(bn.running_var, torch.stack(variances).mean(0), atol=1e-4, rtol=1e-3)
    # Far from the initial statistics a stale model would keep.
    assert float((bn.running_var - 1).abs().max()) > 0.05
