"""``mnaszoo.predict``: images in, sorted class predictions out."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, overload

import torch
from torch import nn

from .._modes import eval_mode
from .._validate import check_choice, check_device, check_int
from ..data.labels import labels_for, read_class_file
from ..data.transforms import make_transform
from ..deploy.onnx_runtime import OnnxRuntimeModel, onnxruntime_available
from ..errors import (
    ArgumentTypeError,
    CacheNotWritableError,
    InvalidArgumentError,
    InvalidImageError,
    MnaszooError,
)

logger = logging.getLogger(__name__)

__all__ = ["BACKENDS", "Prediction", "clear_model_cache", "load_model", "predict"]

Backend = Literal["auto", "torch", "onnxruntime"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnxruntime")
"""What can run the model in :func:`predict`."""


class Prediction(NamedTuple):
    """One class of a top-k prediction: its name, index and softmax probability.

    Attributes:
        label: the class name (from the weights' labels, a class file, or ``class_<index>``).
        index: the class index, the position in the model's output.
        score: the softmax probability, in [0, 1].

    Example:
        >>> p = Prediction("military uniform", 652, 0.81)
        >>> p.label, p.index, f"{p.score:.0%}"
        ('military uniform', 652, '81%')
    """

    label: str
    index: int  # type: ignore[assignment]  # the field shadows tuple.index, as intended
    score: float


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    parsed: torch.device = check_device(device)
    return parsed


@functools.lru_cache(maxsize=4)
def _cached_model(
    name: str,
    weights: str | bool,
    checkpoint: str | None,
    stamp: float,
    device: torch.device,
    cache_dir: str | None,
    local_files_only: bool,
) -> nn.Module:
    from ..factory import create
    from ..weights.hub import from_pretrained

    if checkpoint is not None and Path(checkpoint).is_dir():
        model: nn.Module = from_pretrained(checkpoint)
    elif checkpoint is not None:
        model = create(name, checkpoint=checkpoint)
    else:
        model = create(
            name, pretrained=weights, cache_dir=cache_dir, local_files_only=local_files_only
        )
    return model.to(device).eval()


def load_model(
    model: str,
    *,
    weights: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> nn.Module:
    """A pretrained model for inference, cached across calls (up to 4 models).

    ``checkpoint`` may be a weights file (any supported layout) or a directory written by
    ``save_pretrained``; otherwise the published ``weights`` tag (default: the model's default).
    """
    if checkpoint is not None and weights is not None:
        raise InvalidArgumentError("Pass either weights= or checkpoint=, not both.")
    path = None if checkpoint is None else str(Path(checkpoint).resolve())
    # The file's modification time is part of the key: a re-saved checkpoint is reloaded.
    stamp = Path(path).stat().st_mtime if path is not None and Path(path).exists() else 0.0
    return _cached_model(
        model,
        weights if weights is not None else True,
        path,
        stamp,
        _device(device),
        None if cache_dir is None else str(cache_dir),
        local_files_only,
    )


def resolve_model(
    model: str | nn.Module,
    *,
    weights: str | None,
    checkpoint: str | os.PathLike[str] | None,
    device: str | torch.device | None,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool,
) -> nn.Module:
    """The eval-mode model behind a ``model`` argument: a name (loaded and cached with
    :func:`load_model`) or a module (moved to ``device`` if given)."""
    if isinstance(model, str):
        return load_model(
            model,
            weights=weights,
            checkpoint=checkpoint,
            device=device,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
        )
    if isinstance(model, nn.Module):
        if weights is not None or checkpoint is not None:
            raise InvalidArgumentError(
                "weights= and checkpoint= apply to a model name, not a model object."
            )
        return model.eval() if device is None else model.to(_device(device)).eval()
    raise ArgumentTypeError(f"model must be a name or a torch module, got {type(model).__name__}.")


def clear_model_cache() -> None:
    """Forget the models :func:`predict` has loaded (and their onnxruntime sessions)."""
    _cached_model.cache_clear()
    _cached_session.cache_clear()


@functools.lru_cache(maxsize=4)
def _cached_session(net: nn.Module, size: int) -> OnnxRuntimeModel:
    # Keyed by the cached module itself (held alive by this cache), so a name loaded once is
    # exported (or read from the disk cache) once per process and input size.
    return OnnxRuntimeModel.from_model(net, input_size=size)


_WARNED: set[str] = set()


def _warn_once(message: str, error: BaseException) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning(message, error)


def _runner(
    net: nn.Module | OnnxRuntimeModel, backend: object, *, named: bool, size: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The callable that turns a preprocessed batch into logits, for the chosen backend."""
    if isinstance(net, OnnxRuntimeModel):
        return net
    param = next(net.parameters())
    on_cpu = param.device.type == "cpu"
    if backend == "onnxruntime" and not on_cpu:
        raise InvalidArgumentError(
            f"backend='onnxruntime' runs on the CPU, but the model is on {param.device};"
            " pass device='cpu', or backend='torch' for the GPU."
        )
    use_ort = backend == "onnxruntime" or (
        backend == "auto" and named and on_cpu and onnxruntime_available()
    )
    if use_ort:
        try:
            if named:
                return _cached_session(net, size)
            return OnnxRuntimeModel.from_model(net, input_size=size)
        except CacheNotWritableError as error:
            if backend != "auto":
                raise
            # A read-only cache (the air-gapped setup: a copied cache plus the onnx extra) must
            # not stop predict: torch gives the same scores, only slower.
            _warn_once(
                "Running the model in torch: the onnxruntime backend cannot use its cache (%s).",
                error,
            )

    def run(batch: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = net(batch.to(param.device, param.dtype))
        return logits

    return run


@overload
def predict(
    images: list[Any] | tuple[Any, ...],
    model: str | nn.Module | OnnxRuntimeModel = ...,
    *,
    topk: int | None = ...,
    weights: str | None = ...,
    checkpoint: str | os.PathLike[str] | None = ...,
    class_file: str | os.PathLike[str] | None = ...,
    input_size: int | None = ...,
    device: str | torch.device | None = ...,
    batch_size: int = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    local_files_only: bool = ...,
    backend: Backend = ...,
) -> list[list[Prediction]]: ...


@overload
def predict(
    images: Any,
    model: str | nn.Module | OnnxRuntimeModel = ...,
    *,
    topk: int | None = ...,
    weights: str | None = ...,
    checkpoint: str | os.PathLike[str] | None = ...,
    class_file: str | os.PathLike[str] | None = ...,
    input_size: int | None = ...,
    device: str | torch.device | None = ...,
    batch_size: int = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    local_files_only: bool = ...,
    backend: Backend = ...,
) -> list[Prediction]: ...


def predict(
    images: Any,
    model: str | nn.Module | OnnxRuntimeModel = "mnasnet_a1",
    *,
    topk: int | None = None,
    weights: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    class_file: str | os.PathLike[str] | None = None,
    input_size: int | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    backend: Backend = "auto",
) -> list[Prediction] | list[list[Prediction]]:
    """Classify images with a pretrained MnasNet, using the weights' own preprocessing.

    Args:
        images: one image or a list of them: paths, bytes, PIL images, numpy HWC arrays, torch
            CHW tensors (an NCHW tensor is a batch); see :mod:`mnaszoo.data.images`.
        model: a registered name (its published weights are downloaded once), a model, or an
            :class:`~mnaszoo.OnnxRuntimeModel` (an exported or int8 model).
        topk: how many classes per image (default: 5, or every class of a model with fewer).
        weights: a weights tag or id (default: the model's default weights).
        checkpoint: a local weights file or ``save_pretrained`` directory instead, or an
            exported ``.onnx`` model (run with :class:`~mnaszoo.OnnxRuntimeModel`; its classes
            are named by ``class_file``, or ImageNet's for 1000 classes).
        class_file: class names, one per line (for fine-tuned models); its length must equal
            the model's number of classes.
        input_size: evaluate at another resolution (the resize scales with it).
        device: default CUDA if available, else CPU.
        batch_size: images per forward pass. At the default 1, a list gives exactly the results
            of separate calls; larger batches are faster on GPUs but may differ in the last
            float digits.
        cache_dir: where downloads are cached, as in :func:`mnaszoo.create`.
        local_files_only: never use the network, as in :func:`mnaszoo.create`.
        backend: what runs the model. ``"torch"``: the PyTorch module. ``"onnxruntime"``: the
            model exported once to ONNX (cached in mnaszoo's cache, see
            :class:`mnaszoo.OnnxRuntimeModel`) and run by onnxruntime on the CPU, the fastest
            CPU path (docs/benchmarks.md); needs ``pip install 'mnaszoo[onnx]'``. ``"auto"``
            (default): onnxruntime for a model *name* on the CPU when that extra is installed,
            else torch. A model object runs in torch unless ``"onnxruntime"`` is asked for
            (it is exported at each call then: pass an :class:`~mnaszoo.OnnxRuntimeModel`
            to reuse one). Scores from the two backends agree to about 1e-5.

    Returns:
        For one image, its predictions (highest score first); for a list, one such list per
        image.

    Raises:
        InvalidImageError: an image cannot be used (named by index or path). Missing, empty
            and unidentifiable files are found before the model runs; the pixels are decoded one
            batch at a time (memory does not grow with the number of images), so a file that is
            damaged inside stops the call at its batch. Either way nothing is returned.
        InvalidArgumentError: ``topk`` or ``batch_size`` is out of range, a class file does not
            fit the model, ``weights``/``checkpoint`` are given with a model object, an unknown
            ``backend``, or ``"onnxruntime"`` with a CUDA device.
        MnaszooError: ``backend="onnxruntime"`` without the ``onnx`` extra, or the model gave
            NaN or infinite scores.
        ArgumentTypeError: ``model`` is neither a name nor a torch module.
        WeightsError: the weights cannot be obtained (see :func:`mnaszoo.create`).

    Example:
        The published weights (downloaded once):

        >>> mnaszoo.predict("docs/images/grace_hopper.jpg", topk=1)  # doctest: +SKIP
        [Prediction(label='military uniform', index=652, score=...)]

        Any model object, here an untrained three-class one whose classes are unnamed:

        >>> import numpy as np, mnaszoo
        >>> model = mnaszoo.create("mnasnet_small", num_classes=3)
        >>> image = np.zeros((64, 64, 3), dtype=np.uint8)
        >>> sorted(p.label for p in mnaszoo.predict(image, model, topk=3))
        ['class_0', 'class_1', 'class_2']
    """
    from ..data.images import batch_items, probe_image

    # A 4-D tensor (NCHW) or array (NHWC) is a batch, like a list.
    single = not isinstance(images, (list, tuple)) and getattr(images, "ndim", 0) != 4
    check_int("batch_size", batch_size, minimum=1)
    check_choice("backend", backend, BACKENDS)
    items = batch_items(images)
    for name, item in items:  # cheap checks (paths, headers) before anything runs
        probe_image(item, name)
    if isinstance(model, str) and _is_onnx(checkpoint):
        if weights is not None:
            raise InvalidArgumentError("Pass either weights= or checkpoint=, not both.")
        # An exported ONNX model runs as it is (its own labels and recipe are not in the file).
        model, checkpoint = OnnxRuntimeModel(os.fspath(checkpoint)), None  # type: ignore[arg-type]
    if isinstance(model, OnnxRuntimeModel):
        if weights is not None or checkpoint is not None or device not in (None, "cpu"):
            raise InvalidArgumentError(
                "weights=, checkpoint= and device= do not apply to an OnnxRuntimeModel."
            )
        return _predict(
            items, model, model, single, topk, class_file, input_size, batch_size, backend
        )
    if isinstance(model, nn.Module):
        if weights is not None or checkpoint is not None:
            raise InvalidArgumentError(
                "weights= and checkpoint= apply to a model name, not a model object."
            )
        with borrowed(model, device) as net:
            return _predict(
                items, model, net, single, topk, class_file, input_size, batch_size, backend
            )
    net = resolve_model(
        model,
        weights=weights,
        checkpoint=checkpoint,
        device=device,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
    )
    return _predict(items, model, net, single, topk, class_file, input_size, batch_size, backend)


def _is_onnx(checkpoint: object) -> bool:
    from ..weights.checkpoint import exported_format

    if not isinstance(checkpoint, str | os.PathLike):
        return False
    path = Path(checkpoint)
    return path.is_file() and exported_format(path) == "onnx"


@contextlib.contextmanager
def borrowed(model: nn.Module, device: str | torch.device | None) -> Iterator[nn.Module]:
    """The caller's module in eval mode (on ``device``), given back with every module in the
    mode it came in and on its device, as :func:`mnaszoo.export` and :func:`mnaszoo.evaluate`
    do."""
    param = next(model.parameters(), None)
    home = param.device if param is not None else None
    moved = device is not None and home is not None and _device(device) != home
    try:
        if moved:
            model.to(_device(device))
        with eval_mode(model):  # every module's own flag comes back, not only the top one
            yield model
    finally:
        if moved and home is not None:
            model.to(home)


def _input_channels(net: object) -> int:
    """The channels the model takes: 3 (RGB), or 1 (the image converted to grey)."""
    if isinstance(net, OnnxRuntimeModel):
        shape = net.session.get_inputs()[0].shape
        channels = shape[1] if len(shape) == 4 and isinstance(shape[1], int) else 3
    else:
        channels = int(getattr(getattr(net, "config", None), "in_chans", 3))
    if channels not in (1, 3):
        raise InvalidArgumentError(
            f"predict feeds RGB images (grey ones to a one-channel model), but this model takes"
            f" {channels} input channels, which an image file does not hold; call the model on"
            f" your own {channels}-channel tensors instead."
        )
    return channels


def _check_classifier(net: object) -> int:
    num_classes = int(getattr(net, "num_classes", 0))
    if num_classes < 1:
        raise InvalidArgumentError(
            "predict needs a model with a classifier, but this one has none (a features_only"
            " backbone, or num_classes=0); create the model with num_classes >= 1."
        )
    return num_classes


def _predict(
    items: list[tuple[str, Any]],
    model: object,
    net: nn.Module | OnnxRuntimeModel,
    single: bool,
    topk: int | None,
    class_file: str | os.PathLike[str] | None,
    input_size: int | None,
    batch_size: int,
    backend: object,
) -> list[Prediction] | list[list[Prediction]]:
    """Decode, preprocess and run ``items`` one batch at a time: memory holds one batch of
    decoded images, however many items there are."""
    from ..data.images import load_image

    num_classes = _check_classifier(net)
    channels = _input_channels(net)
    labels = read_class_file(class_file, num_classes) if class_file is not None else labels_for(net)
    topk = min(5, num_classes) if topk is None else topk
    check_int("topk", topk, minimum=1, maximum=num_classes)
    if isinstance(net, OnnxRuntimeModel) and input_size is None and net.input_size is not None:
        input_size = net.input_size[0]  # the size the graph was exported for
    transform = make_transform(net, input_size=input_size)
    run = _runner(net, backend, named=isinstance(model, str), size=transform.input_size)
    results: list[list[Prediction]] = []
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            tensors = []
            for name, item in items[start : start + batch_size]:
                try:
                    tensors.append(transform(load_image(item, name=name)))
                except InvalidImageError as error:
                    message = str(error)
                    raise InvalidImageError(
                        message if message.startswith(name) else f"{name}: {message}"
                    ) from error
            batch = torch.stack(tensors)
            if channels == 1:  # the mean of the normalised RGB planes: the image in grey
                batch = batch.mean(dim=1, keepdim=True)
            logits = run(batch).float()
            if not bool(torch.isfinite(logits).all()):
                raise MnaszooError(
                    f"The model gave NaN or infinite scores for {items[start][0]} (batch from"
                    " there): its weights hold non-finite values. Load a sound checkpoint."
                )
            scores, indices = logits.softmax(dim=1).topk(topk, dim=1)
            for row_scores, row_indices in zip(scores.tolist(), indices.tolist(), strict=True):
                results.append(
                    [
                        Prediction(labels[i], i, s)
                        for s, i in zip(row_scores, row_indices, strict=True)
                    ]
                )
    return results[0] if single else results


def format_predictions(predictions: Sequence[Prediction]) -> str:
    """One line per class: ``  0.8123  golden retriever (207)``."""
    return "\n".join(f"  {p.score:.4f}  {p.label} ({p.index})" for p in predictions)
