"""The first run of a model on onnxruntime says it exports once; later runs and --quiet do not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo.cli.main import main
from mnaszoo.deploy.onnx_runtime import onnxruntime_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not onnxruntime_available(), reason="needs mnaszoo[onnx]"),
]
PHOTO = Path(__file__).parents[1] / "docs" / "images" / "grace_hopper.jpg"


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=3)
    mnaszoo.save_pretrained(model, tmp_path / "small")
    (tmp_path / "small" / "classes.txt").write_text("a\nb\nc\n", encoding="utf-8")
    return tmp_path / "small"


def _predict(checkpoint: Path, *extra: str) -> int:
    # a model name with a checkpoint: predict's "auto" backend exports it to onnxruntime
    args = ["predict", str(PHOTO), "--model", "mnasnet_small", "--topk", "1"]
    args += ["--input-size", "32", "--checkpoint", str(checkpoint / "model.safetensors")]
    return main([*args, "--classes", str(checkpoint / "classes.txt"), *extra])


def test_the_first_predict_says_it_exports_once_and_later_ones_do_not(
    checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mnaszoo.tasks.prediction import clear_model_cache

    monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path / "cache"))
    clear_model_cache()
    assert _predict(checkpoint) == 0
    first = capsys.readouterr()
    lines = first.err.splitlines()
    assert any(
        line.startswith("mnaszoo: Exporting the model to ONNX once, about ")
        and f"later runs load {tmp_path / 'cache' / 'onnx'} and skip this." in line
        for line in lines
    ), first.err
    assert any(line.startswith("mnaszoo: Exported to ONNX in ") for line in lines), first.err
    clear_model_cache()  # a new process: the file is in the cache now
    assert _predict(checkpoint) == 0
    assert "ONNX" not in capsys.readouterr().err


def test_quiet_silences_the_export_message(
    checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mnaszoo.tasks.prediction import clear_model_cache

    monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path / "cache"))
    clear_model_cache()
    assert _predict(checkpoint, "--quiet") == 0
    captured = capsys.readouterr()
    assert "ONNX" not in captured.err
    assert captured.out.startswith(str(PHOTO))
    assert list((tmp_path / "cache" / "onnx").glob("*.onnx"))  # it did export
