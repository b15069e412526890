"""mnaszoo.export: ONNX, TorchScript and pt2 files that reproduce the eager outputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import mnaszoo

from .conftest import assert_close_to_scale
from .test_models_mnasnet import _randomise_bn

SIZE = 96

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    # torch.export.save of channels_last (optimize_for_inference) weights; loading is exact.
    pytest.mark.filterwarnings("ignore:No complete tensor found:UserWarning"),
]


@pytest.fixture(scope="module")
def small() -> mnaszoo.MnasNet:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small")
    _randomise_bn(model)
    return model.eval()


def _eager(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = model(x)
    return out


def _onnx_session(path: Path) -> Any:
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="needs the onnx extra",
)


@needs_onnx
def test_onnx_dynamic_batch(small: mnaszoo.MnasNet, tmp_path: Path) -> None:
    path = mnaszoo.export(small, tmp_path / "small.onnx", input_size=SIZE)
    assert path == tmp_path / "small.onnx" and [p.name for p in tmp_path.iterdir()] == [path.name]
    session = _onnx_session(path)
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    for batch in (1, 3):
        x = torch.randn(batch, 3, SIZE, SIZE)
        (out,) = session.run(None, {"input": x.numpy()})
        assert_close_to_scale(torch.from_numpy(out), _eager(small, x), 1e-4)


@needs_onnx
def test_onnx_static_batch_rejects_other_sizes(small: mnaszoo.MnasNet, tmp_path: Path) -> None:
    path = mnaszoo.export(small, tmp_path / "s.onnx", batch=2, input_size=SIZE, opset=18)
    session = _onnx_session(path)
    assert session.get_inputs()[0].shape == [2, 3, SIZE, SIZE]
    x = torch.randn(2, 3, SIZE, SIZE)
    (out,) = session.run(None, {"input": x.numpy()})
    assert_close_to_scale(torch.from_numpy(out), _eager(small, x), 1e-4)
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        session.run(None, {"input": np.zeros((3, 3, SIZE, SIZE), np.float32)})


@needs_onnx
def test_onnx_fused_mnasnet_a1_at_224(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_a1")
    _randomise_bn(model)
    model.eval()
    fast = mnaszoo.optimize_for_inference(model)
    path = mnaszoo.export(fast, tmp_path / "a1.onnx")
    x = torch.randn(2, 3, 224, 224)
    (out,) = _onnx_session(path).run(None, {"input": x.numpy()})
    assert_close_to_scale(torch.from_numpy(out), _eager(model, x), 1e-4)


def test_torchscript_round_trip(small: mnaszoo.MnasNet, tmp_path: Path) -> None:
    fast = mnaszoo.optimize_for_inference(small)
    for model, name in ((small, "plain.pt"), (fast, "fused.pt")):
        loaded = torch.jit.load(str(mnaszoo.export(model, tmp_path / name, "torchscript")))
        for batch in (1, 3):
            x = torch.randn(batch, 3, SIZE, SIZE)
            assert_close_to_scale(_eager(loaded, x), _eager(small, x), 1e-4)


def test_pt2_dynamic_and_static(small: mnaszoo.MnasNet, tmp_path: Path) -> None:
    fast = mnaszoo.optimize_for_inference(small)
    dynamic = mnaszoo.export(fast, tmp_path / "d.pt2", "pt2", input_size=SIZE)
    program = torch.export.load(dynamic).module()
    for batch in (1, 3):
        x = torch.randn(batch, 3, SIZE, SIZE)
        assert_close_to_scale(_eager(program, x), _eager(small, x), 1e-4)
    static = mnaszoo.export(small, tmp_path / "s.pt2", "pt2", batch=2, input_size=(SIZE, 64))
    fixed = torch.export.load(static).module()
    x = torch.randn(2, 3, SIZE, 64)
    assert_close_to_scale(_eager(fixed, x), _eager(small, x), 1e-4)
    with pytest.raises(Exception, match="2"):
        fixed(torch.randn(3, 3, SIZE, 64))


def test_features_backbone_torchscript(tmp_path: Path) -> None:
    model = mnaszoo.create("mnasnet_small", features_only=True, out_indices=(2, 4)).eval()
    path = mnaszoo.export(model, tmp_path / "f.pt", "torchscript", input_size=64)
    x = torch.randn(1, 3, 64, 64)
    got = _eager(torch.jit.load(str(path)), x)
    for a, b in zip(got, _eager(model, x), strict=True):
        torch.testing.assert_close(a, b)


def test_training_model_is_exported_in_eval_and_restored(
    small: mnaszoo.MnasNet, tmp_path: Path
) -> None:
    small.train()
    try:
        path = mnaszoo.export(small, tmp_path / "t.pt", "torchscript")
        assert small.training
    finally:
        small.eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    torch.testing.assert_close(_eager(torch.jit.load(str(path)), x), _eager(small, x))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"format": "tflite"}, mnaszoo.InvalidArgumentError, "'onnx', 'torchscript', 'pt2'"),
        ({"batch": 0}, mnaszoo.InvalidArgumentError, "batch must be >= 1"),
        ({"batch": "static"}, mnaszoo.InvalidArgumentError, "'dynamic' or an int"),
        ({"batch": 1.5}, mnaszoo.ArgumentTypeError, "batch must be an int"),
        ({"input_size": (96,)}, mnaszoo.InvalidArgumentError, "pair"),
        ({"input_size": 0}, mnaszoo.InvalidArgumentError, "input_size must be >= 16"),
        ({"format": "pt2", "opset": 17}, mnaszoo.InvalidArgumentError, "ONNX only|'onnx' only"),
    ],
)
def test_bad_arguments(
    small: mnaszoo.MnasNet, tmp_path: Path, kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        mnaszoo.export(small, tmp_path / "x", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_not_a_module_and_missing_directory(small: mnaszoo.MnasNet, tmp_path: Path) -> None:
    with pytest.raises(mnaszoo.ArgumentTypeError, match="torch module"):
        mnaszoo.export("mnasnet_a1", tmp_path / "x.pt2", "pt2")  # type: ignore[arg-type]
    with pytest.raises(mnaszoo.InvalidArgumentError, match="does not exist"):
        mnaszoo.export(small, tmp_path / "nope" / "x.pt2", "pt2")


def test_missing_onnx_extra_says_how_to_install(
    small: mnaszoo.MnasNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnx" else real(name, *a),
    )
    with pytest.raises(mnaszoo.MnaszooError, match=r"pip install 'mnaszoo\[onnx\]'"):
        mnaszoo.export(small, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_no_file(small: mnaszoo.MnasNet, tmp_path: Path) -> None:
    (tmp_path / "keep.pt2").write_bytes(b"old")

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    broken = Broken()
    broken.register_buffer("w", torch.zeros(1))
    with pytest.raises(Exception, match="boom"):
        mnaszoo.export(broken, tmp_path / "keep.pt2", "pt2", input_size=16)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.pt2"]
    assert (tmp_path / "keep.pt2").read_bytes() == b"old"
