"""ONNX export of a module, shared by :func:`mnaszoo.export`, the onnxruntime backend and the
search's latency measurements."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..errors import InvalidArgumentError, MnaszooError

__all__ = ["NATIVE_OPSET", "export_onnx", "file_opset", "output_names"]

NATIVE_OPSET = 18
"""The opset torch's exporter writes; lower ones are refused: onnx's down-converter rewrote
MnasNet's graph into one whose outputs differ (by 0.3 in the logits, measured), and torch's
exporter only converts upwards."""


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence torch's exporter chatter (optional torchvision ops, deprecation notes) unless
    mnaszoo's logger is at DEBUG: the export either works or raises."""
    if logging.getLogger("mnaszoo").isEnabledFor(logging.DEBUG):
        yield
        return
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def file_opset(path: Path) -> int | None:
    """The default-domain opset an ONNX file declares."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _check_opset(opset: int | None) -> None:
    import onnx

    newest = int(onnx.defs.onnx_opset_version())
    if opset is not None and not NATIVE_OPSET <= opset <= newest:
        raise InvalidArgumentError(
            f"opset {opset} is not supported: accepted opsets are {NATIVE_OPSET} to {newest}"
            f" (torch's exporter writes {NATIVE_OPSET} and converts only upwards; the installed"
            f" onnx knows opsets up to {newest}). Leave opset unset for the default."
        )


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
    _check_opset(opset)
    outputs = output_names(model, example)
    dynamic_shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    # The torch.export-based exporter (dynamo=True, the default since PyTorch 2.9); the legacy
    # TorchScript-based one is deprecated. external_data=False: one self-contained file.
    with _quiet_exporter():
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
    written = file_opset(temp)
    if opset is not None and written != opset:
        # The exporter falls back to its own opset when its conversion fails (with only a
        # logged traceback): a file of another opset than asked is an error, not a surprise.
        raise MnaszooError(
            f"torch's ONNX exporter wrote opset {written} instead of the requested {opset};"
            f" leave opset unset (opset {NATIVE_OPSET}) or try another opset."
        )
