"""Reading a search space back from its JSON data, and describing one in a few lines."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentTypeError, InvalidArgumentError
from ..models.specs import BlockKind
from .choices import FIELDS, BaseBlock, op_kind

__all__ = ["describe_space", "nearest_tokens", "space_from_dict"]

SPACE_FORMAT = 1


def space_from_dict(cls: Any, data: Mapping[str, Any]) -> Any:
    """What :meth:`~mnaszoo.search.space.SearchSpace.from_dict` returns."""
    if not isinstance(data, Mapping):
        raise ArgumentTypeError(f"space data must be a mapping, got {type(data).__name__}.")
    expected = {"format", "base", "stem_channels", "head_channels", *FIELDS}
    if set(data) != expected:
        raise InvalidArgumentError(
            f"space data must have exactly the keys {sorted(expected)}, got {sorted(data)}."
        )
    if data["format"] != SPACE_FORMAT:
        raise InvalidArgumentError(
            f"space data format {data['format']!r} is not supported; expected {SPACE_FORMAT}."
        )
    base = data["base"]
    if not isinstance(base, list) or not all(
        isinstance(row, list) and len(row) == 4 for row in base
    ):
        raise InvalidArgumentError(
            "space data 'base' must be a list of [expansion, channels, repeats, stride]."
        )
    return cls(
        tuple(BaseBlock(*row) for row in base),
        stem_channels=data["stem_channels"],
        head_channels=data["head_channels"],
        ops=data["op"],
        kernels=data["kernel"],
        se_ratios=data["se_ratio"],
        skips=data["skip"],
        filters=data["filters"],
        layers=data["layers"],
    )


def describe_space(space: Any) -> str:
    """What :meth:`~mnaszoo.search.space.SearchSpace.describe` returns."""
    self = space
    lines = [
        f"SearchSpace: {self.num_blocks} blocks x {len(FIELDS)} decisions"
        f" = {len(self.decisions)} tokens",
        f"  stem {self.stem_channels}, head {self.head_channels}",
    ]
    for index, b in enumerate(self.base):
        lines.append(
            f"  block {index}: base expansion {b.expansion}, channels {b.channels},"
            f" repeats {b.repeats}, stride {b.stride}"
        )
    for name in FIELDS:
        lines.append(f"  {name}: {self.options[name]}")
    lines.append(
        f"  size: {self.choices_per_block}^{self.num_blocks} = {self.size:.3e} token sequences"
    )
    lines.append(f"  distinct networks: {self.distinct_size():.3e}")
    return "\n".join(lines)


def nearest_tokens(space: Any) -> tuple[int, ...]:
    """What :meth:`~mnaszoo.search.space.SearchSpace.base_tokens` returns."""
    self = space
    tokens: list[int] = []
    for block in self.base:
        targets: dict[str, Any] = {
            "op": None,
            "kernel": 3,
            "se_ratio": 0.0,
            "skip": True,
            "filters": 1.0,
            "layers": 0,
        }
        for name in FIELDS:
            options = self.options[name]
            keys: list[Any]
            if name == "op":
                keys = [_op_distance(op, block.expansion) for op in options]
            else:
                keys = [abs(float(option) - float(targets[name])) for option in options]
            tokens.append(min(range(len(options)), key=keys.__getitem__))
    return tuple(tokens)


def _op_distance(op: str, expansion: int) -> tuple[float, int]:
    kind, op_expansion = op_kind(op)
    # Expansion 1 is a depthwise-separable block (MobileNetV2's first block); prefer it to mb1,
    # and a regular convolution is the last resort for any skeleton block.
    rank = {BlockKind.DS: 0, BlockKind.MB: 1, BlockKind.CONV: 2}[kind]
    if kind is BlockKind.CONV:
        return (math.inf, rank)
    return (abs(op_expansion - expansion), rank)
