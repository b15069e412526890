"""ExecuTorch export: a ``.pte`` program delegated to XNNPACK, in fp32 or int8, for phones.

ExecuTorch is PyTorch's on-device runtime (Android, iOS, embedded Linux); XNNPACK is its CPU
backend for ARM and x86. The recipe:

1. fold BatchNorm into the convolutions (:func:`mnaszoo.optimize_for_inference`, without
   ``channels_last``): the same numbers, and half the graph for the lowering passes, which cost
   about a second per few dozen nodes;
2. optionally quantize (int8): ``torch.export`` with a dynamic batch, PT2E
   ``prepare_pt2e`` with ExecuTorch's ``XNNPACKQuantizer`` (symmetric int8 weights per output
   channel, int8 activations per tensor, static ranges), calibration on the user's images,
   ``convert_pt2e``;
3. optionally put the preprocessing in the graph (:class:`ImageInput`): a uint8 ``NHWC`` image
   in, the weights' normalisation inside, the way a phone's camera frame arrives;
4. ``torch.export`` at a static shape, ``to_edge_transform_and_lower`` with the
   ``XnnpackPartitioner`` and ``to_executorch``; the bytes are written atomically.

:class:`ExecuTorchModel` runs a ``.pte`` file with ExecuTorch's Python runtime behind a torch
model's call signature, as :class:`mnaszoo.OnnxRuntimeModel` does for ONNX.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._modes import eval_mode
from .._validate import check_bool, check_input_size, check_int
from .._wrap import reading
from ..errors import ArgumentTypeError, IntegrityError, InvalidArgumentError, MnaszooError
from ..weights._files import SHA256

__all__ = [
    "EDGE_EXTRA",
    "ExecuTorchModel",
    "ImageInput",
    "executorch_available",
    "executorch_threads",
    "export_executorch",
    "set_executorch_threads",
]

EDGE_EXTRA = 'pip install "mnaszoo[edge]"'
"""How to install what this module needs (``executorch``, which brings ``torchao``)."""


def executorch_available() -> bool:
    """Whether ExecuTorch (and the ``torchao`` it quantizes with) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("executorch", "torchao"))


def _require(what: str) -> None:
    if not executorch_available():
        raise MnaszooError(f"{what} needs ExecuTorch: {EDGE_EXTRA}.")


def _portable_lib() -> Any:
    _require("Running ExecuTorch programs")
    from executorch.extension.pybindings import portable_lib

    return portable_lib


def executorch_threads() -> int:
    """The threads of ExecuTorch's CPU thread pool (XNNPACK runs on it) in this process.

    It starts at the number of CPU cores ExecuTorch sees; :func:`set_executorch_threads`
    changes it.

    Raises:
        MnaszooError: ExecuTorch is not installed.
    """
    return int(_portable_lib()._threadpool_get_thread_count())


def set_executorch_threads(threads: int) -> int:
    """Resize ExecuTorch's CPU thread pool for this process; return the new size.

    The pool is process-wide (every loaded program shares it); do not call this while another
    thread is running a program.

    Raises:
        MnaszooError: ExecuTorch is not installed.
        InvalidArgumentError: ``threads`` is not a positive int.
    """
    check_int("threads", threads, minimum=1)
    lib = _portable_lib()
    if int(lib._threadpool_get_thread_count()) != threads:
        lib._unsafe_reset_threadpool(threads)
    return int(lib._threadpool_get_thread_count())


class ImageInput(nn.Module):
    """A model behind its preprocessing: a uint8 ``(batch, height, width, 3)`` image in.

    The image is what a phone's camera or bitmap API hands over (RGB, channels last, already
    resized and cropped to the model's input size by the app); the normalisation is the
    weights' own (``mean``, ``std``), in the arithmetic and order of
    :func:`mnaszoo.make_transform`: ``(x / 255 - mean) / std``. A one-channel model
    (``in_chans=1``) gets the mean of the three normalised planes, the grey image
    :func:`mnaszoo.predict` feeds it.

    Args:
        model: the model taking normalised NCHW float images.
        mean: per-channel mean of the weights' preprocessing (3 values).
        std: per-channel standard deviation of the weights' preprocessing (3 values, > 0).
        in_chans: the channels ``model`` takes: 3 (RGB) or 1 (grey).

    Raises:
        InvalidArgumentError: ``mean``/``std`` are not 3 finite values with ``std > 0``, or
            ``in_chans`` is not 1 or 3.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, model: nn.Module, mean: Sequence[float], std: Sequence[float], in_chans: int = 3
    ) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3:
            raise InvalidArgumentError(
                f"mean and std must have one value per RGB channel (3 each), got {mean!r} and"
                f" {std!r}."
            )
        if not all(math.isfinite(v) for v in (*mean, *std)) or min(std) <= 0:
            raise InvalidArgumentError(
                f"mean must be finite and std finite and > 0, got mean {mean!r}, std {std!r}."
            )
        if in_chans not in (1, 3):
            raise InvalidArgumentError(
                f"in_chans must be 1 or 3 (an RGB image in), got {in_chans!r}."
            )
        self.model = model
        self.grey = in_chans == 1
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, image: torch.Tensor) -> Any:
        """Normalise a uint8 NHWC image batch and run the model on it."""
        x = image.permute(0, 3, 1, 2).to(torch.float32).div(255.0)
        x = (x - self.mean) / self.std
        if self.grey:
            x = x.mean(dim=1, keepdim=True)
        return self.model(x)


def _recipe(model: nn.Module) -> Any:
    from ..data.transforms import make_transform

    weights_info = getattr(model, "weights_info", None)
    return make_transform(weights_info).preprocessing


def _folded(model: nn.Module) -> nn.Module:
    """An fp32 eval copy with BatchNorm folded (mnaszoo models), else the model itself."""
    from ..models.mnasnet import MnasNet, MnasNetFeatures
    from .optimize import is_inference_optimized, optimize_for_inference

    if isinstance(model, (MnasNet, MnasNetFeatures)) and not is_inference_optimized(model):
        return optimize_for_inference(model, channels_last=False).cpu().float()
    return model


def _quantized(model: nn.Module, batches: list[torch.Tensor]) -> nn.Module:
    """PT2E static int8 for XNNPACK: per-channel symmetric weights, per-tensor activations."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
    # A dynamic batch, so calibration runs whole chunks; torch.export specialises a size of 1.
    example = torch.zeros(2, *batches[0].shape[1:])
    graph = torch.export.export(
        model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},)
    ).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for batch in batches:
            prepared(batch)
    converted: nn.Module = convert_pt2e(prepared)
    return converted


def _lower(module: nn.Module, example: torch.Tensor) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(module, (example,))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    return bytes(edge.to_executorch().buffer)


def _size(input_size: object) -> tuple[int, int] | None:
    return None if input_size is None else check_input_size(input_size)


def export_executorch(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_size: int | tuple[int, int] | None = None,
    batch: int = 1,
    preprocess: bool = False,
    calibration: torch.Tensor | Iterable[Any] | None = None,
) -> Path:
    """Write ``model`` as an ExecuTorch ``.pte`` program delegated to XNNPACK.

    :func:`mnaszoo.export` with ``format="executorch"`` or ``"executorch-int8"`` calls this;
    the arguments are the same.

    Args:
        model: a mnaszoo model (or any module taking one NCHW float tensor); it is not changed.
            BatchNorm is folded in a copy first.
        path: the ``.pte`` file; it appears only once complete.
        input_size: the static image size, an int or ``(height, width)``. Default: the
            calibration images' size for int8, else the weights' recipe
            (``model.weights_info``; 224 for a model without weights).
        batch: the static batch size (ExecuTorch programs have fixed shapes).
        preprocess: take a uint8 ``(batch, height, width, 3)`` RGB image and normalise it
            inside the program with the weights' mean and std (:class:`ImageInput`), instead
            of a normalised NCHW float tensor.
        calibration: for int8: preprocessed images exactly as the model sees them (an NCHW
            float tensor, or an iterable of tensors or ``(images, labels)`` batches), as
            :func:`mnaszoo.quantize_int8` takes them. ``None``: fp32.

    Returns:
        The path written.

    Raises:
        MnaszooError: ExecuTorch is not installed (``pip install "mnaszoo[edge]"``).
        InvalidArgumentError: empty, too small (fewer than 2 images), non-finite or mixed-shape
            calibration, calibration of another size than ``input_size``, a bad size or batch,
            or a missing output directory.
        ArgumentTypeError: ``model`` is not a torch module, or calibration is not float tensors.
    """
    from .._io import atomic_path
    from ._calibration import calibration_batches

    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be a torch module, got {type(model).__name__}.")
    check_int("batch", batch, minimum=1)
    check_bool("preprocess", preprocess)
    size = _size(input_size)
    batches: list[torch.Tensor] | None = None
    if calibration is not None:
        batches = calibration_batches(calibration)
        shape = tuple(batches[0].shape[2:])
        if size is None:
            size = (int(shape[0]), int(shape[1]))
        elif shape != size:
            raise InvalidArgumentError(
                f"calibration images are {shape[0]}x{shape[1]} but input_size is"
                f" {size[0]}x{size[1]}; calibrate at the size you export."
            )
    recipe = _recipe(model)
    if size is None:
        size = (recipe.input_size, recipe.input_size)
    _require("ExecuTorch export" if batches is None else "ExecuTorch int8 export")
    target = Path(os.fspath(path))
    if target.is_dir():
        raise InvalidArgumentError(f"Cannot write {target}: it is a directory; name a .pte file.")
    if not target.parent.is_dir():
        raise InvalidArgumentError(
            f"Cannot write {target}: the directory {target.parent} does not exist."
        )
    with eval_mode(model):  # every module's own flag comes back afterwards
        module = _folded(model)
        in_chans = int(getattr(getattr(model, "config", None), "in_chans", 3))
        example = torch.randn(batch, in_chans, *size)
        if batches is not None:
            if batches[0].shape[1] != in_chans:
                raise InvalidArgumentError(
                    f"calibration images have {batches[0].shape[1]} channels; the model takes"
                    f" {in_chans}."
                )
            module = _quantized(module, batches)
        if preprocess:
            module = ImageInput(module, recipe.mean, recipe.std, in_chans=in_chans)
            example = torch.zeros(batch, *size, 3, dtype=torch.uint8)  # RGB, whatever in_chans
        with torch.no_grad():
            data = _lower(module, example)
    with atomic_path(target, "the ExecuTorch program") as temp:
        temp.write_bytes(data)
    return target


def _checked_bytes(path: Path, sha256: object) -> bytes:
    """The bytes of ``path``, if their sha256 is ``sha256``."""
    if not isinstance(sha256, str) or not SHA256.fullmatch(sha256.lower()):
        raise InvalidArgumentError(f"sha256 must be 64 hex digits, got {sha256!r}.")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.lower():
        raise IntegrityError(
            f"{path} has sha256 {digest}, expected {sha256}: it was changed after it was"
            " written. Copy it again from where it was made."
        )
    return data


class ExecuTorchModel:
    """A ``.pte`` program run by ExecuTorch's Python runtime, called like a torch model.

    Args:
        path: a ``.pte`` file with one input (from :func:`mnaszoo.export`).
        threads: resize ExecuTorch's process-wide thread pool to this many threads
            (:func:`set_executorch_threads`); ``None`` keeps it.
        num_classes: the model's number of outputs, if known (read from the program
            otherwise).
        weights_info: the weights' record, so that :func:`mnaszoo.predict` finds their labels
            and preprocessing.
        sha256: the file's expected sha256 (64 hex), as for :class:`mnaszoo.OnnxRuntimeModel`:
            the bytes that are run are the bytes that were checked.

    Attributes:
        input_shape: the program's static input shape.
        input_dtype: the input's dtype (``torch.uint8`` for a program with preprocessing).

    Raises:
        MnaszooError: ExecuTorch is not installed.
        CorruptFileError: the file is not a program ExecuTorch can load (damaged, truncated,
            of another format).
        IntegrityError: the file's sha256 is not ``sha256``.
        InvalidArgumentError: ``path`` does not exist, or ``sha256`` is not 64 hex digits.

    Example:
        >>> import torch, mnaszoo
        >>> model = mnaszoo.create("mnasnet_small", num_classes=3).eval()
        >>> path = mnaszoo.export(model, "small.pte", "executorch", input_size=64)  # doctest: +SKIP
        >>> mnaszoo.ExecuTorchModel(path)(torch.randn(1, 3, 64, 64)).shape  # doctest: +SKIP
        torch.Size([1, 3])
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        num_classes: int | None = None,
        weights_info: Any = None,
        sha256: str | None = None,
    ) -> None:
        _require("Running ExecuTorch programs")
        from executorch.runtime import Runtime

        self.path = Path(os.fspath(path))
        if not self.path.is_file():
            raise InvalidArgumentError(f"No ExecuTorch program at {self.path}.")
        source: Path | bytes = self.path
        if sha256 is not None:
            source = _checked_bytes(self.path, sha256)
        if threads is not None:
            set_executorch_threads(threads)
        # The runtime raises RuntimeError/ValueError (or aborts its load) on bad files.
        with reading(
            "an ExecuTorch program",
            self.path,
            "Copy it again from where it was made, or export it again with"
            " mnaszoo.export(model, path, format='executorch').",
        ):
            program = Runtime.get().load_program(source)
            method = program.load_method("forward")
        # A program loaded from bytes runs from that buffer: it must live as long as the method.
        self._buffer = source
        self._program = program
        if method is None:
            raise MnaszooError(f"{self.path} has no 'forward' method.")
        self._method = method
        meta = method.metadata
        if meta.num_inputs() != 1:
            raise InvalidArgumentError(
                f"{self.path} has {meta.num_inputs()} inputs; ExecuTorchModel runs one-input"
                " programs."
            )
        info = meta.input_tensor_meta(0)
        self.input_shape: tuple[int, ...] = tuple(int(s) for s in info.sizes())
        # ExecuTorch's ScalarType codes, as c10 numbers them: 0 is uint8, 6 is float32.
        self.input_dtype: torch.dtype = {0: torch.uint8, 6: torch.float32}.get(
            int(info.dtype()), torch.float32
        )
        out: Sequence[int] = meta.output_tensor_meta(0).sizes() if meta.num_outputs() else ()
        graph_classes = int(out[-1]) if len(out) == 2 else 0
        self.num_classes = int(num_classes if num_classes is not None else graph_classes)
        self.weights_info = weights_info

    def run(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All outputs of the program for one input tensor of :attr:`input_shape`."""
        if not isinstance(x, torch.Tensor):
            raise ArgumentTypeError(f"expected a tensor, got {type(x).__name__}.")
        if tuple(x.shape) != self.input_shape:
            raise InvalidArgumentError(
                f"{self.path.name} takes inputs of shape {self.input_shape}, got"
                f" {tuple(x.shape)}; export again for that shape."
            )
        if x.dtype != self.input_dtype:
            raise InvalidArgumentError(
                f"{self.path.name} takes {self.input_dtype} inputs, got {x.dtype}."
            )
        outputs = self._method.execute([x.detach().to("cpu").contiguous()])
        return [torch.as_tensor(o) for o in outputs]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The program's first output (the logits of a classifier)."""
        return self.run(x)[0]

    def __repr__(self) -> str:
        return f"ExecuTorchModel({str(self.path)!r}, input_shape={self.input_shape})"
