"""``mnaszoo.export``: write a model as ONNX, TorchScript, a ``torch.export`` program (.pt2) or an
ExecuTorch program (.pte, fp32 or int8)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .._io import atomic_path, check_writable
from .._modes import eval_mode
from .._validate import check_choice, check_input_size, check_int
from ..errors import ArgumentTypeError, InvalidArgumentError
from ._onnx_export import NATIVE_OPSET, export_onnx
from ._torchscript_fix import drop_dangling_builtin_ids
from .formats import EXECUTORCH_FORMATS, FORMATS

__all__ = ["FORMATS", "export"]


ExportFormat = Literal["onnx", "torchscript", "pt2", "executorch", "executorch-int8"]


def _check_executorch_args(fmt: object, calibration: object, preprocess: object) -> None:
    if fmt not in EXECUTORCH_FORMATS and preprocess:
        raise InvalidArgumentError(
            f"preprocess applies to the ExecuTorch formats only, not {fmt!r}."
        )
    if fmt == "executorch-int8" and calibration is None:
        raise InvalidArgumentError(
            "format='executorch-int8' needs calibration=: a few hundred preprocessed training"
            " images (an NCHW float tensor or a DataLoader), as mnaszoo.make_transform makes them."
        )
    if fmt != "executorch-int8" and calibration is not None:
        raise InvalidArgumentError(
            f"calibration applies to format='executorch-int8' only, not {fmt!r}; for int8 ONNX"
            " use mnaszoo.quantize_int8."
        )


def _check_args(
    model: object, fmt: object, batch: object, input_size: object, opset: object
) -> tuple[int | None, tuple[int, int]]:
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be a torch module, got {type(model).__name__}.")
    check_choice("export format", fmt, FORMATS)
    static: int | None
    if batch is None:
        static = 1 if fmt in EXECUTORCH_FORMATS else None
    elif batch == "dynamic":
        if fmt in EXECUTORCH_FORMATS:
            raise InvalidArgumentError(
                "ExecuTorch programs have a static batch; pass batch= an int (default 1)."
            )
        static = None
    elif isinstance(batch, str):
        raise InvalidArgumentError(f"batch must be 'dynamic' or an int >= 1, got {batch!r}.")
    else:
        static = check_int("batch", batch, minimum=1)
    size = (224, 224) if input_size is None else check_input_size(input_size)
    if opset is not None:
        if fmt != "onnx":
            raise InvalidArgumentError(f"opset applies to format='onnx' only, not {fmt!r}.")
        if check_int("opset", opset) < NATIVE_OPSET:
            raise InvalidArgumentError(
                f"opset {opset} is not supported: accepted opsets are {NATIVE_OPSET} up to the"
                " newest the installed onnx knows (torch's exporter writes"
                f" {NATIVE_OPSET} and converts only upwards; onnx's down-conversion changed"
                " MnasNet's outputs). Leave opset unset for the default."
            )
    return static, size


def _example_input(model: nn.Module, batch: int, size: tuple[int, int]) -> torch.Tensor:
    config = getattr(model, "config", None)
    in_chans = int(getattr(config, "in_chans", 3))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    return torch.randn(batch, in_chans, *size, device=device, dtype=dtype)


def _export_pt2(model: nn.Module, example: torch.Tensor, dynamic: bool, temp: Path) -> None:
    dynamic_shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    program = torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes)
    # Serialised in memory first: torch's zip writer aborts the whole process (in a destructor,
    # at garbage collection) when the disk fills under it; a plain write raises ENOSPC instead.
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    temp.write_bytes(buffer.getvalue())


def _export_torchscript(model: nn.Module, temp: Path) -> None:
    # A torch bug leaves freed ids in TorchScript's builtin table once torch.compile has
    # run in this process; a module attribute reusing one fails to script at random.
    drop_dangling_builtin_ids()
    scripted = torch.jit.script(model)
    buffer = io.BytesIO()  # in memory first, as for pt2
    torch.jit.save(scripted, buffer)
    temp.write_bytes(buffer.getvalue())


def export(
    model: nn.Module,
    path: str | os.PathLike[str],
    format: ExportFormat = "onnx",
    *,
    batch: Literal["dynamic"] | int | None = None,
    input_size: int | tuple[int, int] | None = None,
    opset: int | None = None,
    preprocess: bool = False,
    calibration: torch.Tensor | Iterable[Any] | None = None,
) -> Path:
    """Write ``model`` to ``path`` as ONNX, TorchScript, a ``torch.export`` or ExecuTorch program.

    The model is exported in eval mode (a model in training mode is switched to eval for the
    export and back afterwards); pass an :func:`mnaszoo.optimize_for_inference` copy to export
    the BatchNorm-folded graph. The file appears only once it is complete: it is written beside
    ``path`` and moved into place (an existing file is replaced).

    Formats:

    - ``"onnx"``: ``torch.onnx.export`` with the ``torch.export``-based exporter
      (``dynamo=True``), one self-contained file; input ``"input"`` (NCHW float), output
      ``"logits"`` (``"output"`` without a classifier, ``"features_<i>"`` for a backbone). Needs
      ``pip install 'mnaszoo[onnx]'`` (``onnx``, ``onnxscript``; ``onnxruntime`` to run it).
      ``opset`` picks the ONNX opset: 18 (the default) up to the newest the installed ``onnx``
      knows; the file is checked to declare it.
    - ``"torchscript"``: ``torch.jit.script``, saved with ``torch.jit.save``; load with
      ``torch.jit.load``. Scripted programs accept any batch and input size: ``batch`` and
      ``input_size`` do not constrain them. (PyTorch deprecates TorchScript; prefer ``"pt2"``.)
    - ``"pt2"``: ``torch.export.export``, saved with ``torch.export.save``; load with
      ``torch.export.load(path).module()``.
    - ``"executorch"``: an ExecuTorch program (``.pte``) delegated to XNNPACK, for Android, iOS
      and embedded Linux (see the deployment guide, docs/deploy.md); static batch (default 1)
      and image size (default: the weights' recipe); ``preprocess=True`` puts the
      normalisation in the program (a uint8 NHWC image in). Run it with
      :class:`mnaszoo.ExecuTorchModel`. Needs ``pip install "mnaszoo[edge]"``.
    - ``"executorch-int8"``: the same, quantized to int8 for XNNPACK (PT2E, per-channel
      weights, static activation ranges) after calibration on ``calibration``.

    Args:
        model: the model to export (any ``nn.Module`` taking one NCHW tensor).
        path: the output file (``.onnx``, ``.pt``, ``.pt2`` by convention); its directory must
            exist.
        format: one of :data:`FORMATS`.
        batch: ``"dynamic"`` for any batch size, or an int to fix it (ONNX and pt2 then reject
            other batch sizes). Default (``None``): dynamic, but 1 for the ExecuTorch formats,
            which need a static batch.
        input_size: the traced image size, an int or ``(height, width)``; fixed in the exported
            ONNX, pt2 and ExecuTorch graphs. Default (``None``): 224; for ExecuTorch the
            weights' recipe (int8: the calibration images' size).
        opset: the ONNX opset version (ONNX only).
        preprocess: ExecuTorch only: a uint8 ``(batch, height, width, 3)`` RGB input,
            normalised inside the program with the weights' mean and std.
        calibration: ``"executorch-int8"`` only (and required there): preprocessed images
            exactly as the model sees them, as :func:`mnaszoo.quantize_int8` takes them.

    Returns:
        The path written.

    Raises:
        InvalidArgumentError: an unknown format, a bad ``batch``, ``input_size`` or ``opset``,
            ``calibration`` missing for int8 (or empty, or given to another format), or a
            ``path`` that cannot be written (a directory, a missing or read-only folder),
            checked before exporting.
        ArgumentTypeError: ``model`` is not a torch module, or an argument has the wrong type.
        MnaszooError: ONNX export without the ``onnx`` extra installed, ExecuTorch export
            without the ``edge`` extra.

    Example:
        >>> import tempfile, torch, mnaszoo
        >>> model = mnaszoo.create("mnasnet_small").eval()
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = mnaszoo.export(model, f"{tmp}/small.pt2", "pt2", input_size=96)
        ...     program = torch.export.load(path).module()
        ...     program(torch.randn(3, 3, 96, 96)).shape
        torch.Size([3, 1000])
    """
    static, size = _check_args(model, format, batch, input_size, opset)
    _check_executorch_args(format, calibration, preprocess)
    target = Path(os.fspath(path))
    # Before the export, which takes seconds: a directory, a missing folder or a read-only one
    # is refused up front, never after the work with an error about a temporary file.
    check_writable(target, "the export")
    if format in EXECUTORCH_FORMATS:
        from .executorch import export_executorch

        return export_executorch(
            model,
            path,
            input_size=input_size,
            batch=1 if static is None else static,
            preprocess=preprocess,
            calibration=calibration,
        )
    # torch.export specialises a traced size of 1, so a dynamic batch is traced with 2.
    example = _example_input(model, 2 if static is None else static, size)
    with eval_mode(model), atomic_path(target, "the export") as temp:
        if format == "onnx":
            export_onnx(model, example, static is None, opset, temp)
        elif format == "pt2":
            _export_pt2(model, example, static is None, temp)
        else:
            _export_torchscript(model, temp)
    return target
