"""Run a mnaszoo model with onnxruntime: the fastest fp32 (and int8) path on CPUs.

:class:`OnnxRuntimeModel` wraps an ``onnxruntime.InferenceSession`` behind the call signature of
a torch model (an NCHW tensor in, logits out) and carries the model's ``num_classes`` and
``weights_info``, so :func:`mnaszoo.predict` and :func:`mnaszoo.make_transform` treat it like the
module it came from.

:meth:`OnnxRuntimeModel.from_model` exports a BatchNorm-folded copy once and keeps the ``.onnx``
file in mnaszoo's cache (``<cache>/onnx/``), named by a digest of everything that determines the
graph (the model's class, configuration and tensors, the input size, mnaszoo's and torch's
versions); a later process with the same model reuses the file instead of exporting again, and a
changed model (fine-tuned, different weights) gets a new file. The file's sha256 is recorded beside
it (``<name>.onnx.sha256``) and checked before each use: a cached file that was replaced or
damaged is exported again rather than run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import write_text_atomic
from .._validate import check_input_size, check_int
from .._wrap import reading
from ..errors import (
    ArgumentTypeError,
    CacheNotWritableError,
    IntegrityError,
    InvalidArgumentError,
    MnaszooError,
)

__all__ = [
    "OnnxRuntimeModel",
    "export_folded",
    "import_onnxruntime",
    "onnxruntime_available",
    "open_session",
]

logger = logging.getLogger(__name__)

_MISSING_EXTRA = "pip install 'mnaszoo[onnx]'"
_REEXPORT = (
    "Copy it again from where it was made, or export it again with"
    " mnaszoo.export(model, path, format='onnx')."
)


def onnxruntime_available(*, export: bool = True) -> bool:
    """Whether onnxruntime (and, with ``export``, the ONNX exporter's onnx and onnxscript) is
    installed, i.e. whether :meth:`OnnxRuntimeModel.from_model` can work."""
    needed = ("onnxruntime", "onnx", "onnxscript") if export else ("onnxruntime",)
    return all(importlib.util.find_spec(name) is not None for name in needed)


def import_onnxruntime() -> Any:
    """The onnxruntime module, or a mnaszoo error saying which extra to install."""
    try:
        import onnxruntime
    except ImportError as error:
        raise MnaszooError(
            f"Running ONNX models needs onnxruntime: {_MISSING_EXTRA}. ({error})"
        ) from error
    return onnxruntime


def open_session(
    path: str | os.PathLike[str] | bytes,
    *,
    threads: int | None = None,
    device: str = "cpu",
    name: str | os.PathLike[str] | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path`` (or the model's bytes) with mnaszoo's
    settings: all graph
    optimisations, ``threads`` intra-op threads (``None``: onnxruntime's default), one inter-op
    thread, the CPU provider (or CUDA's for ``device="cuda"``). Every onnxruntime run in
    mnaszoo (predict, the benchmark, search latency) opens its session here. ``name`` names
    the file in errors when ``path`` is bytes.

    Raises:
        MnaszooError: onnxruntime is missing, or lacks the provider for ``device``.
        CorruptFileError: onnxruntime cannot load the model (damaged, truncated, not ONNX).
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = check_int("threads", threads, minimum=1)
    # One graph, no parallel branches worth scheduling: inter-op threads only add overhead.
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        raise MnaszooError(
            f"onnxruntime here has no {provider}; install onnxruntime-gpu for device='cuda', or"
            " use device='cpu'."
        )
    source = path if isinstance(path, bytes) else str(path)
    shown: str | os.PathLike[str] = (
        name if name is not None else "the model" if isinstance(path, bytes) else str(path)
    )
    # A damaged or foreign file makes onnxruntime raise its own types (Fail, InvalidProtobuf,
    # InvalidGraph...): one mnaszoo error says which file and what to do.
    with reading("an ONNX model", shown, _REEXPORT):
        return ort.InferenceSession(source, options, providers=[provider])


def export_folded(model: nn.Module, path: Path, input_size: tuple[int, int]) -> None:
    """Export a BatchNorm-folded fp32 CPU copy of ``model`` to ONNX with a dynamic batch.

    onnxruntime folds BatchNorm itself; folding first keeps the file smaller and the graph the
    same as the torch fast path. ``channels_last`` would only add transposes to the graph.
    """
    from .exporting import export
    from .optimize import optimize_for_inference

    fused = optimize_for_inference(model, channels_last=False).cpu().float()
    export(fused, path, format="onnx", batch="dynamic", input_size=input_size)


def _export_estimate(model: nn.Module) -> int:
    """About how many seconds exporting ``model`` takes: the exporter's time grows with the
    number of layers, about 0.2 s per convolution on a current x86 core (a registered MnasNet,
    about 65 convolutions, 10 to 15 s), rounded to 5 s."""
    convolutions = sum(1 for m in model.modules() if isinstance(m, nn.Conv2d))
    return max(5, 5 * round(0.2 * convolutions / 5))


def _digest(model: nn.Module, input_size: tuple[int, int]) -> str:
    """A digest of what determines the exported graph, for the file name in the cache."""
    from .._version import __version__

    hasher = hashlib.sha256()
    config = getattr(model, "config", None)
    to_dict = getattr(config, "to_dict", None)
    header = {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": to_dict() if callable(to_dict) else None,
        "input_size": list(input_size),
        "mnaszoo": __version__,
        "torch": torch.__version__,
    }
    hasher.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        hasher.update(name.encode())
        hasher.update(str(tuple(tensor.shape)).encode())
        hasher.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()[:32]


class OnnxRuntimeModel:
    """An ONNX model run by onnxruntime, called like a torch model.

    Args:
        path: an ``.onnx`` file (from :func:`mnaszoo.export`, :func:`mnaszoo.quantize_int8` or
            any exporter) with one NCHW float input.
        threads: onnxruntime's intra-op threads (``None``: its default, the physical cores).
        num_classes: the model's number of outputs, if known (read from the graph otherwise).
        weights_info: the :class:`~mnaszoo.weights.manifest.WeightsRecord` of the weights, so that
            :func:`mnaszoo.predict` finds their labels and preprocessing.
        sha256: the file's expected sha256 (64 hex); the bytes that are run are the bytes that
            were checked.

    Raises:
        MnaszooError: onnxruntime is not installed.
        InvalidArgumentError: ``path`` does not exist or ``threads`` is not positive.
        IntegrityError: the file's sha256 is not ``sha256``.
        CorruptFileError: onnxruntime cannot load the file (damaged, truncated, not ONNX).

    Example:
        >>> import torch, mnaszoo
        >>> model = mnaszoo.create("mnasnet_small", num_classes=3).eval()
        >>> fast = mnaszoo.OnnxRuntimeModel.from_model(model, input_size=64)  # doctest: +SKIP
        >>> x = torch.randn(2, 3, 64, 64)
        >>> torch.allclose(fast(x), model(x), atol=1e-4)  # doctest: +SKIP
        True
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
        import_onnxruntime()
        self.path = Path(os.fspath(path))
        if not self.path.is_file():
            raise InvalidArgumentError(f"No ONNX file at {self.path}.")
        source: Path | bytes = self.path
        if sha256 is not None:
            source = self.path.read_bytes()
            digest = hashlib.sha256(source).hexdigest()
            if digest != sha256:
                raise IntegrityError(
                    f"{self.path} has sha256 {digest}, expected {sha256}: it was changed after"
                    " it was written."
                )
        self.session = open_session(source, threads=threads, name=self.path)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InvalidArgumentError(
                f"{self.path} has {len(inputs)} inputs; OnnxRuntimeModel runs one-input models."
            )
        self._input_name: str = inputs[0].name
        shape = inputs[0].shape
        # Fixed spatial sizes are ints in the graph; dynamic ones are names.
        self.input_size: tuple[int, int] | None = (
            (shape[2], shape[3])
            if len(shape) == 4 and all(isinstance(s, int) for s in shape[2:])
            else None
        )
        out_shape = self.session.get_outputs()[0].shape
        graph_classes = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) else 0
        self.num_classes = int(num_classes if num_classes is not None else graph_classes)
        self.weights_info = weights_info

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        *,
        input_size: int | tuple[int, int] = 224,
        threads: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> OnnxRuntimeModel:
        """Export ``model`` (BatchNorm folded, dynamic batch) to ONNX once and run it.

        The ``.onnx`` file is kept under ``cache_dir`` (default: mnaszoo's cache,
        ``$MNASZOO_CACHE/onnx``), named by a digest of the model's class, configuration,
        tensors and the input size, so the export happens once per model and machine. Its
        sha256 is recorded beside it and checked before every use (a changed file is exported
        again, with a warning).

        Args:
            model: a mnaszoo model (or any module taking one NCHW tensor).
            input_size: the image size the graph is exported for (an int or ``(h, w)``).
            threads: onnxruntime's intra-op threads.
            cache_dir: where exported files are kept.

        Raises:
            MnaszooError: onnx, onnxscript or onnxruntime is missing.
            CacheNotWritableError: the model must be exported but the cache cannot be written.
            ArgumentTypeError: ``model`` is not a torch module.
        """
        from ..weights.download import default_cache_dir

        if not isinstance(model, nn.Module):
            raise ArgumentTypeError(f"model must be a torch module, got {type(model).__name__}.")
        if not onnxruntime_available():
            raise MnaszooError(f"The onnxruntime backend needs onnx extras: {_MISSING_EXTRA}.")
        size = check_input_size(input_size)
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        folder = root / "onnx"
        path = folder / f"{type(model).__name__.lower()}-{_digest(model, size)}.onnx"
        options: dict[str, Any] = {
            "threads": threads,
            "num_classes": int(getattr(model, "num_classes", 0)) or None,
            "weights_info": getattr(model, "weights_info", None),
        }
        # The file's sha256, recorded beside it when it was exported: a cached file is run only
        # if its bytes are still the exported ones (another model's export copied over it, or
        # one flipped byte, would otherwise change every prediction without a word).
        record = path.with_name(path.name + ".sha256")
        if path.is_file():
            try:
                expected = record.read_text("ascii").strip()
            except (OSError, UnicodeDecodeError):
                logger.warning("Re-exporting %s: its recorded sha256 is missing.", path)
            else:
                try:
                    return cls(path, sha256=expected, **options)
                except Exception as error:  # changed or damaged: export again rather than fail
                    logger.warning("Re-exporting %s: %s", path, error)
        # The first run of a model says why it waits (the CLI shows info lines; --quiet hides
        # them): an export costs seconds, later runs of the same model read the cached file.
        logger.info(
            "Exporting the model to ONNX once, about %d s; later runs load %s and skip this.",
            _export_estimate(model),
            folder,
        )
        started = time.perf_counter()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            export_folded(model, path, size)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            write_text_atomic(record, digest + "\n")
        except OSError as error:
            raise CacheNotWritableError(
                f"Cannot write the exported model into {folder} ({error}); pass cache_dir= a"
                " writable folder or set MNASZOO_CACHE."
            ) from error
        logger.info("Exported to ONNX in %.1f s.", time.perf_counter() - started)
        return cls(path, sha256=digest, **options)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run the model on an NCHW float tensor (any device; computed on the CPU)."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise InvalidArgumentError(
                f"expected an NCHW tensor, got {type(x).__name__}"
                f" of shape {tuple(getattr(x, 'shape', ()))}."
            )
        if self.input_size is not None and tuple(x.shape[2:]) != self.input_size:
            raise InvalidArgumentError(
                f"{self.path.name} was exported for {self.input_size[0]}x{self.input_size[1]}"
                f" inputs, got {x.shape[2]}x{x.shape[3]}; export again at that size."
            )
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        (logits, *_) = self.session.run(None, {self._input_name: array})
        return torch.from_numpy(logits)

    def __repr__(self) -> str:
        return f"OnnxRuntimeModel({str(self.path)!r}, num_classes={self.num_classes})"
