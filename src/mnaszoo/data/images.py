"""Turn paths, bytes, PIL images, numpy arrays and torch tensors into RGB PIL images.

This is the input boundary of preprocessing: every item is decoded and checked here, so a bad
image fails with :class:`~mnaszoo.errors.InvalidImageError` naming the item (``image 3`` or
``'photos/x.jpg'``) instead of a cryptic error deep inside a convolution. No resizing or
normalisation happens here.

======================  ======================================================================
Input or PIL mode       Rule
======================  ======================================================================
path, ``bytes``         Opened with PIL and fully decoded (``.load()``), so truncated or corrupt
                        files fail here; EXIF orientation applied (``ImageOps.exif_transpose``);
                        then the mode rules below.
PIL image               Loaded, EXIF orientation applied, then the mode rules below. The
                        caller's image is not modified beyond loading its pixels.
``RGB``                 As is.
``L``, ``1``            Grey replicated to three channels (``1`` gives 0 or 255).
with alpha              ``LA``, ``La``, ``PA``, ``RGBA``, ``RGBa``, and ``P``, ``L`` or ``RGB``
                        with a ``transparency`` entry (PNG tRNS): alpha-composited on a WHITE
                        background, ``round((c * a + 255 * (255 - a)) / 255)``. Web images
                        (logos, product shots) are mostly drawn on white; PIL's plain
                        ``convert('RGB')`` drops alpha and shows whatever colour hides under
                        transparent pixels (often black or garbage).
``P``                   Without transparency: palette looked up (``convert('RGB')``).
``CMYK``, ``YCbCr``     Also ``LAB``, ``HSV``, ``RGBX``: PIL's ``convert('RGB')``, no ICC colour
                        management.
``I;16``, ``I``         Also ``I;16B``, ``I;16L``, ``I;16N``: 16-bit grey, clipped to
                        [0, 65535], scaled to 8 bits by ``round(v / 257)``, replicated. (PIL's
                        own convert clips every value above 255 to white.)
``F``                   Float grey on PIL's 0-255 scale: rounded, clipped to [0, 255],
                        replicated; NaN or infinity is an error.
other modes             ``convert('RGB')`` if PIL can, else an error.
numpy array             Channels LAST: ``HxW`` or ``HxWxC`` with C in 1, 3, 4 (4 = RGBA,
                        composited on white as above).
torch tensor            Channels FIRST: ``HxW`` or ``CxHxW`` with C in 1, 3, 4; detached and
                        moved to the CPU.
array/tensor dtype      ``uint8`` as is; other integers must lie in [0, 255]; ``bool`` gives
                        0/255 (like mode ``1``); floats must be finite and in [0, 1] (half a
                        grey level of slack), mapped by ``round(x * 255)``. Other dtypes
                        (complex, object, ...) and out-of-range values are errors, never
                        silently clipped.
batch                   ``load_images`` only: a list/tuple of items, a 4-D NCHW tensor or a
                        4-D NHWC array.
======================  ======================================================================

Empty inputs (zero-sized arrays or images, empty bytes or files, an empty list or batch),
directories, missing files and non-image files raise :class:`InvalidImageError`; ``None`` and
unsupported types raise :class:`~mnaszoo.errors.ArgumentTypeError`. Images above
``PIL.Image.MAX_IMAGE_PIXELS`` raise :class:`InvalidImageError` (PIL itself only warns up to
twice the limit); the warning filter used for that is local to the call. A global
``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` set by the caller is honoured.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mnaszoo.errors import ArgumentTypeError, InvalidImageError

__all__ = [
    "ImageInput",
    "batch_items",
    "load_image",
    "load_images",
    "probe_image",
    "report_unreadable",
]

ImageInput: TypeAlias = (
    str | os.PathLike[str] | bytes | Image.Image | npt.NDArray[Any] | torch.Tensor
)
"""Anything :func:`load_image` accepts."""

_EXPECTED = "a path, bytes, a PIL image, a numpy array (HWC) or a torch tensor (CHW)"
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_FLOAT_SLACK = 0.5 / 255  # floats within half a grey level of [0, 1] round into range


def load_image(item: ImageInput, *, name: str | None = None) -> Image.Image:
    """Decode and check one image, returning a new RGB PIL image.

    Args:
        item: A path, encoded bytes, PIL image, ``HxW``/``HxWxC`` numpy array or
            ``HxW``/``CxHxW`` torch tensor (see the module docstring for the rules).
        name: How errors name the item; defaults to the quoted path, or ``"image"``.

    Returns:
        An RGB image, already decoded, with EXIF orientation applied.

    Raises:
        InvalidImageError: The item cannot be read or has a wrong shape, dtype or value range.
        ArgumentTypeError: The item is ``None`` or of an unsupported type.

    Example:
        >>> import numpy as np
        >>> image = load_image(np.zeros((48, 64), dtype=np.uint8))  # grey, H x W
        >>> image.mode, image.size
        ('RGB', (64, 48))
        >>> load_image(b"not an image")
        Traceback (most recent call last):
            ...
        mnaszoo.errors.InvalidImageError: image: not an image file PIL can identify
    """
    if name is None:
        name = repr(os.fspath(item)) if isinstance(item, os.PathLike | str) else "image"
    return _load(item, name)


def load_images(items: ImageInput | Sequence[ImageInput]) -> list[Image.Image]:
    """Decode and check one image or a batch, returning one RGB PIL image per item.

    Items are processed in order and the first bad one raises, naming its index (and its path,
    if it has one), so a batch is never returned shorter or shifted.

    Args:
        items: One item as for :func:`load_image`, a list or tuple of them, a 4-D ``NxCxHxW``
            tensor or a 4-D ``NxHxWxC`` numpy array.

    Returns:
        The RGB images, in order.

    Raises:
        InvalidImageError: An item is bad, or the list or batch is empty.
        ArgumentTypeError: ``items`` or an item is ``None`` or of an unsupported type.

    Example:
        >>> import torch
        >>> [image.size for image in load_images(torch.rand(2, 3, 32, 40))]  # N x C x H x W
        [(40, 32), (40, 32)]
    """
    if isinstance(items, list | tuple):
        batch: Sequence[Any] = items
    elif isinstance(items, np.ndarray | torch.Tensor) and items.ndim == 4:
        batch = list(items)
    else:
        batch = [items]
    if not batch:
        raise InvalidImageError(f"no images: got an empty {type(items).__name__}")
    return [_load(item, _batch_name(index, item)) for index, item in enumerate(batch)]


def batch_items(items: ImageInput | Sequence[ImageInput]) -> list[tuple[str, Any]]:
    """The items of one image or a batch, each with its name for errors, nothing decoded.

    Raises:
        InvalidImageError: the list or batch is empty.
    """
    if isinstance(items, list | tuple):
        batch: Sequence[Any] = items
    elif isinstance(items, np.ndarray | torch.Tensor) and items.ndim == 4:
        batch = list(items)
    else:
        return [(_single_name(items), items)]
    if not batch:
        raise InvalidImageError(f"no images: got an empty {type(items).__name__}")
    return [(_batch_name(index, item), item) for index, item in enumerate(batch)]


def probe_image(item: object, name: str) -> None:
    """The cheap checks of :func:`load_image`, without decoding the pixels: a path exists, is a
    non-empty file and, like encoded bytes, has a header PIL identifies within the pixel limit.

    Raises:
        InvalidImageError: the item fails one of these checks.
    """
    if isinstance(item, str | os.PathLike):
        path = os.fspath(item)
        if not os.path.exists(path):
            raise InvalidImageError(f"{name}: no such file")
        if os.path.isdir(path):
            raise InvalidImageError(f"{name}: is a directory, not an image file")
        if os.path.getsize(path) == 0:
            raise InvalidImageError(f"{name}: the file is empty")
        source: Any = path
    elif isinstance(item, bytes | bytearray | memoryview) and len(item):
        source = io.BytesIO(item)
    else:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source):
                pass
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidImageError(f"{name}: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImageError(f"{name}: not an image file PIL can identify") from exc
    except Exception as exc:  # a header PIL recognises but cannot parse
        raise InvalidImageError(f"{name}: cannot decode image ({exc})") from exc


def _single_name(item: object) -> str:
    return repr(os.fspath(item)) if isinstance(item, os.PathLike | str) else "image"


def _batch_name(index: int, item: object) -> str:
    if isinstance(item, os.PathLike | str):
        return f"image {index} ({os.fspath(item)!r})"
    return f"image {index}"


def _load(item: object, name: str) -> Image.Image:
    if item is None:
        raise ArgumentTypeError(f"{name} is None; expected {_EXPECTED}")
    if isinstance(item, str | os.PathLike):
        path = os.fspath(item)
        if not os.path.exists(path):
            raise InvalidImageError(f"{name}: no such file")
        if os.path.isdir(path):
            raise InvalidImageError(f"{name}: is a directory, not an image file")
        if os.path.getsize(path) == 0:
            raise InvalidImageError(f"{name}: the file is empty")
        return _decode(path, name)
    if isinstance(item, bytes | bytearray | memoryview):
        if len(item) == 0:
            raise InvalidImageError(f"{name}: empty bytes")
        return _decode(io.BytesIO(item), name)
    if isinstance(item, Image.Image):
        return _from_pil(item, name)
    if isinstance(item, np.ndarray):
        return _from_array(item, name, channels_first=False)
    if isinstance(item, torch.Tensor):
        tensor = item.detach().cpu()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()
        _check_shape(tuple(tensor.shape), name, channels_first=True)
        if tensor.ndim == 3:
            tensor = tensor.permute(1, 2, 0)
        try:
            array = tensor.numpy()
        except (TypeError, RuntimeError) as exc:
            raise InvalidImageError(f"{name}: tensor of dtype {item.dtype}: {exc}") from exc
        return _from_array(array, name, channels_first=None)
    raise ArgumentTypeError(f"{name}: unsupported type {type(item).__name__}; expected {_EXPECTED}")


def _decode(source: str | io.BytesIO, name: str) -> Image.Image:
    """Open, fully decode and EXIF-transpose an encoded image, then apply the mode rules."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidImageError(
            f"{name}: {exc} If the file is trusted, raise the limit first, e.g. "
            "PIL.Image.MAX_IMAGE_PIXELS = 500_000_000 (or None to disable the check)."
        ) from exc
    except UnidentifiedImageError as exc:
        raise InvalidImageError(f"{name}: not an image file PIL can identify") from exc
    except Exception as exc:  # PIL decoders raise OSError, SyntaxError, ValueError, EOFError...
        raise InvalidImageError(f"{name}: cannot decode image ({exc})") from exc
    return _to_rgb(image, name)


def _from_pil(image: Image.Image, name: str) -> Image.Image:
    try:
        image.load()
        transposed = ImageOps.exif_transpose(image)
    except Exception as exc:  # a lazily opened image can still be truncated or corrupt
        raise InvalidImageError(f"{name}: cannot decode image ({exc})") from exc
    if transposed.width == 0 or transposed.height == 0:
        raise InvalidImageError(f"{name}: the image is empty (size {transposed.size})")
    return _to_rgb(transposed, name)


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    """Apply the mode rules of the module docstring."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        wide = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        return _grey_to_rgb((wide + 128) // 257)  # == round(v / 257); no ties exist
    if mode == "F":
        floats = np.asarray(image, dtype=np.float64)
        if not np.isfinite(floats).all():
            raise InvalidImageError(f"{name}: float (mode 'F') image contains NaN or infinity")
        return _grey_to_rgb(np.clip(np.rint(floats), 0, 255))
    if image.has_transparency_data:
        if mode == "La":  # PIL converts premultiplied La only to LA
            image = image.convert("LA")
        rgba = np.asarray(image.convert("RGBA")).astype(np.uint32)
        colour, alpha = rgba[..., :3], rgba[..., 3:]
        over_white = (colour * alpha + 255 * (255 - alpha) + 127) // 255
        return Image.fromarray(over_white.astype(np.uint8))
    if mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise InvalidImageError(f"{name}: PIL cannot convert mode {mode!r} to RGB") from exc


def _grey_to_rgb(grey: npt.NDArray[Any]) -> Image.Image:
    return Image.fromarray(np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1))


def _check_shape(shape: tuple[int, ...], name: str, *, channels_first: bool) -> None:
    if channels_first:
        kind, layout, fix = "tensor", "CxHxW (channels first)", ".permute(2, 0, 1)"
    else:
        kind, layout, fix = "numpy array", "HxWxC (channels last)", ".transpose(1, 2, 0)"
    if len(shape) == 4:
        raise InvalidImageError(
            f"{name}: {kind} of shape {shape} is a batch; pass it to load_images on its own"
        )
    expected = f"expected HxW or {layout} with C in 1, 3, 4"
    if len(shape) not in (2, 3):
        raise InvalidImageError(f"{name}: {kind} of shape {shape}; {expected}")
    if len(shape) == 3:
        channels, other = (shape[0], shape[2]) if channels_first else (shape[2], shape[0])
        if channels not in (1, 3, 4):
            hint = f" (if C is on the other side, use {fix})" if other in (1, 3, 4) else ""
            raise InvalidImageError(f"{name}: {kind} of shape {shape}; {expected}{hint}")
    if 0 in shape:
        raise InvalidImageError(f"{name}: {kind} of shape {shape} is empty")


def _from_array(array: npt.NDArray[Any], name: str, *, channels_first: bool | None) -> Image.Image:
    """Check and convert an HxW or HxWxC array; ``channels_first=None``: shape already checked."""
    if channels_first is not None:
        _check_shape(array.shape, name, channels_first=channels_first)
    kind = array.dtype.kind
    if kind == "b":
        pixels = array.astype(np.uint8) * 255
    elif kind in "ui":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise InvalidImageError(
                f"{name}: integer ({array.dtype}) values must lie in [0, 255], got [{low}, {high}];"
                " scale 16-bit data to floats in [0, 1] first (e.g. x / 65535)"
            )
        pixels = array.astype(np.uint8)
    elif kind == "f":
        values = array.astype(np.float64)
        if not np.isfinite(values).all():
            raise InvalidImageError(f"{name}: float values contain NaN or infinity")
        fmin, fmax = float(values.min()), float(values.max())
        if fmin < -_FLOAT_SLACK or fmax > 1 + _FLOAT_SLACK:
            raise InvalidImageError(
                f"{name}: float ({array.dtype}) values must lie in [0, 1], "
                f"got [{fmin:g}, {fmax:g}]; divide 0-255 data by 255 or convert it to uint8"
            )
        pixels = np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    else:
        raise InvalidImageError(
            f"{name}: dtype {array.dtype} is not supported; expected uint8, an integer type with "
            "values in [0, 255], bool, or a float type with values in [0, 1]"
        )
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    return _to_rgb(Image.fromarray(np.ascontiguousarray(pixels)), name)


def report_unreadable(skipped: list[tuple[str, str]], corrupt: str, log: logging.Logger) -> None:
    """Say which images of a folder could not be read: refuse them with ``corrupt="error"``,
    else log them once (the first ten shown).

    Args:
        skipped: ``(path, reason)`` of each unreadable image.
        corrupt: ``"error"`` or ``"skip"`` (checked by the caller).
        log: the logger of the loader that skipped them.

    Raises:
        InvalidImageError: ``corrupt == "error"`` and an image was unreadable.
    """
    if not skipped:
        return
    shown = "\n".join(f"  {path}: {reason}" for path, reason in skipped[:10])
    more = f"\n  ... and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    if corrupt == "error":
        raise InvalidImageError(
            f"{len(skipped)} images cannot be read:\n{shown}{more}\nRemove or fix them, or"
            " pass corrupt='skip' (--corrupt skip) to leave them out."
        )
    log.warning("skipping %d unreadable images:\n%s%s", len(skipped), shown, more)
