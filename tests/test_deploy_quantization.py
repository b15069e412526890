"""``mnaszoo.quantize_int8``: a static per-channel int8 ONNX model that tracks the fp32 one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def model() -> mnaszoo.MnasNet:
    torch.manual_seed(0)
    net = mnaszoo.create("mnasnet_small", num_classes=10).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return net


@pytest.fixture(scope="module")
def quantized(model: mnaszoo.MnasNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    calibration = torch.randn(48, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    # A DataLoader-like iterable of (images, labels) batches.
    batches = [(chunk, torch.zeros(len(chunk))) for chunk in calibration.split(16)]
    path = tmp_path_factory.mktemp("int8") / "small_int8.onnx"
    assert mnaszoo.quantize_int8(model, path, batches) == path
    return path


def test_int8_model_tracks_fp32(model: mnaszoo.MnasNet, quantized: Path) -> None:
    int8 = mnaszoo.OnnxRuntimeModel(quantized)
    assert int8.num_classes == 10
    x = torch.randn(64, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = model(x)
    logits = int8(x)  # a dynamic batch: calibrated on 16, run on 64
    assert logits.shape == reference.shape
    error = (logits - reference).norm() / reference.norm()
    assert error < 0.15, f"relative error {error:.3f}"
    agree = (logits.argmax(1) == reference.argmax(1)).float().mean()
    assert agree >= 0.8, f"top-1 agreement {agree:.2f}"


def test_int8_graph_is_per_channel_with_a_float_stem(quantized: Path) -> None:
    graph = onnx.load(str(quantized)).graph
    ops = [node.op_type for node in graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # Spatial means became GlobalAveragePool (integer kernel), none left as a float ReduceMean.
    assert "ReduceMean" not in ops and "GlobalAveragePool" in ops
    initializers = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    weight_dq = [producers.get(conv.input[1]) for conv in convs]
    # The stem keeps its float weights; every other convolution reads int8 weights through a
    # DequantizeLinear with one scale per output channel.
    assert weight_dq[0] is None or weight_dq[0].op_type != "DequantizeLinear"
    quantized_convs = [dq for dq in weight_dq[1:] if dq is not None]
    assert len(quantized_convs) == len(convs) - 1
    for dq in quantized_convs:
        weight = initializers[dq.input[0]]
        scale = initializers[dq.input[1]]
        assert weight.data_type == onnx.TensorProto.INT8
        assert list(scale.dims) == [weight.dims[0]]


def test_bad_calibration_is_refused_and_nothing_written(
    model: mnaszoo.MnasNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.onnx"
    with pytest.raises(InvalidArgumentError, match="calibration is empty"):
        mnaszoo.quantize_int8(model, target, [])
    with pytest.raises(InvalidArgumentError, match="calibration is empty"):  # zero images
        mnaszoo.quantize_int8(model, target, torch.empty(0, 3, 64, 64))
    with pytest.raises(ArgumentTypeError, match="must be a float tensor"):
        mnaszoo.quantize_int8(model, target, [torch.zeros(2, 3, 64, 64, dtype=torch.uint8)])
    with pytest.raises(InvalidArgumentError, match="NaN or infinite"):
        mnaszoo.quantize_int8(model, target, torch.full((2, 3, 64, 64), float("nan")))
    with pytest.raises(InvalidArgumentError, match="share one shape"):
        mnaszoo.quantize_int8(model, target, [torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 96, 96)])
    with pytest.raises(InvalidArgumentError, match="Unknown calibration method 'kl'"):
        mnaszoo.quantize_int8(model, target, torch.zeros(1, 3, 64, 64), method="kl")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        mnaszoo.quantize_int8(model, tmp_path / "no" / "out.onnx", torch.zeros(16, 3, 64, 64))

    # A failure inside onnxruntime's quantizer leaves neither the target nor a temporary file.
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("calibration crashed")

    monkeypatch.setattr("onnxruntime.quantization.quantize_static", broken)
    with pytest.raises(RuntimeError, match="calibration crashed"):
        mnaszoo.quantize_int8(model, target, torch.zeros(16, 3, 64, 64))
    assert list(tmp_path.iterdir()) == []
