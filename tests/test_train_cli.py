"""``mnaszoo train``: options reach the recipe, the summary names the output, --resume works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import mnaszoo
from mnaszoo.cli.main import main as cli

from .support.train_data import image_folder


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_train_then_resume_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=4)
    out = tmp_path / "out"
    args = [
        "train",
        str(data),
        str(out),
        "-m",
        "mnasnet_small",
        "--no-pretrained",
        "--input-size",
        "32",
        "--recipe",
        "strong",
        "--epochs",
        "1",
        "-b",
        "4",
        "--no-ema",
        "--no-hflip",
        "--mixup",
        "0.5",
        "--randaugment",
        "1",
        "--lr",
        "0.002",
        "--augment-backend",
        "torch",
        "--no-tensorboard",
        "--seed",
        "3",
        "--crop-pct",
        "1",
    ]
    assert cli(args) == 0
    captured = capsys.readouterr()
    assert "best validation accuracy" in captured.out and str(out) in captured.out
    assert "epoch 1/1" in captured.err
    recipe = json.loads((out / "training.json").read_text())["settings"]["recipe"]
    assert recipe["name"] == "strong" and recipe["epochs"] == 1 and recipe["ema_decay"] is None
    assert recipe["hflip"] is False and recipe["mixup_alpha"] == 0.5
    assert recipe["randaugment_ops"] == 1 and recipe["lr"] == recipe["lr_finetune"] == 0.002
    assert recipe["randaugment_magnitude"] == 9.0  # the preset's, not overridden
    assert json.loads((out / "training.json").read_text())["settings"]["seed"] == 3
    saved = mnaszoo.from_pretrained(out).weights_info
    assert saved is not None and saved.preprocessing.resize == saved.preprocessing.input_size == 32
    # Resuming a finished run trains nothing more and rewrites the same record.
    assert cli(["train", str(data), str(out), "--resume", "--no-tensorboard"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
