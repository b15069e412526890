"""Fast inference and deployment: BatchNorm folding, export, the onnxruntime and ExecuTorch
backends, int8 quantization and the inference benchmark."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .executorch import ExecuTorchModel as ExecuTorchModel
    from .exporting import export as export
    from .onnx_runtime import OnnxRuntimeModel as OnnxRuntimeModel
    from .optimize import optimize_for_inference as optimize_for_inference
    from .quantization import quantize_int8 as quantize_int8

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".executorch": ("ExecuTorchModel",),
        ".exporting": ("export",),
        ".onnx_runtime": ("OnnxRuntimeModel",),
        ".optimize": ("optimize_for_inference",),
        ".quantization": ("quantize_int8",),
    },
)
