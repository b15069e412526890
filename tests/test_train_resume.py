"""Never lose a run: a training process killed (SIGKILL) at a random moment leaves a loadable
last checkpoint, and ``resume=True`` ends with the very weights of an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import mnaszoo

from .support.train_data import image_folder

RUN = """
import sys, torch
torch.set_num_threads(1)
import mnaszoo
mnaszoo.train(sys.argv[1], sys.argv[2], model="mnasnet_small", pretrained=False, input_size=32,
              recipe="standard", epochs=4, batch_size=4, resume=sys.argv[3] == "1",
              progress=False, tensorboard=False)
"""


def train_process(data: Path, out: Path, resume: bool) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(mnaszoo.__file__).parents[1]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", RUN, str(data), str(out), "1" if resume else "0"],
        env=env,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen[bytes]) -> None:
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_resume_gives_the_same_weights(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", per_class=6)
    finish(train_process(data, tmp_path / "whole", resume=False))

    out = tmp_path / "killed"
    process = train_process(data, out, resume=False)
    state = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    # Somewhere in the second epoch, or while its checkpoint is being written.
    time.sleep(random.uniform(0.0, 1.5))
    process.send_signal(signal.SIGKILL)
    process.communicate()
    saved = torch.load(state, weights_only=True)  # the last good state loads
    assert 1 <= saved["epoch"] <= 4
    mnaszoo.from_pretrained(out)  # so does the best model so far
    finish(train_process(data, out, resume=True))
    # A temporary file of a write that was killed is removed when the run resumes.
    leftovers = [p.name for p in (out / "checkpoints").iterdir()]
    assert leftovers == ["last.pt"]
    whole = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=True)
    resumed = torch.load(state, weights_only=True)
    assert resumed["epoch"] == 4
    for part in ("model", "ema"):
        delta = max(
            float((whole[part][k].double() - resumed[part][k].double()).abs().max())
            for k in whole[part]
        )
        assert delta == 0.0, (part, delta, saved["epoch"], leftovers)
    assert [row["val_acc"] for row in whole["history"]] == [
        row["val_acc"] for row in resumed["history"]
    ]
