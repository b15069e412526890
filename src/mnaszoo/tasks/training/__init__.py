"""Training on your own images: :func:`mnaszoo.train` and ``mnaszoo train DATA OUT``.

A recipe (warmup and cosine, layer-wise learning-rate decay for fine-tuning, label smoothing,
mixup / cutmix, RandAugment, EMA weights, gradient clipping, mixed precision on CUDA, BatchNorm
handling for small batches, optional distillation), checkpointed atomically every epoch and
resumable exactly, on one process or many (torchrun). See ``docs/train.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

if TYPE_CHECKING:
    from .loop import TrainResult as TrainResult, train as train
    from .recipes import RECIPES as RECIPES, Recipe as Recipe, get_recipe as get_recipe

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".loop": ("TrainResult", "train"),
        ".recipes": ("RECIPES", "Recipe", "get_recipe"),
    },
)
