"""Argument types and option groups shared by the commands."""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Callable
from typing import Any

from .._validate import check_device as validate_device

GLOB = frozenset("*?[")  # a pattern with one of these is a shell pattern, else a substring
DEFAULT_MODEL = "mnasnet_a1"


def number_type(
    cast: Callable[[str], float], accepts: Callable[[float], bool], expected: str
) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses with ``cast`` and refuses values ``accepts`` rejects."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = number_type(int, lambda v: v >= 1, "a positive integer")
non_negative_int = number_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = number_type(float, lambda v: 0 < v < math.inf, "a positive number")


def check_device(device: str | None) -> None:
    if device is not None:
        validate_device(device, "--device")


def add_model_options(parser: argparse.ArgumentParser, *, classes: bool = False) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        "-m",
        default=DEFAULT_MODEL,
        metavar="NAME",
        help=f"registered model name (default: {DEFAULT_MODEL}; `mnaszoo list` shows them)",
    )
    group.add_argument(
        "--weights",
        "-w",
        metavar="TAG",
        help="weights tag or id, e.g. tv_in1k (default: the model's default weights)",
    )
    group.add_argument(
        "--checkpoint",
        "-c",
        metavar="PATH",
        help="a local weights file (mnaszoo, timm or torchvision layout) or a save_pretrained"
        " directory, instead of published weights",
    )
    if classes:
        group.add_argument(
            "--classes",
            metavar="FILE",
            help="class names, one per line in class-index order (for fine-tuned models)",
        )
    group.add_argument(
        "--input-size",
        type=positive_int,
        metavar="N",
        help="input resolution N x N (the resize scales with it; default: the weights' recipe)",
    )
    group.add_argument(
        "--device", metavar="D", help="cpu, cuda, cuda:1, ... (default: cuda if available)"
    )
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="download cache (default: the Hugging Face cache and ~/.cache/mnaszoo)",
    )


class _InputSize(argparse.Action):
    """``--input-size`` or its old spelling ``--image-size``: one value, given once.

    The old spelling sets the same value and warns that it goes; giving both is an error,
    since they are one value.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        first = getattr(namespace, "_input_size_option", None)
        if first is not None and first != option_string:
            parser.error(
                f"{first} and {option_string} are one option; give --input-size only"
                " (--image-size is its deprecated spelling)"
            )
        namespace._input_size_option = option_string
        if option_string == "--image-size":
            warnings.warn(
                f"{option_string} is deprecated and goes in the next release; use --input-size"
                " (the same value).",
                FutureWarning,
                stacklevel=2,
            )
        setattr(namespace, self.dest, values)


def add_input_size(parser: argparse.ArgumentParser, *, minimum: int = 1, help: str) -> None:
    """Add ``--input-size N`` (default 224) and its hidden, deprecated alias ``--image-size``."""
    side = number_type(int, lambda v: v >= minimum, f"an integer >= {minimum}")
    parser.add_argument(
        "--input-size", type=side, default=224, metavar="N", action=_InputSize, help=help
    )
    parser.add_argument(
        "--image-size", dest="input_size", type=side, action=_InputSize, help=argparse.SUPPRESS
    )
