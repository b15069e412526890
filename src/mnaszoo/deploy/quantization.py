"""``mnaszoo.quantize_int8``: static, per-channel int8 post-training quantization for CPUs.

The recipe, chosen by measurement (docs/export.md has the figures and the command):

1. fold BatchNorm (:func:`mnaszoo.optimize_for_inference`) and export to ONNX with a dynamic
   batch (:func:`mnaszoo.export`);
2. ``onnxruntime.quantization.quant_pre_process`` (shape inference and graph clean-up), and the
   spatial means rewritten as ``GlobalAveragePool`` (which has an integer kernel);
3. ``onnxruntime.quantization.quantize_static`` in the QDQ format: weights int8 per output
   channel (symmetric), activations uint8 per tensor, ranges calibrated on the user's images.

onnxruntime executes the result with its integer kernels (``QLinearConv``, ``QGemm``, ...), which
use the VNNI dot-product instructions where the CPU has them. The first convolution (3 input
channels) is kept in float by default: quantized, it ran slower than in fp32 and its input, the
normalised image, is the tensor that loses the most to 8 bits.

Why not PyTorch's PT2E flow: its int8 speed on CPU comes from ``torch.compile`` with the x86
Inductor backend (a C++ toolchain at run time), and the model would stay a torch program; the
ONNX Runtime file runs anywhere onnxruntime does, without a compiler.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .._validate import check_bool
from ..errors import ArgumentTypeError, InvalidArgumentError, MnaszooError
from ._calibration import calibration_batches

__all__ = ["CALIBRATION_METHODS", "quantize_int8"]

CalibrationMethod = Literal["minmax", "entropy", "percentile"]
CALIBRATION_METHODS: tuple[str, ...] = ("minmax", "entropy", "percentile")
"""How activation ranges are set from the calibration images (onnxruntime's methods)."""

MIN_AGREEMENT = 0.5
"""The quantized model must pick the float model's top-1 class on at least this share of the
calibration images, or it is refused (a sound int8 MnasNet agrees on 90% or more)."""


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of batches."""

    def __init__(self, name: str, batches: list[torch.Tensor]) -> None:
        self._feeds = iter([{name: b.contiguous().numpy()} for b in batches])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)


def _spatial_means_to_global_pools(path: Path) -> int:
    """Rewrite ``ReduceMean(axes=[2, 3], keepdims=1)`` (the squeeze-and-excitation and pooling
    means as torch exports them) into ``GlobalAveragePool``, in place; return how many.

    The two are the same operation on NCHW tensors, but onnxruntime's quantizer has an integer
    kernel for the second (``QLinearGlobalAveragePool``) and leaves the first in float between a
    dequantize and a quantize; on MnasNet-A1 that float detour was about 9% of the int8 time.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    # quant_pre_process ran shape inference: the ranks of intermediate tensors are known.
    ranks = {
        info.name: len(info.type.tensor_type.shape.dim)
        for info in (*graph.value_info, *graph.input, *graph.output)
        if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape")
    }
    rewritten = 0
    for index, node in enumerate(list(graph.node)):
        if node.op_type != "ReduceMean":
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axes = attributes.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1] in initializers:
            axes = numpy_helper.to_array(initializers[node.input[1]]).tolist()
        rank = ranks.get(node.input[0])
        if axes is not None and rank == 4:  # negative axes count from the end
            axes = sorted(axis % 4 for axis in axes)
        if rank != 4 or list(axes or ()) != [2, 3] or attributes.get("keepdims", 1) != 1:
            continue
        pool = helper.make_node(
            "GlobalAveragePool", [node.input[0]], list(node.output), name=f"{node.name}_pool"
        )
        graph.node.remove(node)
        graph.node.insert(index, pool)
        rewritten += 1
    used = {name for node in graph.node for name in node.input}
    for tensor in list(graph.initializer):
        if tensor.name not in used:
            graph.initializer.remove(tensor)
    onnx.save(model, str(path))
    return rewritten


def _check_agreement(model: nn.Module, path: Path, batches: list[torch.Tensor]) -> None:
    """Refuse a quantized file whose top-1 class differs from the float model's on most of the
    calibration images: a broken calibration must not leave a file that looks fine."""
    from .onnx_runtime import open_session
    from .optimize import optimize_for_inference

    reference = optimize_for_inference(model, channels_last=False).cpu().float()
    session = open_session(path)
    name = session.get_inputs()[0].name
    agree = total = 0
    with torch.no_grad():
        for batch in batches:
            expected = reference(batch).argmax(1)
            (logits, *_) = session.run(None, {name: batch.contiguous().numpy()})
            agree += int((torch.from_numpy(logits).argmax(1) == expected).sum())
            total += len(batch)
    if agree < MIN_AGREEMENT * total:
        raise InvalidArgumentError(
            f"The int8 model picks the float model's top-1 class on only {agree} of the {total}"
            " calibration images; it was not written. Calibrate on more images that are"
            " preprocessed exactly as the model sees them (mnaszoo.make_transform), or try"
            " method='percentile'."
        )


def _first_conv(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if node.op_type == "Conv"][:1]


def quantize_int8(
    model: nn.Module,
    path: str | os.PathLike[str],
    calibration: torch.Tensor | Iterable[Any],
    *,
    method: CalibrationMethod = "minmax",
    per_channel: bool = True,
    keep_stem_float: bool = True,
    reduce_range: bool = False,
    check_agreement: bool = True,
) -> Path:
    """Write an int8 ONNX model of ``model``, calibrated on ``calibration`` images.

    Run the file with :class:`mnaszoo.OnnxRuntimeModel` (or any onnxruntime session). It keeps
    a dynamic batch; the image size is that of the calibration images.

    Args:
        model: a trained mnaszoo model (any module taking one NCHW tensor); it is not changed.
        path: the ``.onnx`` file to write; it appears only once complete.
        calibration: preprocessed images exactly as the model sees them (the weights' own
            transform, :func:`mnaszoo.make_transform`): an NCHW tensor, or an iterable of
            tensors or of ``(images, labels)`` batches (a DataLoader). A few hundred images
            from the training data are enough.
        method: ``"minmax"`` (observed ranges), ``"entropy"`` or ``"percentile"`` (clip
            outliers; slower to calibrate).
        per_channel: one weight scale per output channel (recommended: depthwise convolutions
            lose accuracy with one scale per tensor).
        keep_stem_float: leave the first convolution in float (see the module notes).
        reduce_range: 7-bit weights, for CPUs without VNNI whose ``u8 x s8`` products may
            saturate (AVX2 and AVX-512 without VNNI); not needed on VNNI or ARM.
        check_agreement: refuse a result whose top-1 class agrees with the float model's on
            fewer than half of the calibration images. Turn it off only to time a model whose
            weights are random (as ``mnaszoo bench`` does): its top-1 is noise either way.

    Returns:
        The path written.

    Raises:
        MnaszooError: onnx, onnxscript or onnxruntime is missing (``pip install 'mnaszoo[onnx]'``).
        InvalidArgumentError: too few (under ``MIN_CALIBRATION_IMAGES``, 16), non-finite or
            mixed-shape calibration images, an unknown method, a missing output directory, or a
            result whose top-1 class agrees with the float model's on under half of the
            calibration images (nothing is written then).
        ArgumentTypeError: ``model`` is not a torch module, or calibration is not tensors.

    Example:
        >>> import torch, mnaszoo
        >>> model = mnaszoo.create("mnasnet_small", num_classes=10).eval()
        >>> images = torch.randn(32, 3, 64, 64)  # your preprocessed training images
        >>> path = mnaszoo.quantize_int8(model, "small_int8.onnx", images)  # doctest: +SKIP
        >>> mnaszoo.OnnxRuntimeModel(path)(images[:4]).shape  # doctest: +SKIP
        torch.Size([4, 10])
    """
    from .._io import atomic_path
    from .onnx_runtime import export_folded, onnxruntime_available

    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be a torch module, got {type(model).__name__}.")
    if method not in CALIBRATION_METHODS:
        raise InvalidArgumentError(
            f"Unknown calibration method {method!r}; accepted: {', '.join(CALIBRATION_METHODS)}."
        )
    for flag, value in (
        ("per_channel", per_channel),
        ("keep_stem_float", keep_stem_float),
        ("reduce_range", reduce_range),
        ("check_agreement", check_agreement),
    ):
        check_bool(flag, value)
    batches = calibration_batches(calibration)
    if not onnxruntime_available():
        raise MnaszooError("int8 quantization needs onnx extras: pip install 'mnaszoo[onnx]'.")
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    target = Path(os.fspath(path))
    size = (int(batches[0].shape[2]), int(batches[0].shape[3]))
    calibrate = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    with (
        tempfile.TemporaryDirectory(prefix="mnaszoo-int8-") as tmp,
        atomic_path(target, "the int8 model") as temp,
    ):
        fp32 = Path(tmp) / "fp32.onnx"
        prepared = Path(tmp) / "prepared.onnx"
        export_folded(model, fp32, size)
        quant_pre_process(str(fp32), str(prepared))
        _spatial_means_to_global_pools(prepared)
        quantize_static(
            str(prepared),
            str(temp),
            _Reader("input", batches),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_first_conv(prepared) if keep_stem_float else None,
            calibrate_method=calibrate,
            calibration_providers=["CPUExecutionProvider"],
        )
        if check_agreement:
            _check_agreement(model, temp, batches)
    return target
