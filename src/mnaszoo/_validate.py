"""Argument checks shared by every part of mnaszoo, used at the public entry points.

They raise mnaszoo errors that say what was received and what is accepted, and never use
``assert`` (which ``python -O`` removes).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ArgumentTypeError, InvalidArgumentError, MnaszooError

__all__ = [
    "MAX_INPUT_SIZE",
    "MIN_INPUT_SIZE",
    "check_bool",
    "check_choice",
    "check_device",
    "check_float",
    "check_input_size",
    "check_int",
    "check_labels",
    "renamed_input_size",
]

MIN_INPUT_SIZE = 16
"""The smallest input side a network takes: five stride-2 stages leave a 1 x 1 map at 16 px."""
MAX_INPUT_SIZE = 2048
"""The largest input side accepted: MnasNet at 2048 pixels already needs about 1 GB per image; a
mistyped 100000 would need terabytes."""


def check_int(
    name: str,
    value: object,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    error: Callable[[str], MnaszooError] = InvalidArgumentError,
) -> int:
    """Return ``value`` if it is an int (not a bool) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__} {value!r}.")
    if minimum is not None and value < minimum:
        raise error(f"{name} must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise error(f"{name} must be <= {maximum}, got {value}.")
    return value


def check_float(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
    error: Callable[[str], MnaszooError] = InvalidArgumentError,
) -> float:
    """Return ``float(value)`` if it is a finite real number within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} must be a number, got {type(value).__name__} {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        raise error(f"{name} must be a finite number, got {value!r}.")
    if minimum is not None and (number < minimum or (not min_inclusive and number == minimum)):
        bound = ">=" if min_inclusive else ">"
        raise error(f"{name} must be {bound} {minimum}, got {value!r}.")
    if maximum is not None and (number > maximum or (not max_inclusive and number == maximum)):
        bound = "<=" if max_inclusive else "<"
        raise error(f"{name} must be {bound} {maximum}, got {value!r}.")
    return number


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(
            f"{name} must be True or False, got {type(value).__name__} {value!r}."
        )
    return value


def check_choice(name: str, value: object, accepted: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``accepted``.

    Raises:
        InvalidArgumentError: anything else, naming ``name`` and listing what is accepted.
    """
    if not isinstance(value, str) or value not in accepted:
        raise InvalidArgumentError(
            f"Unknown {name} {value!r}; accepted: {', '.join(map(repr, accepted))}."
        )
    return value


def check_input_size(input_size: object) -> tuple[int, int]:
    """``(height, width)`` from an int side or a pair, each in
    [:data:`MIN_INPUT_SIZE`, :data:`MAX_INPUT_SIZE`].

    Raises:
        InvalidArgumentError: a pair of the wrong length, or a side out of range.
        ArgumentTypeError: not an int or a pair of ints.
    """
    if isinstance(input_size, (tuple, list)):
        if len(input_size) != 2:
            raise InvalidArgumentError(
                f"input_size must be an int or a (height, width) pair, got {input_size!r}."
            )
        return (
            check_int(
                "input_size height", input_size[0], minimum=MIN_INPUT_SIZE, maximum=MAX_INPUT_SIZE
            ),
            check_int(
                "input_size width", input_size[1], minimum=MIN_INPUT_SIZE, maximum=MAX_INPUT_SIZE
            ),
        )
    side = check_int("input_size", input_size, minimum=MIN_INPUT_SIZE, maximum=MAX_INPUT_SIZE)
    return (side, side)


def check_device(device: object, name: str = "device") -> Any:
    """The ``torch.device`` for ``device`` if this torch can run a model there.

    ``meta`` holds no data, and CUDA or MPS must be available: both are refused here with a
    mnaszoo error rather than an assertion deep inside torch.
    """
    import torch

    try:
        parsed = torch.device(device)  # type: ignore[call-overload]
    except (RuntimeError, TypeError) as error:
        where = "" if name == "device" else f" ({name})"
        raise InvalidArgumentError(f"Unknown device {device!r}{where}: {error}") from error
    if parsed.type == "meta":
        raise InvalidArgumentError(
            f"{name} {device!r} holds no data, so nothing can run there; use cpu or cuda."
        )
    if parsed.type == "cuda":
        available = torch.cuda.is_available()
    elif parsed.type == "mps":
        available = bool(torch.backends.mps.is_available())
    else:
        available = True
    if not available:
        raise InvalidArgumentError(
            f"{name} {device!r}: {parsed.type.upper()} is not available to this torch"
            f" {torch.__version__}; use cpu."
        )
    return parsed


def check_labels(
    labels: object,
    num_classes: int,
    *,
    where: str = "labels",
    error: Callable[[str], MnaszooError] = InvalidArgumentError,
) -> tuple[str, ...]:
    """``labels`` as a tuple, if they can name a model's classes: one non-empty string of one
    line per class, no two equal (evaluate matches class folders by name, and predict's output
    must say which class it means).

    Args:
        labels: the class names, in class-index order.
        num_classes: the model's number of outputs.
        where: how messages name the labels (``"labels"``, a config file).
        error: the error raised (a checkpoint's config gives ``CorruptCheckpointError``).

    Raises:
        MnaszooError: ``error`` for a label that is not a string, is empty or spans lines, a
            repeated label, or the wrong count; ``ArgumentTypeError`` when ``labels`` is not a
            list or tuple of them.
    """
    if isinstance(labels, str | bytes) or not isinstance(labels, list | tuple):
        raise ArgumentTypeError(
            f"{where} must be a list of class names, got {type(labels).__name__} {labels!r:.80}."
        )
    for index, label in enumerate(labels):
        if not isinstance(label, str):
            raise error(
                f"{where}: label {index} is {type(label).__name__} {label!r:.40}; class names"
                " must be strings (pass str(...) yourself if that is what you mean)."
            )
        if not label.strip() or "\n" in label or "\r" in label:
            raise error(
                f"{where}: label {index} is {label!r:.40}; a class name must be non-empty and"
                " on one line."
            )
    seen: dict[str, int] = {}
    for index, label in enumerate(labels):
        if label in seen:
            raise error(
                f"{where}: the labels {seen[label]} and {index} are both {label!r}; class names"
                " must differ, or the output could not say which class it means. Make them"
                " unique (e.g. 'crane (bird)' and 'crane (machine)')."
            )
        seen[label] = index
    if len(labels) != num_classes:
        raise error(
            f"{where} has {len(labels)} names but the model has {num_classes} classes: give one"
            " per output, in class-index order."
        )
    return tuple(labels)


def renamed_input_size(input_size: int | None, image_size: int | None, default: int = 224) -> int:
    """The input resolution of a function that took ``image_size=`` before ``input_size=``.

    ``image_size=`` still works for one release, with a :class:`DeprecationWarning`; giving
    both is an error, since they are one value.

    Raises:
        InvalidArgumentError: both ``input_size=`` and ``image_size=`` were given.
    """
    if image_size is None:
        return default if input_size is None else input_size
    if input_size is not None:
        raise InvalidArgumentError(
            f"Got input_size={input_size!r} and image_size={image_size!r}; give input_size="
            " only (image_size= is its deprecated spelling)."
        )
    # stacklevel 3: the warning points at the line that called the public function.
    warnings.warn(
        "image_size= is deprecated and goes in the next release; use input_size="
        " (the same value: the input resolution).",
        DeprecationWarning,
        stacklevel=3,
    )
    return image_size
