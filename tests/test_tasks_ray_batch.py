"""Predicting over a corpus on real local Ray clusters (select with ``-m ray``).

- ``evaluate(..., ray=...)`` with 1 and 2 actors counts what a local run counts (per class,
  confusion matrix), and names the first unreadable image.
- Ray with 1 and 2 model actors gives the rows of the single-process and the 2-worker streaming
  paths (same paths in the same order, scores within 1e-5).
- :func:`predict_dataset` returns a lazy Ray Dataset with the same rows.
- ``mnaszoo predict --ray`` whose model actor (a descendant process of the command, found by its
  process title and killed by pid with SIGKILL) dies mid-run still writes every row exactly once.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import mnaszoo
from mnaszoo.tasks.parts import read_results
from mnaszoo.tasks.streaming import predict_to_file

HAS_RAY = importlib.util.find_spec("ray") is not None
pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.skipif(not HAS_RAY, reason="needs Ray: pip install 'mnaszoo[distributed]'"),
]
# Before any import of Ray: keep the cluster on 127.0.0.1 (see tests/test_search_distributed.py).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _jpegs(folder: Path, count: int, size: tuple[int, int] = (80, 60)) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        pixels = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.jpg", quality=90)


def _same(rows: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [r["index"] for r in rows] == list(range(len(expected)))
    assert [r["path"] for r in rows] == [r["path"] for r in expected]
    assert [r["error"] for r in rows] == [r["error"] for r in expected]
    for row, reference in zip(rows, expected, strict=True):
        assert list(row["indices"]) == list(reference["indices"])
        assert list(row["scores"]) == pytest.approx(list(reference["scores"]), abs=1e-5)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    from mnaszoo.tasks.ray_batch import connect

    ray = connect("local", cpus=3)
    yield ray
    ray.shutdown()


def test_ray_with_one_and_two_actors_gives_the_rows_of_the_streaming_paths(
    tmp_path: Path, ray_cluster: Any
) -> None:
    from mnaszoo.tasks.ray_batch import predict_dataset

    _jpegs(tmp_path / "in", 9)
    (tmp_path / "in" / "004.jpg").write_bytes(b"broken")
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=4).eval()
    options: dict[str, Any] = {"topk": 3, "device": "cpu", "batch_size": 2, "part_size": 4}
    results = {}
    runs: dict[str, dict[str, Any]] = {
        "one process": {},
        "two workers": {"workers": 2},
        "ray 1": {"ray": "local", "workers": 1},
        "ray 2": {"ray": "local", "workers": 2},
    }
    for name, extra in runs.items():
        output = tmp_path / f"{name}.parquet"
        predict_to_file([tmp_path / "in"], output, model, **options, **extra)
        results[name] = read_results(output)
    assert results["one process"][4]["error"].endswith("not an image file PIL can identify")
    for name in ("two workers", "ray 1", "ray 2"):
        _same(results[name], results["one process"])
    dataset = predict_dataset([tmp_path / "in"], model, workers=2, batch_size=3, topk=3)
    _same(dataset.take_all(), results["one process"])


def _labelled(root: Path) -> Path:
    """Three class folders of 5, 3 and 1 JPEGs (sizes and counts uneven on purpose)."""
    for name, count in (("ant", 5), ("bee", 3), ("cat", 1)):
        _jpegs(root / name, count)
    return root


def _counts(result: Any) -> dict[str, Any]:
    data = result.to_dict()
    for timing in ("seconds", "images_per_second", "device"):
        data.pop(timing)
    return data


def test_evaluate_on_ray_with_one_and_two_actors_counts_what_a_local_run_counts(
    tmp_path: Path, ray_cluster: Any
) -> None:
    folder = _labelled(tmp_path / "data")
    torch.manual_seed(2)
    model = mnaszoo.create("mnasnet_small", num_classes=3).eval()
    local = mnaszoo.evaluate(model, folder, batch_size=2, progress=False, device="cpu")
    # A plain torch loop over the same images gives the same first predictions (per class).
    from mnaszoo.data.transforms import make_transform

    transform = make_transform(model)
    with torch.inference_mode():
        for entry in local.per_class:
            paths = sorted((folder / entry.name).iterdir())
            first = model(torch.stack([transform(p) for p in paths])).argmax(1).tolist()
            assert entry.predicted == {k: first.count(k) for k in set(first)}
    for workers in (1, 2):
        on_ray = mnaszoo.evaluate(
            model, folder, batch_size=2, num_workers=workers, progress=False, ray="local"
        )
        assert on_ray.device == f"ray ({workers} actors, cpu)"
        assert _counts(on_ray) == _counts(local)
    (folder / "bee" / "001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(mnaszoo.errors.InvalidImageError, match=r"001\.jpg"):
        mnaszoo.evaluate(model, folder, batch_size=2, progress=False, ray="local")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_model_actor_killed_mid_run_loses_no_row_and_duplicates_none(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    _jpegs(tmp_path / "in", 40, size=(900, 700))
    torch.manual_seed(1)
    mnaszoo.save_pretrained(
        mnaszoo.create("mnasnet_small", num_classes=3), tmp_path / "model", labels=["a", "b", "c"]
    )
    common = ["predict", str(tmp_path / "in"), "--checkpoint", str(tmp_path / "model"), "-k", "2"]
    common += ["--backend", "torch", "-b", "2", "--part-size", "4"]
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    whole = tmp_path / "whole.parquet"
    plain = subprocess.run(
        [sys.executable, "-m", "mnaszoo", *common, "--output", str(whole)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plain.returncode == 0, plain.stderr
    output = tmp_path / "out.parquet"
    child = subprocess.Popen(
        [sys.executable, "-m", "mnaszoo", *common, "--output", str(output), "--ray", "-j", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = None
    deadline = time.monotonic() + 240
    parts = tmp_path / "out.parquet.parts"
    while killed is None and time.monotonic() < deadline and child.poll() is None:
        # Once rows come back, the actors are busy: kill one of them.
        if len(list(parts.glob("part-*"))) >= 1:
            actors = [p for p in _descendants(child.pid) if "_ModelActor" in _title(p)]
            if actors:
                killed = actors[0]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    out, err = child.communicate(timeout=300)
    assert killed is not None, "no model actor was found to kill before the run ended"
    assert child.returncode == 0, err[-3000:]
    assert "40 images, 0 errors" in out
    _same(read_results(output), read_results(whole))
