"""Resolve a :class:`~mnaszoo.models.specs.NetworkSpec` and multipliers into concrete block widths.

The plan is the single source of truth for every derived number: the builder makes one module per
:class:`BlockPlan`, and the parameter and MAC counters read the same plan, so tables, counts and
models cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._validate import check_float
from .specs import BlockKind, NetworkSpec

__all__ = [
    "BlockPlan",
    "NetworkPlan",
    "make_divisible",
    "resolve_plan",
    "scale_channels",
    "scale_repeats",
]

CHANNEL_DIVISOR = 8
ROUND_LIMIT = 0.9
MAX_MULTIPLIER = 8.0


def make_divisible(
    value: float, divisor: int = CHANNEL_DIVISOR, round_limit: float = ROUND_LIMIT
) -> int:
    """Round ``value`` to a multiple of ``divisor`` (at least ``divisor``), at most 10% down.

    This is the rule shared by TF (``round_filters``), timm (``make_divisible``) and torchvision
    (``_round_to_multiple_of``).
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded


def scale_channels(channels: int, width_mult: float) -> int:
    """Scale a channel count by ``width_mult``; at exactly 1.0 the count is kept as declared.

    Keeping declared widths at 1.0 matches TF, whose ``round_filters`` returns them unchanged
    without a multiplier (MnasNet-D1 declares 36 channels, which rounding would turn into 40).
    """
    if width_mult == 1.0:
        return channels
    return make_divisible(channels * width_mult)


def scale_repeats(repeats: int, depth_mult: float) -> int:
    """Scale a stage's block count by ``depth_mult``, rounding up as TF and timm do."""
    return math.ceil(repeats * depth_mult)


def _expanded_channels(in_channels: int, expansion: float) -> int:
    # TF uses input * int(e); timm make_divisible(input * e). They agree whenever the product is an
    # integral multiple of 8; an exact integral product is kept so D1 (36 * 9 = 324) matches TF.
    product = in_channels * expansion
    return int(product) if float(product).is_integer() else make_divisible(product)


def _se_channels(in_channels: int, se_ratio: float, rounding: str) -> int:
    if se_ratio <= 0:
        return 0
    raw = in_channels * se_ratio
    return max(1, round(raw) if rounding == "round" else int(raw))


@dataclass(frozen=True)
class BlockPlan:
    """One block with every width resolved.

    ``mid_channels`` is the width inside the block (the expanded width of an MBConv, the input
    width of a depthwise-separable block, the output width of a regular convolution);
    ``se_channels`` is 0 without squeeze-and-excitation; ``reduction`` is the total stride of the
    block's output relative to the network input.
    """

    stage: int
    index: int
    kind: BlockKind
    in_channels: int
    mid_channels: int
    out_channels: int
    kernel: int
    stride: int
    se_channels: int
    residual: bool
    reduction: int


@dataclass(frozen=True)
class NetworkPlan:
    """A network spec resolved at given width and depth multipliers."""

    spec: NetworkSpec
    width_mult: float
    depth_mult: float
    stem_channels: int
    head_channels: int
    stages: tuple[tuple[BlockPlan, ...], ...]

    @property
    def blocks(self) -> tuple[BlockPlan, ...]:
        """All blocks, input to output."""
        return tuple(block for stage in self.stages for block in stage)

    @property
    def stem_reduction(self) -> int:
        """Total stride after the stem."""
        return 2


def resolve_plan(
    spec: NetworkSpec, width_mult: float = 1.0, depth_mult: float = 1.0
) -> NetworkPlan:
    """Resolve ``spec`` at the given multipliers.

    Args:
        spec: the base table.
        width_mult: channel multiplier in (0, 8]; widths are rounded to multiples of 8, never more
            than 10% down. At 1.0 the declared widths are kept.
        depth_mult: block-count multiplier in (0, 8]; repeats are rounded up.

    Returns:
        The resolved :class:`NetworkPlan`.

    Raises:
        InvalidArgumentError: a multiplier is out of range.
        ArgumentTypeError: a multiplier is not a number.
    """
    width_mult = check_float(
        "width_mult", width_mult, minimum=0.0, min_inclusive=False, maximum=MAX_MULTIPLIER
    )
    depth_mult = check_float(
        "depth_mult", depth_mult, minimum=0.0, min_inclusive=False, maximum=MAX_MULTIPLIER
    )
    stem_width = 1.0 if spec.fixed_stem else width_mult
    stem = scale_channels(spec.stem_channels, stem_width)
    head = scale_channels(spec.head_channels, width_mult) if spec.scale_head else spec.head_channels
    in_channels, reduction = stem, 2
    stages: list[tuple[BlockPlan, ...]] = []
    for stage_index, stage in enumerate(spec.stages):
        stage_width = stem_width if stage_index == 0 else width_mult
        out_channels = scale_channels(stage.out_channels, stage_width)
        blocks: list[BlockPlan] = []
        for index in range(scale_repeats(stage.repeats, depth_mult)):
            stride = stage.stride if index == 0 else 1
            reduction *= stride
            if stage.kind is BlockKind.MB:
                mid = _expanded_channels(in_channels, stage.expansion)
            elif stage.kind is BlockKind.DS:
                mid = in_channels
            else:
                mid = out_channels
            blocks.append(
                BlockPlan(
                    stage=stage_index,
                    index=index,
                    kind=stage.kind,
                    in_channels=in_channels,
                    mid_channels=mid,
                    out_channels=out_channels,
                    kernel=stage.kernel,
                    stride=stride,
                    se_channels=_se_channels(in_channels, stage.se_ratio, spec.se_rounding),
                    residual=stage.skip and stride == 1 and in_channels == out_channels,
                    reduction=reduction,
                )
            )
            in_channels = out_channels
        stages.append(tuple(blocks))
    return NetworkPlan(
        spec=spec,
        width_mult=width_mult,
        depth_mult=depth_mult,
        stem_channels=stem,
        head_channels=head,
        stages=tuple(stages),
    )
