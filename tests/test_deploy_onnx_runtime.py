"""The onnxruntime backend: OnnxRuntimeModel, its export cache, and predict(backend=...)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo.deploy import onnx_runtime as runtime
from mnaszoo.errors import CacheNotWritableError, InvalidArgumentError, MnaszooError
from mnaszoo.tasks import prediction
from mnaszoo.tasks.prediction import clear_model_cache, predict

from .support.served import Served

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

PHOTOS = sorted((Path(__file__).parent / "fixtures" / "images").glob("*.jpg"))


@pytest.fixture(autouse=True)
def _fresh_models() -> None:
    clear_model_cache()


def _small(num_classes: int = 5, seed: int = 0) -> mnaszoo.MnasNet:
    torch.manual_seed(seed)
    model = mnaszoo.create("mnasnet_small", num_classes=num_classes).eval()
    # Non-trivial BatchNorm statistics, so that folding them is actually exercised.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


def test_from_model_matches_torch_and_reuses_its_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _small()
    fast = mnaszoo.OnnxRuntimeModel.from_model(model, input_size=64, cache_dir=tmp_path)
    assert fast.num_classes == 5 and fast.input_size == (64, 64)
    assert fast.path.parent == tmp_path / "onnx" and fast.path.suffix == ".onnx"
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(fast(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
    assert model.training is False and next(model.parameters()).device.type == "cpu"

    # Same model again (a new process would do the same): the cached file, no export.
    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr("mnaszoo.deploy.exporting.export", no_export)
    again = mnaszoo.OnnxRuntimeModel.from_model(model, input_size=64, cache_dir=tmp_path)
    assert again.path == fast.path
    # Changed weights or input size: another file (and here, an export).
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    with pytest.raises(AssertionError, match="exported again"):
        mnaszoo.OnnxRuntimeModel.from_model(model, input_size=64, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="exported again"):
        mnaszoo.OnnxRuntimeModel.from_model(_small(), input_size=96, cache_dir=tmp_path)
    # A damaged cache file (here: truncated) is exported again, not a crash.
    monkeypatch.undo()
    fast.path.write_bytes(fast.path.read_bytes()[:1000])
    repaired = mnaszoo.OnnxRuntimeModel.from_model(_small(), input_size=64, cache_dir=tmp_path)
    assert repaired.path == fast.path
    torch.testing.assert_close(repaired(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max())


def test_unwritable_cache_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheNotWritableError, match="pass cache_dir= a writable folder"):
        mnaszoo.OnnxRuntimeModel.from_model(_small(), input_size=64, cache_dir=blocker)


def test_wrong_input_size_and_shape_are_explained(tmp_path: Path) -> None:
    fast = mnaszoo.OnnxRuntimeModel.from_model(_small(), input_size=64, cache_dir=tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"exported for 64x64 inputs, got 96x96"):
        fast(torch.randn(1, 3, 96, 96))
    with pytest.raises(InvalidArgumentError, match="expected an NCHW tensor"):
        fast(torch.randn(3, 64, 64))
    with pytest.raises(InvalidArgumentError, match="No ONNX file"):
        mnaszoo.OnnxRuntimeModel(tmp_path / "missing.onnx")


def test_predict_auto_runs_names_in_onnxruntime(served: Served) -> None:
    auto = predict(PHOTOS, "mnasnet_small", topk=5)
    exported = list((served.cache / "onnx").glob("*.onnx"))
    assert len(exported) == 1  # auto chose onnxruntime, exporting into mnaszoo's cache
    explicit_torch = predict(PHOTOS, "mnasnet_small", topk=5, backend="torch")
    for ort_row, torch_row in zip(auto, explicit_torch, strict=True):
        assert [p.index for p in ort_row] == [p.index for p in torch_row]
        assert [p.score for p in ort_row] == pytest.approx([p.score for p in torch_row], abs=1e-5)
        assert [p.label for p in ort_row] == [p.label for p in torch_row]
    # A fresh start (as a new process) reads the exported file instead of exporting again.
    clear_model_cache()
    stamp = exported[0].stat().st_mtime_ns
    assert predict(PHOTOS, "mnasnet_small", topk=5) == auto
    assert exported[0].stat().st_mtime_ns == stamp


def test_predict_backends_for_model_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path))
    model = _small(num_classes=3)
    image = PHOTOS[0]
    via_torch = predict(image, model, topk=3)  # auto: a model object stays in torch
    assert not (tmp_path / "onnx").exists()
    via_ort = predict(image, model, topk=3, backend="onnxruntime")
    assert [p.index for p in via_ort] == [p.index for p in via_torch]
    assert [p.score for p in via_ort] == pytest.approx([p.score for p in via_torch], abs=1e-5)
    session = mnaszoo.OnnxRuntimeModel.from_model(model, input_size=224)
    assert predict(image, session, topk=3) == via_ort  # an OnnxRuntimeModel is accepted as is
    with pytest.raises(InvalidArgumentError, match=r"Unknown backend 'tensorrt'; accepted"):
        predict(image, model, topk=3, backend="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="do not apply to an OnnxRuntimeModel"):
        predict(image, session, weights="lamb_in1k")


def test_missing_extra_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "onnxruntime_available", lambda export=True: False)
    monkeypatch.setattr(prediction, "onnxruntime_available", lambda export=True: False)
    model = _small(num_classes=3)
    with pytest.raises(MnaszooError, match=r"pip install 'mnaszoo\[onnx\]'"):
        mnaszoo.OnnxRuntimeModel.from_model(model, cache_dir=tmp_path)
    with pytest.raises(MnaszooError, match=r"pip install 'mnaszoo\[onnx\]'"):
        predict(PHOTOS[0], model, topk=3, backend="onnxruntime")
