"""The file formats :func:`mnaszoo.export` writes. This module imports no torch, so the command
line can offer the formats without loading it."""

from __future__ import annotations

__all__ = ["EXECUTORCH_FORMATS", "FORMATS"]

FORMATS = ("onnx", "torchscript", "pt2", "executorch", "executorch-int8")
"""The formats :func:`mnaszoo.export` writes."""

EXECUTORCH_FORMATS = ("executorch", "executorch-int8")
"""The ExecuTorch ones (``.pte`` programs, ``mnaszoo[edge]``)."""
