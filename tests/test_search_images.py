"""Search on your own image folder: decoding, corrupt images, splits, the search, --finalize and
the CLI, with tiny PIL images and tiny budgets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mnaszoo
from mnaszoo.cli.main import main
from mnaszoo.data.transforms import make_transform
from mnaszoo.errors import InvalidArgumentError, InvalidImageError, SearchStateError
from mnaszoo.search.proxy.image_data import load_image_folder_proxy

CLASSES = ("ant", "bee", "cat")


def _folder(root: Path, per_class: int = 6, *, seed: int = 0) -> Path:
    """Three classes of 20x24 images, each tinted by its own colour channel."""
    rng = np.random.default_rng(seed)
    for channel, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (20, 24, 3), dtype=np.uint8)
            pixels[..., channel] += 150
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_decodes_with_the_evaluation_transform_and_splits_per_class(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data")
    task = load_image_folder_proxy(root, image_size=16, val_fraction=0.34)
    assert task.classes == CLASSES and not task.skipped
    assert task.train[0].shape == (12, 3, 16, 16) and task.val[0].shape == (6, 3, 16, 16)
    assert torch.bincount(task.val[1]).tolist() == [2, 2, 2]
    # Each image is exactly what the recorded evaluation transform (predict, evaluate) gives.
    transform = make_transform(task.preprocessing)
    every = torch.cat([task.train[0], task.val[0]])
    expected = transform(root / "bee" / "3.png")
    assert any(torch.equal(expected, image) for image in every)
    limited = load_image_folder_proxy(root, image_size=16, images_per_class=2)
    assert torch.bincount(limited.train[1]).tolist() == [2, 2, 2]


def test_corrupt_images_are_reported_skipped_or_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _folder(tmp_path / "data")
    broken = root / "bee" / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    (root / "cat" / "truncated.png").write_bytes((root / "cat" / "0.png").read_bytes()[:60])
    task = load_image_folder_proxy(root, image_size=16)
    assert {Path(path).name for path, _ in task.skipped} == {"broken.jpg", "truncated.png"}
    assert str(broken) in caplog.text
    assert task.train[0].shape[0] + task.val[0].shape[0] == 18
    with pytest.raises(InvalidImageError, match=r"broken\.jpg"):
        load_image_folder_proxy(root, image_size=16, corrupt="error")


def test_bad_folders_are_clear_errors(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data")
    other = _folder(tmp_path / "other")
    (other / "cat").rename(other / "dog")
    with pytest.raises(InvalidArgumentError, match="same class subfolders"):
        load_image_folder_proxy(root, val=other)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        load_image_folder_proxy(tmp_path / "missing")
    lonely = _folder(tmp_path / "lonely", per_class=1)
    with pytest.raises(InvalidArgumentError, match="fewer than 2"):
        load_image_folder_proxy(lonely)
    with pytest.raises(InvalidArgumentError, match="corrupt"):
        load_image_folder_proxy(root, corrupt="ignore")


def test_search_finalize_and_use_the_model(tmp_path: Path, one_thread: None) -> None:
    """The CLI end to end: search on the folder, finalize the best, predict and evaluate it."""
    train = _folder(tmp_path / "train")
    val = _folder(tmp_path / "val", per_class=2, seed=1)
    (train / "ant" / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "run"
    argv = ["search", str(out), "--data", str(train), "--val", str(val), "--budget", "2"]
    argv += ["--strategy", "random", "--proxy-size", "16", "--proxy-epochs", "1"]
    argv += ["--input-size", "32", "--calibrate", "0", "--finalize", "1"]
    argv += ["--finalize-epochs", "1", "--augment", "--no-progress"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"]["classes"] == list(CLASSES)
    assert summary["task"]["skipped_images"] == 1 and summary["trials"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["predictor"] == "context" and config["proxy_augment"] is True
    model = mnaszoo.from_pretrained(out / "final")
    best = json.loads((out / "best_spec.json").read_text())
    assert model.config.spec.to_dict() == best
    assert model.weights_info.labels == CLASSES
    assert model.weights_info.preprocessing.input_size == 16
    top = mnaszoo.predict([train / "cat" / "0.png"], model, topk=3)
    assert sorted(p.label for p in top[0]) == sorted(CLASSES)  # the stored class names
    result = mnaszoo.evaluate(model, val, progress=False)
    assert result.num_images == 6
    # Rerunning continues the same search; other settings are refused.
    assert main([*argv[:6], "--budget", "2", *argv[8:]]) == 0
    assert main(["search", str(out), "--val", str(val)]) == 2  # --val needs --data: usage error


def test_search_refuses_a_device_table_for_another_space(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="kits are written with onnx")
    from mnaszoo.search.run.images import search_images
    from mnaszoo.search.space import SearchSpace

    table = {
        "format": "mnaszoo-device-latency-table",
        "version": 1,
        "kit": {"id": "x", "image_size": 32, "batch_size": 1, "num_classes": 3},
        "runtime": "onnxruntime",
        "runtime_version": "1.0",
        "threads": 1,
        "clock": "wall",
        "device_cpu": "a tiny board",
        "system": "Linux",
        "max_spread": 0.2,
        "entries": {
            "stem:i3:o32:h32": {"ms": 1.0, "p25_ms": 1, "p75_ms": 1, "spread": 0.0, "samples": 3}
        },
        "calibration": {},
    }
    path = tmp_path / "table.json"
    path.write_text(json.dumps(table))
    with pytest.raises(SearchStateError, match="no calibration networks"):
        search_images(tmp_path / "run", _folder(tmp_path / "d"), table_path=path, image_size=32)
    with pytest.raises(InvalidArgumentError, match="validate"):
        search_images(tmp_path / "run", tmp_path / "d", table_path=path, validate=2)
    assert SearchSpace().num_blocks == 7
