"""The model side of a prediction job: preprocessed batches in, top-k classes (and embeddings)
out; and the decoding of one image that never raises (a bad file is an error message).

Shared by the single-machine path (:mod:`mnaszoo.tasks.streaming`) and the Ray actors
(:mod:`mnaszoo.tasks.ray_batch`), so both give the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .._validate import check_bool, check_choice, check_int
from ..data.transforms import ImageTransform
from ..deploy.onnx_runtime import OnnxRuntimeModel
from ..errors import InvalidArgumentError, InvalidImageError, MnaszooError
from .parts import COLUMNS, Columns

__all__ = ["Scorer", "decode"]


class Scorer:
    """The model side of a job: a preprocessed batch in, top-k classes (and embeddings) out.

    Built once per process (or Ray actor); shared by the streaming and the Ray paths, so both
    give the same numbers.
    """

    def __init__(
        self,
        model: str | nn.Module,
        *,
        topk: int | None = None,
        embeddings: bool = False,
        weights: str | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        class_file: str | os.PathLike[str] | None = None,
        input_size: int | None = None,
        device: str | torch.device | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        backend: str = "auto",
    ) -> None:
        from ..data.labels import labels_for, read_class_file
        from ..data.transforms import make_transform
        from .prediction import (
            BACKENDS,
            _check_classifier,
            _input_channels,
            _runner,
            resolve_model,
        )

        check_choice("backend", backend, BACKENDS)
        check_bool("embeddings", embeddings)
        net = resolve_model(
            model,
            weights=weights,
            checkpoint=checkpoint,
            device=device,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
        )
        num_classes = _check_classifier(net)
        self.channels = _input_channels(net)
        self.labels = (
            read_class_file(class_file, num_classes) if class_file is not None else labels_for(net)
        )
        self.topk = min(5, num_classes) if topk is None else topk
        check_int("topk", self.topk, minimum=1, maximum=num_classes)
        self.transform: ImageTransform = make_transform(net, input_size=input_size)
        self.embeddings = embeddings
        self.net = net
        if embeddings:
            if not (hasattr(net, "forward_features") and hasattr(net, "forward_head")):
                raise InvalidArgumentError(
                    "embeddings need a MnasNet model (forward_features/forward_head); this model"
                    " has neither."
                )
            if backend == "onnxruntime":
                raise InvalidArgumentError(
                    "embeddings are computed by the torch model: use backend='torch' or 'auto'."
                )
            backend = "torch"  # the pooled features come from the module itself
        run = _runner(net, backend, named=isinstance(model, str), size=self.transform.input_size)
        param = next(net.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.channels_last = False
        if isinstance(run, OnnxRuntimeModel):
            self.run: Callable[[torch.Tensor], torch.Tensor] = run
        else:
            self.net = _cpu_inference_copy(net)
            self.channels_last = self.net is not net
            self.run = self._run_torch

    def _input(self, batch: torch.Tensor) -> torch.Tensor:
        moved = batch.to(self.device, self.dtype)
        if self.channels_last:  # the layout the optimised copy's weights are in
            return moved.contiguous(memory_format=torch.channels_last)
        return moved

    def _run_torch(self, batch: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(self._input(batch))
        return logits

    def __call__(self, pixels: torch.Tensor) -> tuple[list[list[float]], list[list[int]], Any]:
        """Scores and class indices (top-k, best first) and the embeddings (or ``None``)."""
        batch = pixels
        if self.channels == 1:  # the mean of the normalised RGB planes: the image in grey
            batch = batch.mean(dim=1, keepdim=True)
        embedded = None
        with torch.inference_mode():
            if self.embeddings:
                net: Any = self.net
                features = net.forward_features(self._input(batch))
                pooled = net.forward_head(features, pre_logits=True)
                logits = net.classifier(net.dropout(pooled)).float()
                embedded = pooled.float().cpu().tolist()
            else:
                logits = self.run(batch).float()
            if not bool(torch.isfinite(logits).all()):
                raise MnaszooError(
                    "The model gave NaN or infinite scores: its weights hold non-finite values."
                    " Load a sound checkpoint."
                )
            scores, indices = logits.softmax(dim=1).topk(self.topk, dim=1)
        return scores.cpu().tolist(), indices.cpu().tolist(), embedded

    def rows(
        self, paths: Sequence[str], pixels: torch.Tensor, errors: Sequence[str | None]
    ) -> Columns:
        """The result columns of one batch (``pixels`` holds the images without an error)."""
        good = sum(error is None for error in errors)
        scores, indices, embedded = (
            self(pixels) if good else ([], [], [] if self.embeddings else None)
        )
        columns: Columns = {name: [] for name in COLUMNS[2:]}
        if self.embeddings:
            columns["embedding"] = []
        position = 0
        for error in errors:
            if error is None:
                columns["labels"].append([self.labels[i] for i in indices[position]])
                columns["indices"].append(indices[position])
                columns["scores"].append(scores[position])
                if embedded is not None:
                    columns["embedding"].append(embedded[position])
                position += 1
            else:
                columns["labels"].append([])
                columns["indices"].append([])
                columns["scores"].append([])
                if self.embeddings:
                    columns["embedding"].append([])
            columns["error"].append(error)
        return {"path": list(paths), **columns}


def _cpu_inference_copy(net: nn.Module) -> nn.Module:
    """The model a batch job runs on the CPU: a MnasNet with BatchNorm folded into its
    convolutions, in ``channels_last`` (about 3x faster per image at one thread than the
    training layout; outputs equal up to float rounding). Other modules run as they are."""
    from ..deploy.optimize import optimize_for_inference
    from ..models.mnasnet import MnasNet

    param = next(net.parameters())
    if param.device.type != "cpu" or not isinstance(net, MnasNet):
        return net
    return optimize_for_inference(net)


def decode(path: str, transform: ImageTransform) -> tuple[torch.Tensor | None, str | None]:
    """The preprocessed image, or ``None`` and why it cannot be used (never an exception: one
    bad file among millions must not end the job)."""
    try:
        return transform(path), None  # decoded once (transform calls load_image)
    except InvalidImageError as error:
        message = str(error)
        return None, message if path in message else f"{path}: {message}"
    except Exception as error:  # a decoder bug on a hostile file is still one bad image
        return None, f"{path}: {type(error).__name__}: {error}"
