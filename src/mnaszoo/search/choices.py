"""The choices of the search space: the skeleton the search varies (MobileNetV2's by default),
the per-block decisions and their default options, and the checks on custom options."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._validate import check_float, check_int
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..models.specs import SUPPORTED_KERNELS, BlockKind

__all__ = [
    "DEFAULT_FILTERS",
    "DEFAULT_KERNELS",
    "DEFAULT_LAYERS",
    "DEFAULT_OPS",
    "DEFAULT_SE_RATIOS",
    "DEFAULT_SKIPS",
    "FIELDS",
    "MB_OP",
    "MOBILENET_V2_BASE",
    "BaseBlock",
    "BlockChoice",
    "Decision",
    "check_filters",
    "check_kernel",
    "check_layers",
    "check_op",
    "check_se",
    "op_kind",
    "options",
]

FIELDS: tuple[str, ...] = ("op", "kernel", "se_ratio", "skip", "filters", "layers")
"""The per-block decisions, in token order."""

DEFAULT_OPS: tuple[str, ...] = ("conv", "dconv", "mb3", "mb6")
DEFAULT_KERNELS: tuple[int, ...] = (3, 5)
DEFAULT_SE_RATIOS: tuple[float, ...] = (0.0, 0.25)
DEFAULT_SKIPS: tuple[bool, ...] = (False, True)
DEFAULT_FILTERS: tuple[float, ...] = (0.75, 1.0, 1.25)
DEFAULT_LAYERS: tuple[int, ...] = (-1, 0, 1)

MB_OP = re.compile(r"mb([1-9][0-9]?)")


@dataclass(frozen=True)
class BaseBlock:
    """One block of the skeleton the search varies.

    Args:
        expansion: the base expansion ratio (used only to pick :meth:`SearchSpace.base_tokens`).
        channels: base output channels; the ``filters`` decision multiplies them.
        repeats: base number of layers; the ``layers`` decision adds to it.
        stride: stride of the block's first layer (fixed by the skeleton).

    Raises:
        InvalidArgumentError: a field is out of range.
        ArgumentTypeError: a field has the wrong type.
    """

    expansion: int
    channels: int
    repeats: int
    stride: int

    def __post_init__(self) -> None:
        check_int("BaseBlock.expansion", self.expansion, minimum=1)
        check_int("BaseBlock.channels", self.channels, minimum=1)
        check_int("BaseBlock.repeats", self.repeats, minimum=1)
        check_int("BaseBlock.stride", self.stride, minimum=1, maximum=2)


MOBILENET_V2_BASE: tuple[BaseBlock, ...] = (
    BaseBlock(1, 16, 1, 1),
    BaseBlock(6, 24, 2, 2),
    BaseBlock(6, 32, 3, 2),
    BaseBlock(6, 64, 4, 2),
    BaseBlock(6, 96, 3, 1),
    BaseBlock(6, 160, 3, 2),
    BaseBlock(6, 320, 1, 1),
)
"""MobileNetV2's seven blocks (expansion, channels, repeats, stride), the paper's skeleton."""


@dataclass(frozen=True)
class BlockChoice:
    """The choice for one skeleton block.

    Args:
        op: ``"conv"`` (regular convolution), ``"dconv"`` (depthwise separable) or ``"mbE"``
            (inverted residual with expansion ``E``, e.g. ``"mb6"``).
        kernel: kernel size.
        se_ratio: squeeze-and-excitation ratio relative to the block input (0 = none).
        skip: allow identity skips (they apply only where stride is 1 and widths match).
        filters: multiplier of the block's base channels.
        layers: change of the block's base repeats.
    """

    op: str
    kernel: int
    se_ratio: float
    skip: bool
    filters: float
    layers: int


@dataclass(frozen=True)
class Decision:
    """One token of an architecture: which block, which field, and its options."""

    block: int
    field: str
    options: tuple[Any, ...]


def op_kind(op: str) -> tuple[BlockKind, int]:
    if op == "conv":
        return BlockKind.CONV, 1
    if op == "dconv":
        return BlockKind.DS, 1
    match = MB_OP.fullmatch(op)
    if match is None:
        raise InvalidArgumentError(
            f"Unknown search op {op!r}; accepted ops are 'conv', 'dconv' and 'mbE' with an integer"
            " expansion E from 1 to 99 (e.g. 'mb3', 'mb6')."
        )
    return BlockKind.MB, int(match.group(1))


def options(name: str, values: object, check: Any) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ArgumentTypeError(
            f"{name} must be a non-empty tuple or list of options, got {type(values).__name__}."
        )
    options = tuple(check(f"{name}[{i}]", value) for i, value in enumerate(values))
    if not options:
        raise InvalidArgumentError(f"{name} must hold at least one option, got none.")
    if len(set(options)) != len(options):
        raise InvalidArgumentError(f"{name} must not repeat an option, got {options}.")
    return options


def check_op(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string op, got {type(value).__name__}.")
    op_kind(value)
    return value


def check_kernel(name: str, value: object) -> int:
    kernel = check_int(name, value)
    if kernel not in SUPPORTED_KERNELS:
        raise InvalidArgumentError(f"{name} must be one of {SUPPORTED_KERNELS}, got {kernel}.")
    return kernel


def check_se(name: str, value: object) -> float:
    return check_float(name, value, minimum=0.0, maximum=1.0, max_inclusive=False)


def check_filters(name: str, value: object) -> float:
    return check_float(name, value, minimum=0.0, min_inclusive=False, maximum=8.0)


def check_layers(name: str, value: object) -> int:
    return check_int(name, value, minimum=-64, maximum=64)
