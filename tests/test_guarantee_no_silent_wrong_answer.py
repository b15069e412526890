"""Never a silently wrong answer.

Each test reproduces a way mnaszoo used to give a wrong answer without a word, and checks that it
now refuses (or repairs) instead. docs/reliability.md lists them by failure mode.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import mnaszoo
from mnaszoo.errors import (
    CorruptCheckpointError,
    IncompatibleWeightsError,
    InvalidArgumentError,
    MnaszooError,
)

from .support.served import Served

IMAGE = np.full((48, 64, 3), 120, dtype=np.uint8)
PHOTOS = sorted((Path(__file__).parent / "fixtures" / "images").glob("*.jpg"))[:2]


def _small(num_classes: int = 5, seed: int = 0) -> mnaszoo.MnasNet:
    torch.manual_seed(seed)
    model = mnaszoo.create("mnasnet_small", num_classes=num_classes).eval()
    for module in model.modules():  # non-trivial BatchNorm statistics, so folding matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


# --------------------------------------------------------------------------- strict loading


def test_classifier_of_another_width_is_rejected_unless_a_new_head_was_asked(
    tmp_path: Path,
) -> None:
    model = _small(num_classes=1000)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    features = state["classifier.weight"].shape[1]
    # Same number of classes, another input width: a head trained on other features.
    state["classifier.weight"] = torch.randn(1000, features - 256)
    path = tmp_path / "other_head.safetensors"
    save_file(state, str(path))

    with pytest.raises(IncompatibleWeightsError, match=r"classifier\.weight"):
        mnaszoo.create("mnasnet_small", checkpoint=path)

    # Asking for another number of classes replaces the head; every other layer loads.
    fresh = mnaszoo.create("mnasnet_small", checkpoint=path, num_classes=7)
    assert fresh.num_classes == 7
    torch.testing.assert_close(fresh.stem.conv.weight, model.stem.conv.weight)


def test_non_finite_weights_are_refused_at_load(tmp_path: Path) -> None:
    model = _small()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["stem.conv.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "diverged.safetensors"
    save_file(state, str(path))
    with pytest.raises(CorruptCheckpointError, match=r"NaN or infinite.*stem\.conv\.weight"):
        mnaszoo.create("mnasnet_small", checkpoint=path, num_classes=5)

    folder = mnaszoo.save_pretrained(model, tmp_path / "run")
    weights = folder / "model.safetensors"
    state["stem.conv.weight"][0, 0, 0, 0] = float("inf")
    save_file(state, str(weights))
    # A changed file alone is refused by its recorded sha256; record the new one, as a training
    # run that diverged and saved consistently would, to reach the non-finite check.
    config = json.loads((folder / "config.json").read_text("utf-8"))
    config["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(config), "utf-8")
    with pytest.raises(CorruptCheckpointError, match="NaN or infinite"):
        mnaszoo.from_pretrained(folder)


def test_predict_refuses_nan_scores_and_cli_json_is_strict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = _small()
    with torch.no_grad():
        model.classifier.bias[0] = float("nan")
    with pytest.raises(MnaszooError, match="NaN or infinite scores"):
        mnaszoo.predict(IMAGE, model)

    from mnaszoo.cli._format import print_json

    with pytest.raises(ValueError, match="not JSON compliant"):
        print_json([{"score": float("nan")}])
    assert capsys.readouterr().out == ""
    print_json([{"score": 0.5}])
    assert json.loads(capsys.readouterr().out) == [{"score": 0.5}]


# --------------------------------------------------------------------------- predict's manners


def test_predict_gives_back_the_callers_model_in_its_mode() -> None:
    model = _small()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mnaszoo.predict(IMAGE, model, device="cpu")
    assert model.training is True
    # Eval mode was used: BatchNorm running statistics are untouched.
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    model.eval()
    mnaszoo.predict(IMAGE, model)
    assert model.training is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to move to")
def test_predict_on_another_device_leaves_the_model_where_it_was() -> None:
    model = _small()
    expected = mnaszoo.predict(IMAGE, model, device="cpu", topk=2)
    got = mnaszoo.predict(IMAGE, model, device="cuda", topk=2)
    assert next(model.parameters()).device.type == "cpu"
    assert [p.index for p in got] == [p.index for p in expected]


@pytest.mark.parametrize("device", ["meta", "cuda:0"])
def test_devices_that_cannot_run_are_mnaszoo_errors(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    model = _small()
    with pytest.raises(InvalidArgumentError, match="use cpu"):
        mnaszoo.predict(IMAGE, model, device=device)
    assert next(model.parameters()).device.type == "cpu"  # not moved, weights intact


def test_predict_needs_a_classifier() -> None:
    torch.manual_seed(0)
    for headless in (
        mnaszoo.create("mnasnet_small", num_classes=0),
        mnaszoo.create("mnasnet_small", features_only=True),
    ):
        with pytest.raises(InvalidArgumentError, match="needs a model with a classifier"):
            mnaszoo.predict(IMAGE, headless)


# --------------------------------------------------------------------------- ONNX: cache, opset


onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_onnx_cache_runs_only_the_bytes_it_exported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = _small()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(x)
    fast = mnaszoo.OnnxRuntimeModel.from_model(model, input_size=64, cache_dir=tmp_path)
    assert (fast.path.parent / (fast.path.name + ".sha256")).is_file()

    # Another valid model in its place: the classifier negated, as a swapped file would be.
    tampered = onnx.load(str(fast.path))
    for tensor in tampered.graph.initializer:
        if tuple(tensor.dims) == tuple(model.classifier.weight.shape):
            array = onnx.numpy_helper.to_array(tensor)
            tensor.CopyFrom(onnx.numpy_helper.from_array(-array, tensor.name))
    onnx.save(tampered, str(fast.path))
    assert not torch.allclose(mnaszoo.OnnxRuntimeModel(fast.path)(x), expected, atol=1e-3)

    with caplog.at_level(logging.WARNING, logger="mnaszoo"):
        again = mnaszoo.OnnxRuntimeModel.from_model(model, input_size=64, cache_dir=tmp_path)
    assert "sha256" in caplog.text
    torch.testing.assert_close(again(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max())


def test_export_refuses_an_opset_it_cannot_write(tmp_path: Path) -> None:
    model = _small()
    target = tmp_path / "m.onnx"
    with pytest.raises(InvalidArgumentError, match="accepted opsets are 18"):
        mnaszoo.export(model, target, opset=13, input_size=64)
    assert list(tmp_path.iterdir()) == []


def test_quantize_refuses_too_little_calibration(tmp_path: Path) -> None:
    model = _small(num_classes=10)
    target = tmp_path / "int8.onnx"
    with pytest.raises(InvalidArgumentError, match="calibration is empty; at least 16"):
        mnaszoo.quantize_int8(model, target, torch.zeros(0, 3, 64, 64))
    with pytest.raises(InvalidArgumentError, match=r"only 4 image.*at least 16"):
        mnaszoo.quantize_int8(model, target, torch.randn(4, 3, 64, 64))
    assert list(tmp_path.iterdir()) == []


def test_quantize_refuses_a_result_that_disagrees_with_the_float_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _small(num_classes=10)

    def broken_quantizer(source: str, output: str, *args: object, **kwargs: object) -> None:
        # A "quantized" model whose classifier is negated: it loads and runs, and is wrong.
        graph = onnx.load(source)
        for tensor in graph.graph.initializer:
            if 10 in tuple(tensor.dims) and len(tensor.dims) == 2:
                array = onnx.numpy_helper.to_array(tensor)
                tensor.CopyFrom(onnx.numpy_helper.from_array(-array, tensor.name))
        onnx.save(graph, output)

    monkeypatch.setattr("onnxruntime.quantization.quantize_static", broken_quantizer)
    calibration = torch.randn(32, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with pytest.raises(InvalidArgumentError, match=r"top-1 class on only \d+ of the 32"):
        mnaszoo.quantize_int8(model, tmp_path / "int8.onnx", calibration)
    assert list(tmp_path.iterdir()) == []


def test_auto_backend_falls_back_to_torch_when_the_onnx_cache_is_read_only(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mnaszoo.errors import CacheNotWritableError
    from mnaszoo.tasks.prediction import clear_model_cache

    clear_model_cache()

    def read_only(*args: object, **kwargs: object) -> None:  # a copied, read-only cache
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("mnaszoo.deploy.onnx_runtime.export_folded", read_only)
    expected = mnaszoo.predict(PHOTOS, "mnasnet_small", backend="torch")
    with caplog.at_level(logging.WARNING, logger="mnaszoo"):
        assert mnaszoo.predict(PHOTOS, "mnasnet_small") == expected
        assert mnaszoo.predict(PHOTOS, "mnasnet_small") == expected
    warnings = [r for r in caplog.records if "Running the model in torch" in r.getMessage()]
    assert len(warnings) == 1 and "Read-only file system" in warnings[0].getMessage()
    with pytest.raises(CacheNotWritableError):  # asked for explicitly: no silent fallback
        mnaszoo.predict(PHOTOS, "mnasnet_small", backend="onnxruntime")
    clear_model_cache()
