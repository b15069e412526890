"""``mnaszoo.train`` under torchrun (2 processes, gloo on CPU) against one process.

With BatchNorm frozen, dropout off and no random augmentation (a crop of the whole image), a
step of two processes with batches of 4 sees the same 8 images as one process with a batch of
8 (``DistributedSampler`` deals the same shuffled order out in turn), and
DistributedDataParallel averages the two halves' gradients into the full batch's. The two runs
must then end with the same weights up to floating-point summation order, and only rank 0
writes the output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import mnaszoo

from .support.train_data import image_folder

SCRIPT = """
import sys, torch
torch.set_num_threads(1)
import mnaszoo
mnaszoo.train(sys.argv[1], sys.argv[2], model=sys.argv[3], input_size=32, recipe="quick",
              epochs=2, batch_size=int(sys.argv[4]), val_fraction=0.25, crop_scale=(1.0, 1.0),
              crop_ratio=(1.0, 1.0), hflip=False, bn_freeze_below=16, progress=False,
              tensorboard=False)
"""


@pytest.mark.slow
def test_two_processes_match_one_process_with_twice_the_batch(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=3, per_class=8)
    base = tmp_path / "base"
    torch.manual_seed(0)
    mnaszoo.save_pretrained(
        mnaszoo.create("mnasnet_small", num_classes=3, drop_rate=0.0), base, labels=["a", "b", "c"]
    )
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(mnaszoo.__file__).parents[1]),
    }
    one = subprocess.run(
        [sys.executable, str(script), str(data), str(tmp_path / "one"), str(base), "8"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(script),
            str(data),
            str(tmp_path / "two"),
            str(base),
            "4",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr

    record = json.loads((tmp_path / "two" / "training.json").read_text())
    assert record["settings"]["world_size"] == 2 and record["settings"]["bn_frozen"] is True
    assert record["settings"]["steps_per_epoch"] == 2
    single = json.loads((tmp_path / "one" / "training.json").read_text())
    assert single["settings"]["steps_per_epoch"] == 2
    # Only rank 0 wrote: one line per epoch, the same files as a single process.
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
    a = load_file(str(tmp_path / "one" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "last" / "model.safetensors"))
    delta = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    moved = max(
        float((a[k].double() - v.double()).abs().max())
        for k, v in load_file(str(base / "model.safetensors")).items()
        if k in a and v.shape == a[k].shape
    )
    assert moved > 1e-3  # training changed the weights...
    assert delta < 1e-4 * max(moved, 1.0)  # ...and both runs changed them alike
    accuracies = [json.loads(line)["val_acc"] for line in lines]
    single_lines = (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()
    assert accuracies == [json.loads(line)["val_acc"] for line in single_lines]
