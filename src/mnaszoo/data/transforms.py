"""Preprocessing built from a checkpoint's own recipe, without torchvision.

The evaluation transform reproduces the publishers' pipelines on PIL images: resize the shorter
side (PIL's antialiased ``Image.resize``, the long side truncated as torchvision's ``Resize``
does), centre-crop (torchvision's rounding), scale to [0, 1], normalise. The tests pin it against
tensors that timm's and torchvision's own transforms produced on real photographs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from .._validate import MAX_INPUT_SIZE, MIN_INPUT_SIZE, check_bool, check_int
from ..errors import ArgumentTypeError, InvalidImageError
from ..weights.manifest import DEFAULT_PREPROCESSING, Preprocessing, WeightsRecord, get_weights

__all__ = ["MAX_ASPECT_RATIO", "MAX_INPUT_SIZE", "ImageTransform", "make_transform"]

MAX_ASPECT_RATIO = 64
"""Images longer than this many times their width (or wider than their height) are refused:
resizing the shorter side of a 10000x1 strip to 256 pixels would make 2.6 gigapixels."""

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def _resize_shorter(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if long > MAX_ASPECT_RATIO * short:
        # Bound the resized image, not only the decoded one: the resize multiplies a strip.
        raise InvalidImageError(
            f"an image of {width}x{height} pixels is refused: its aspect ratio"
            f" {long / short:.0f}:1 is above {MAX_ASPECT_RATIO}:1, and resizing its shorter side"
            f" to {size} would make {int(size * long / short)} pixels along the other. Crop it"
            " first."
        )
    # torchvision's Resize(int): the long side is int(size * long / short), truncated.
    new_short, new_long = size, int(size * long / short)
    new_size = (new_short, new_long) if width <= height else (new_long, new_short)
    if new_size == image.size:
        return image
    return image.resize(new_size, resample)


def _center_crop(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    if width < size or height < size:
        # Pad with black like torchvision's CenterCrop when the crop is larger than the image.
        canvas = Image.new("RGB", (max(width, size), max(height, size)))
        canvas.paste(image, ((canvas.width - width) // 2, (canvas.height - height) // 2))
        image, width, height = canvas, canvas.width, canvas.height
    top = round((height - size) / 2.0)
    left = round((width - size) / 2.0)
    return image.crop((left, top, left + size, top + size))


def _to_tensor(image: Image.Image, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    # Same arithmetic and order as torchvision's ToTensor + Normalize, so results match exactly.
    array = np.asarray(image, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous().float().div(255)
    return tensor.sub_(mean).div_(std)


@dataclass(frozen=True)
class ImageTransform:
    """Turn an image into a normalised ``(3, input_size, input_size)`` float tensor.

    Accepts everything :func:`mnaszoo.data.images.load_image` accepts. Evaluation: resize the
    shorter side to ``resize``, centre-crop ``input_size``. Training (``train=True``): random
    resized crop (scale 0.08-1, ratio 3/4-4/3) and horizontal flip, for fine-tuning. Made by
    :func:`make_transform`.

    Attributes:
        preprocessing: the recipe (sizes, interpolation, mean and std).
        train: whether this is the random training transform.

    Example:
        >>> import numpy as np
        >>> transform = make_transform("mnasnet_small", input_size=160)
        >>> x = transform(np.zeros((300, 400, 3), dtype=np.uint8))
        >>> x.shape, x.dtype
        (torch.Size([3, 160, 160]), torch.float32)
    """

    preprocessing: Preprocessing
    train: bool = False

    @property
    def input_size(self) -> int:
        """Side of the square output."""
        return self.preprocessing.input_size

    def __call__(self, image: Any) -> torch.Tensor:
        from .images import load_image

        picture = load_image(image)
        p = self.preprocessing
        resample = _RESAMPLE[p.interpolation]
        if self.train:
            picture = _random_resized_crop(picture, p.input_size, resample)
        else:
            picture = _center_crop(_resize_shorter(picture, p.resize, resample), p.input_size)
        mean = torch.tensor(p.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(p.std, dtype=torch.float32).view(3, 1, 1)
        return _to_tensor(picture, mean, std)

    def __repr__(self) -> str:
        p = self.preprocessing
        steps = (
            [
                f"RandomResizedCrop({p.input_size}, scale=(0.08, 1.0), {p.interpolation})",
                "RandomHorizontalFlip(0.5)",
            ]
            if self.train
            else [
                f"ResizeShorterSide({p.resize}, {p.interpolation}, antialias)",
                f"CenterCrop({p.input_size})",
            ]
        )
        steps += ["ToTensor()", f"Normalize(mean={list(p.mean)}, std={list(p.std)})"]
        return "ImageTransform(\n    " + ",\n    ".join(steps) + "\n)"


def _random_resized_crop(
    image: Image.Image,
    size: int,
    resample: Image.Resampling,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Image.Image:
    # Inception-style crop (as torchvision's RandomResizedCrop), driven by Python's `random` so
    # that `random.seed` (or a DataLoader worker seed) makes it reproducible.
    width, height = image.size
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * random.uniform(*scale)
        aspect = math.exp(random.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = random.randint(0, width - w), random.randint(0, height - h)
            break
    else:  # fall back to a centre crop at the nearest allowed aspect ratio
        in_ratio = width / height
        w, h = (
            (width, round(width / ratio[0]))
            if in_ratio < ratio[0]
            else (round(height * ratio[1]), height)
            if in_ratio > ratio[1]
            else (width, height)
        )
        left, top = (width - w) // 2, (height - h) // 2
    crop = image.crop((left, top, left + w, top + h)).resize((size, size), resample)
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if random.random() < 0.5 else crop


def _preprocessing_of(source: object) -> Preprocessing:
    if source is None:
        return DEFAULT_PREPROCESSING
    if isinstance(source, Preprocessing):
        return source
    if isinstance(source, WeightsRecord):
        return source.preprocessing
    if isinstance(source, str):
        return get_weights(source).preprocessing
    # A module, or a wrapper that carries the weights' record (OnnxRuntimeModel).
    if isinstance(source, torch.nn.Module) or hasattr(source, "weights_info"):
        info = getattr(source, "weights_info", None)
        return info.preprocessing if isinstance(info, WeightsRecord) else DEFAULT_PREPROCESSING
    raise ArgumentTypeError(
        "make_transform takes a model (or OnnxRuntimeModel), a WeightsRecord, a Preprocessing,"
        f" a weights id or model name, or None; got {type(source).__name__}."
    )


def make_transform(
    weights_or_model: object = None, *, input_size: int | None = None, train: bool = False
) -> ImageTransform:
    """The preprocessing of a checkpoint, from its own recipe.

    Args:
        weights_or_model: a pretrained model (its ``weights_info``), a
            :class:`~mnaszoo.weights.manifest.WeightsRecord`, a weights id or model name (its
            default weights), a :class:`~mnaszoo.weights.manifest.Preprocessing`, or ``None``
            (ImageNet statistics, bicubic, crop 0.875: the MnasNet convention).
        input_size: another crop size; the resize scales with it, keeping the recipe's crop ratio
            (``resize = floor(input_size * resize / crop)``).
        train: the training transform (random resized crop and flip) instead.

    Returns:
        An :class:`ImageTransform`; ``print`` it to see the steps.

    Raises:
        UnknownWeightsError: a string that names no weights or model with weights.
        InvalidArgumentError: ``input_size`` is outside 16 to ``MAX_INPUT_SIZE`` (2048).
        ArgumentTypeError: ``weights_or_model`` or another argument has an unsupported type.

    Example:
        >>> make_transform("mnasnet_b1.tv_in1k")
        ImageTransform(
            ResizeShorterSide(256, bilinear, antialias),
            CenterCrop(224),
            ToTensor(),
            Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
        )
    """
    preprocessing = _preprocessing_of(weights_or_model)
    check_bool("train", train)
    if input_size is not None:
        check_int("input_size", input_size, minimum=MIN_INPUT_SIZE, maximum=MAX_INPUT_SIZE)
        # Integer arithmetic: at the recipe's own size this gives back its resize exactly
        # (timm's floor(160 / 0.875) = 182 = 160 * 256 // 224).
        resize = input_size * preprocessing.resize // preprocessing.input_size
        preprocessing = replace(
            preprocessing, input_size=input_size, resize_size=resize, crop_pct=None
        )
    return ImageTransform(preprocessing=preprocessing, train=train)


def stack(transform: ImageTransform, images: Sequence[Any]) -> torch.Tensor:
    """Apply ``transform`` to each image and stack the results into an NCHW batch."""
    return torch.stack([transform(image) for image in images])
