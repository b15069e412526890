"""The walkthrough page shows recorded output: its code blocks are the code that
docs/record_walkthrough.py ran, and the recording is complete and says where it was made."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
PAGE = DOCS / "walkthrough.md"
DATA = DOCS / "data" / "walkthrough.json"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"mnaszoo_docs_{name}_wt", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_page_runs_the_recorded_code() -> None:
    recorder = _load("record_walkthrough")
    blocks = recorder.page_blocks(PAGE.read_text(encoding="utf-8"))
    recorded = [row["code"] for row in json.loads(DATA.read_text(encoding="utf-8"))["rows"]]
    assert len(blocks) >= 6
    assert blocks == recorded, "walkthrough.md changed: rerun python docs/record_walkthrough.py"
    assert recorder.check() == []


def test_every_python_block_of_the_page_is_recorded() -> None:
    """No block escapes the recording: every ``python`` block carries the marker."""
    text = PAGE.read_text(encoding="utf-8")
    fences = re.findall(r"^```python$", text, flags=re.MULTILINE)
    assert len(fences) == len(_load("record_walkthrough").page_blocks(text))


def test_the_walkthrough_goes_from_a_folder_to_a_prediction_with_the_onnx_file() -> None:
    code = "\n".join(row["code"] for row in json.loads(DATA.read_text())["rows"])
    for call in (
        "search_images(",
        "finalize_search(",
        "mnaszoo.evaluate(",
        "mnaszoo.export(",
        "mnaszoo.OnnxRuntimeModel(",
        "mnaszoo.predict(",
    ):
        assert call in code, call


def test_the_recording_is_well_formed() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    env = data["environment"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", env["date"])
    assert env["machine"] and "torch " in env["software"] and env["command"]
    assert re.search(r"AVX|NEON|VNNI|AMX", env["cpu_features"])
    assert isinstance(env["threads"], int) and env["threads"] >= 1
    assert env["seconds"] > 0
    steps = [row["step"] for row in data["rows"]]
    assert steps == list(range(1, len(steps) + 1))
    for row in data["rows"]:
        assert row["output"].strip(), f"block {row['step']} printed nothing"
        assert "Traceback" not in row["output"]
        # no path of the machine that recorded it
        assert "/tmp/" not in row["output"] and str(ROOT) not in row["output"]
    # the search ran and its best network was exported and used
    outputs = "\n".join(row["output"] for row in data["rows"])
    assert re.search(r"^best: trial \d+", outputs, flags=re.MULTILINE)
    assert "shapes.onnx" in outputs


def test_the_build_shows_the_recording_and_refuses_a_changed_block() -> None:
    hooks = _load("hooks")
    data = json.loads(DATA.read_text(encoding="utf-8"))
    first = data["rows"][0]
    assert hooks.recorded_output("walkthrough", first["code"]) == (
        f"```text\n{first['output']}\n```"
    )
    with pytest.raises(ValueError, match="record_walkthrough"):
        hooks.recorded_output("walkthrough", first["code"] + "\nprint('changed')")
    assert data["environment"]["date"] in hooks.recorded_environment("walkthrough")
