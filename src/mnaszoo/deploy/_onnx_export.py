"""ONNX export of a module, shared by :func:`mnaszoo.export`, the onnxruntime backend and the
search's latency measurements."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from ..errors import MnaszooError

__all__ = ["export_onnx", "output_names"]


def output_names(model: nn.Module, example: torch.Tensor) -> list[str]:
    """The graph's output names: ``logits`` (or ``output`` headless), or one per feature map."""
    with torch.no_grad():
        outputs = model(example)
    if isinstance(outputs, torch.Tensor):
        return ["logits" if getattr(model, "num_classes", 0) else "output"]
    return [f"features_{i}" for i in range(len(outputs))]


def export_onnx(
    model: nn.Module, example: torch.Tensor, dynamic: bool, opset: int | None, temp: Path
) -> None:
    """Export ``model`` for ``example`` to the ONNX file ``temp`` (torch.export-based exporter);
    ``dynamic`` makes the batch dimension dynamic, ``opset`` ``None`` takes the exporter's."""
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise MnaszooError(
            f"ONNX export needs {' and '.join(missing)}: pip install 'mnaszoo[onnx]'."
        )
    outputs = output_names(model, example)
    dynamic_shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    # The torch.export-based exporter (dynamo=True, the default since PyTorch 2.9); the legacy
    # TorchScript-based one is deprecated. external_data=False: one self-contained file.
    torch.onnx.export(
        model,
        (example,),
        str(temp),
        input_names=["input"],
        output_names=outputs,
        opset_version=opset,
        dynamo=True,
        external_data=False,
        dynamic_shapes=dynamic_shapes,
        verbose=False,
    )
