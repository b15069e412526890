"""The device kit for the executorch backend: .pte programs and a runner without mnaszoo."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from mnaszoo.errors import InvalidArgumentError, SearchStateError
from mnaszoo.search.latency.context_table import ContextLatencyTable
from mnaszoo.search.space import SearchSpace

# 14 distinct layers at 32 px, three different calibration networks (depths differ).
TINY = SearchSpace(
    ops=("mb3",), kernels=(3,), se_ratios=(0.0,), skips=(True,), filters=(1.0,), layers=(-1, 0)
)

# Runs a script with every import of mnaszoo (and, with BLOCK_TORCH=1, torch) refused.
BLOCKER = """
import os, runpy, sys
blocked = ("mnaszoo", "torch") if os.environ.get("BLOCK_TORCH") == "1" else ("mnaszoo",)
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Blocker())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _env(tmp_path: Path, block_torch: bool) -> dict[str, str]:
    # No PYTHONPATH to the source tree: the runner sees only site-packages (mnaszoo blocked).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["BLOCK_TORCH"] = "1" if block_torch else "0"
    return env


def test_kit_refuses_an_unknown_backend(tmp_path: Path) -> None:
    from mnaszoo.search.latency.kit import write_latency_kit

    with pytest.raises(InvalidArgumentError, match="executorch"):
        write_latency_kit(tmp_path / "kit", space=TINY, input_size=32, backend="tflite")
    assert not (tmp_path / "kit").exists()


def test_device_table_with_an_unknown_runtime_is_refused(tmp_path: Path) -> None:
    data = {
        "format": "mnaszoo-device-latency-table",
        "version": 1,
        "kit": {"id": "x", "image_size": 32, "batch_size": 1, "num_classes": 10},
        "runtime": "tflite",
        "runtime_version": "2.0",
        "threads": 1,
        "clock": "wall",
        "max_spread": 0.2,
        "device_cpu": "cpu",
        "system": "Linux",
        "entries": {},
        "calibration": {},
    }
    path = tmp_path / "table.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SearchStateError, match="tflite"):
        ContextLatencyTable.load(path)


@pytest.mark.slow
def test_executorch_kit_runs_without_mnaszoo_and_feeds_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("executorch")
    from mnaszoo.search.latency.kit import space_layers, write_latency_kit

    monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path / "cache"))
    kit = write_latency_kit(
        tmp_path / "kit", space=TINY, input_size=32, num_classes=10, calibration=3,
        backend="executorch",
    )  # fmt: skip
    manifest = json.loads((kit / "manifest.json").read_text())
    assert manifest["runtime"] == "executorch"
    assert len(manifest["entries"]) == len(space_layers(TINY, 32, 1, 10))
    assert all(e["file"].endswith(".pte") for e in manifest["entries"])
    blocker = tmp_path / "blocked.py"
    blocker.write_text(BLOCKER)
    cwd = tmp_path  # not the repository: its src/ must not be importable by accident
    # The blocker works: mnaszoo cannot be imported under it.
    probe = tmp_path / "probe.py"
    probe.write_text("import mnaszoo\n")
    refused = subprocess.run(
        [sys.executable, str(blocker), str(probe)],
        env=_env(tmp_path, False), cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "blocked" in refused.stderr
    # ExecuTorch's Python runtime itself imports torch (its bindings link libtorch).
    probe.write_text("import executorch.runtime\n")
    no_torch = subprocess.run(
        [sys.executable, str(blocker), str(probe)],
        env=_env(tmp_path, True), cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    assert no_torch.returncode != 0 and "torch is blocked" in no_torch.stderr
    done = subprocess.run(
        [sys.executable, str(blocker), str(kit / "measure.py"), "--rounds", "2", "--calls",
         "2", "--clock", "thread", "--max-spread", "100"],
        env=_env(tmp_path, False), cwd=cwd, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    from importlib.metadata import version

    data = json.loads((kit / "table.json").read_text())
    assert data["runtime"] == "executorch"
    assert data["runtime_version"] == version("executorch") and data["threads"] == 1
    assert set(data["entries"]) == {e["key"] for e in manifest["entries"]}
    table = ContextLatencyTable.load(kit / "table.json")
    assert table.frozen and table.backend == "executorch" and table.calibration is not None
    assert table.measured_on["runtime"] == f"executorch {version('executorch')}"
    spec = TINY.to_spec(TINY.sample(random.Random(3)))
    keys = [x.key for x in table.layers(spec)]
    raw = sum(data["entries"][k]["min_ms"] for k in keys)  # the fastest call of each block
    assert table.predict(spec) == pytest.approx(table.calibration.apply(raw, len(keys)))
    # The table plugs into the search's --table.
    from mnaszoo.search.latency.open import open_predictor

    opened = open_predictor(
        kit / "table.json", predictor="layers", backend="torch", image_size=32, threads=1,
        calibrate=0, num_classes=10,
    )  # fmt: skip
    assert opened.backend == "executorch" and opened.frozen
    assert opened.predict(spec) == pytest.approx(table.predict(spec))
