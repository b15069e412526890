"""examples/finetune.py with two processes on CPU (gloo), as torchrun would start them."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .support.served import Served

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "finetune.py"

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="this torch build has no gloo backend",
)


def _load_example() -> ModuleType:
    name = "mnaszoo_finetune_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _argv(output: Path) -> list[str]:
    return [
        "--limit",
        "160",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--input-size",
        "32",
        "--drop-path-rate",
        "0.1",
        "--output",
        str(output),
        "--no-progress",
        "--samples",
        "0",
    ]


def _worker(
    rank: int, world_size: int, port: int, output: str, results: str, extra: list[str]
) -> None:
    # What torchrun sets for each process.
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    result = _load_example().run(_load_example().parse_args([*_argv(Path(output)), *extra]))
    torch.save(
        {"state": result.model.state_dict(), "metrics": result.metrics},
        Path(results) / f"rank{rank}.pt",
    )


def test_two_processes_end_with_identical_weights(tmp_path: Path, served: Served) -> None:
    """Two processes fine-tune published weights (served on loopback, downloaded once)."""
    output, results = tmp_path / "run", tmp_path / "results"
    results.mkdir()
    extra = ["--pretrained", "--freeze", "stem"]
    arguments: tuple[Any, ...] = (2, _free_port(), str(output), str(results), extra)
    mp.spawn(_worker, args=arguments, nprocs=2, join=True)
    # Local rank 0 downloaded the weights; rank 1 waited at the barrier and read the cache.
    downloads = [
        r
        for r in served.server.requests_for("timm/mnasnet_small.lamb_in1k/model.safetensors")
        if r.method == "GET" and r.status == 200
    ]
    assert len(downloads) == 1, served.server.requests
    rank0 = torch.load(results / "rank0.pt", weights_only=True)
    rank1 = torch.load(results / "rank1.pt", weights_only=True)
    assert rank0["state"].keys() == rank1["state"].keys()
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), f"{key} differs between the ranks"
    metrics = rank0["metrics"]
    assert metrics["world_size"] == 2 and metrics["epochs"] == 2
    assert metrics["pretrained"] is True and metrics["trainable_params"] < metrics["params"]
    # Losses and accuracies are reduced over both ranks: both report the same.
    for row0, row1 in zip(metrics["history"], rank1["metrics"]["history"], strict=True):
        assert {k: v for k, v in row0.items() if k != "elapsed_s"} == {
            k: v for k, v in row1.items() if k != "elapsed_s"
        }
    # Rank 0 wrote the checkpoint: it holds the final weights.
    saved = torch.load(output / "training_state.pt", weights_only=True)
    assert saved["epoch"] == 2 and len(saved["rng"]) == 2
    for key, value in saved["model"].items():
        assert torch.equal(value, rank0["state"][key]), key
    assert json.loads((output / "metrics.json").read_text())["world_size"] == 2


@pytest.mark.slow
def test_the_script_runs_under_torchrun(tmp_path: Path) -> None:
    output = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(EXAMPLE),
        *_argv(output),
    ]
    command[command.index("--epochs") + 1] = "1"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # only rank 0 prints
    assert summary["world_size"] == 2 and summary["epochs"] == 1
    assert done.stderr.count("epoch   1/1") == 1  # only rank 0 logs
    assert (output / "model.safetensors").is_file() and (output / "classes.txt").is_file()
