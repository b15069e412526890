"""Training recipes: every setting of a run in one frozen dataclass, and three presets.

A :class:`Recipe` is what ``mnaszoo train --recipe NAME`` starts from; each option of the command
(and each keyword of :func:`mnaszoo.train`) replaces one field. The presets differ in length and in
how hard they regularise:

* ``quick``: a short baseline, light augmentation, no EMA, no mixing;
* ``standard``: RandAugment, light mixup/cutmix, EMA weights, gradient clipping;
* ``strong``: longer, stronger RandAugment, full mixup/cutmix, drop-path: for small datasets
  that a network memorises, or for long runs.

Fine-tuning (the model starts from trained weights) uses ``lr_finetune``, ``layer_decay`` and
``head_lr_mult``; training from scratch uses ``lr`` and neither of the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..._validate import check_float, check_int
from ...errors import InvalidArgumentError, close_matches_hint

__all__ = ["RECIPES", "Recipe", "check_recipe", "get_recipe"]


@dataclass(frozen=True)
class Recipe:
    """The settings of a training run (see the presets in :data:`RECIPES`).

    Attributes:
        name: the preset it came from (``"custom"`` if built by hand).
        epochs: passes over the training images.
        batch_size: images per step and process.
        lr: peak AdamW learning rate from scratch.
        lr_finetune: peak learning rate when the model starts from trained weights.
        weight_decay: AdamW decoupled weight decay (not on biases and BatchNorm).
        warmup_epochs: linear warmup length, in epochs (fractions allowed).
        min_lr_ratio: the cosine ends at ``lr * min_lr_ratio``.
        label_smoothing: share of each target spread over all classes.
        mixup_alpha: Beta(alpha, alpha) for mixup; 0 disables it.
        cutmix_alpha: Beta(alpha, alpha) for cutmix; 0 disables it.
        mix_prob: probability that a batch is mixed at all (mixup or cutmix, half and half
            when both are on).
        randaugment_ops: operations per image of the RandAugment policy; 0 disables it.
        randaugment_magnitude: their strength, 0 to 10 (timm's scale).
        crop_scale: the random resized crop keeps this share range of the image area.
        crop_ratio: the range of its aspect ratio (width / height).
        hflip: flip images left-right at random (turn off for text, digits, oriented scenes).
        ema_decay: decay of the exponential moving average of the weights; ``None``: no EMA.
        clip_grad: maximum gradient norm; ``None``: no clipping.
        layer_decay: layer-wise learning-rate decay when fine-tuning; ``None``: off.
        head_lr_mult: the classifier's learning-rate multiplier when fine-tuning.
        drop_path_rate: stochastic depth of the deepest block.
        bn_freeze_below: fine-tuning with fewer images per step and process than this freezes
            every BatchNorm layer (its statistics would be too noisy); 0 never freezes.
        distill_alpha: weight of the teacher's soft targets when a teacher is given.
        distill_temperature: softmax temperature of the distillation targets.
    """

    name: str = "custom"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 4e-3
    lr_finetune: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 2.0
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_prob: float = 0.0
    randaugment_ops: int = 0
    randaugment_magnitude: float = 0.0
    crop_scale: tuple[float, float] = (0.35, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    ema_decay: float | None = None
    clip_grad: float | None = None
    layer_decay: float | None = None
    head_lr_mult: float = 10.0
    drop_path_rate: float = 0.0
    bn_freeze_below: int = 8
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (``None`` values are ignored, so that unset
        command-line options keep the preset's value; use ``dataclasses.replace`` to set
        ``ema_decay`` and the like to ``None``).

        Raises:
            InvalidArgumentError: a name is not a field.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise InvalidArgumentError(
                f"Unknown recipe settings {unknown}; the fields are {sorted(names)}."
            )
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["crop_scale"] = list(self.crop_scale)
        data["crop_ratio"] = list(self.crop_ratio)
        return data


RECIPES: dict[str, Recipe] = {
    "quick": Recipe(
        name="quick",
        epochs=10,
        warmup_epochs=1.0,
        crop_scale=(0.35, 1.0),
        layer_decay=None,
    ),
    "standard": Recipe(
        name="standard",
        epochs=30,
        warmup_epochs=2.0,
        randaugment_ops=2,
        randaugment_magnitude=5.0,
        mixup_alpha=0.2,
        cutmix_alpha=1.0,
        mix_prob=0.3,
        ema_decay=0.998,
        clip_grad=5.0,
        layer_decay=0.75,
        drop_path_rate=0.05,
    ),
    "strong": Recipe(
        name="strong",
        epochs=60,
        warmup_epochs=3.0,
        randaugment_ops=2,
        randaugment_magnitude=9.0,
        mixup_alpha=0.8,
        cutmix_alpha=1.0,
        mix_prob=0.8,
        crop_scale=(0.25, 1.0),
        ema_decay=0.999,
        clip_grad=5.0,
        layer_decay=0.65,
        drop_path_rate=0.1,
    ),
}
"""The presets of ``mnaszoo train --recipe``; ``docs/train.md`` tabulates their settings."""


def get_recipe(name: str | Recipe) -> Recipe:
    """The preset called ``name`` (a :class:`Recipe` is returned as it is).

    Raises:
        InvalidArgumentError: no preset has that name.
    """
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise InvalidArgumentError(
            f"Unknown recipe {name!r}; accepted: {', '.join(RECIPES)}."
            + close_matches_hint(str(name), RECIPES)
        )
    return RECIPES[name]


def check_recipe(recipe: Recipe) -> Recipe:
    """``recipe`` if every field is in range.

    Raises:
        InvalidArgumentError: a field is out of range (the message names it and the range).
        ArgumentTypeError: a field has the wrong type.
    """

    check_int("epochs", recipe.epochs, minimum=1)
    check_int("batch_size", recipe.batch_size, minimum=1)
    check_float("lr", recipe.lr, minimum=0.0, min_inclusive=False)
    check_float("lr_finetune", recipe.lr_finetune, minimum=0.0, min_inclusive=False)
    check_float("weight_decay", recipe.weight_decay, minimum=0.0)
    check_float("warmup_epochs", recipe.warmup_epochs, minimum=0.0)
    check_float("min_lr_ratio", recipe.min_lr_ratio, minimum=0.0, maximum=1.0)
    check_float(
        "label_smoothing", recipe.label_smoothing, minimum=0.0, maximum=1.0, max_inclusive=False
    )
    check_float("mixup_alpha", recipe.mixup_alpha, minimum=0.0)
    check_float("cutmix_alpha", recipe.cutmix_alpha, minimum=0.0)
    check_float("mix_prob", recipe.mix_prob, minimum=0.0, maximum=1.0)
    check_int("randaugment_ops", recipe.randaugment_ops, minimum=0)
    check_float("randaugment_magnitude", recipe.randaugment_magnitude, minimum=0.0, maximum=10.0)
    low, high = (check_float("crop_scale", v, minimum=0.0, maximum=1.0) for v in recipe.crop_scale)
    if not 0 < low <= high:
        raise InvalidArgumentError(
            f"crop_scale must satisfy 0 < low <= high <= 1, got {recipe.crop_scale}."
        )
    low, high = (check_float("crop_ratio", v, minimum=0.0) for v in recipe.crop_ratio)
    if not 0 < low <= high:
        raise InvalidArgumentError(
            f"crop_ratio must satisfy 0 < low <= high, got {recipe.crop_ratio}."
        )
    if recipe.ema_decay is not None:
        check_float("ema_decay", recipe.ema_decay, minimum=0.0, maximum=1.0, max_inclusive=False)
    if recipe.clip_grad is not None:
        check_float("clip_grad", recipe.clip_grad, minimum=0.0, min_inclusive=False)
    if recipe.layer_decay is not None:
        check_float(
            "layer_decay", recipe.layer_decay, minimum=0.0, maximum=1.0, min_inclusive=False
        )
    check_float("head_lr_mult", recipe.head_lr_mult, minimum=0.0, min_inclusive=False)
    check_float(
        "drop_path_rate", recipe.drop_path_rate, minimum=0.0, maximum=1.0, max_inclusive=False
    )
    check_int("bn_freeze_below", recipe.bn_freeze_below, minimum=0)
    check_float("distill_alpha", recipe.distill_alpha, minimum=0.0, maximum=1.0)
    check_float("distill_temperature", recipe.distill_temperature, minimum=0.0, min_inclusive=False)
    return recipe
