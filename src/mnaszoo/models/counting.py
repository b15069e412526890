"""Parameter and multiply-accumulate (MAC) counts computed from a plan, without building a model.

MACs follow the convention of the MnasNet paper, torchvision's ``_ops`` and the reference tables:
convolutions and the classifier only (SE's 1x1 convolutions included; pooling, BatchNorm,
activations, SE gating and residual additions not counted). Parameters are weights, biases and
BatchNorm affine terms (running statistics are buffers, not parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

from .plan import BlockPlan, NetworkPlan
from .specs import BlockKind

__all__ = ["LayerCount", "conv_output_size", "count_block", "count_macs", "count_params"]


def conv_output_size(size: int, kernel: int, stride: int) -> int:
    """Spatial output size of a convolution with mnaszoo's symmetric ``kernel // 2`` padding."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


@dataclass(frozen=True)
class LayerCount:
    """Parameters and MACs of one piece of the network, and its output's spatial size."""

    params: int
    macs: int
    out_size: tuple[int, int]


def _conv_bn(
    c_in: int, c_out: int, kernel: int, groups: int, out_hw: tuple[int, int]
) -> tuple[int, int]:
    weights = c_out * (c_in // groups) * kernel * kernel
    return weights + 2 * c_out, weights * out_hw[0] * out_hw[1]


def _se(channels: int, reduced: int) -> tuple[int, int]:
    if reduced == 0:
        return 0, 0
    return 2 * channels * reduced + reduced + channels, 2 * channels * reduced


def count_block(block: BlockPlan, in_size: tuple[int, int]) -> LayerCount:
    """Count one block whose input has spatial size ``in_size``."""
    out_hw = (
        conv_output_size(in_size[0], block.kernel, block.stride),
        conv_output_size(in_size[1], block.kernel, block.stride),
    )
    parts: list[tuple[int, int]] = []
    if block.kind is BlockKind.CONV:
        parts.append(_conv_bn(block.in_channels, block.out_channels, block.kernel, 1, out_hw))
        parts.append(_se(block.out_channels, block.se_channels))
    else:
        if block.kind is BlockKind.MB:
            parts.append(_conv_bn(block.in_channels, block.mid_channels, 1, 1, in_size))
        parts.append(
            _conv_bn(
                block.mid_channels, block.mid_channels, block.kernel, block.mid_channels, out_hw
            )
        )
        parts.append(_se(block.mid_channels, block.se_channels))
        parts.append(_conv_bn(block.mid_channels, block.out_channels, 1, 1, out_hw))
    return LayerCount(
        params=sum(p for p, _ in parts), macs=sum(m for _, m in parts), out_size=out_hw
    )


def _walk(
    plan: NetworkPlan, input_size: tuple[int, int], in_chans: int, num_classes: int
) -> list[tuple[str, LayerCount]]:
    rows: list[tuple[str, LayerCount]] = []
    size = (conv_output_size(input_size[0], 3, 2), conv_output_size(input_size[1], 3, 2))
    params, macs = _conv_bn(in_chans, plan.stem_channels, 3, 1, size)
    rows.append(("stem", LayerCount(params, macs, size)))
    for block in plan.blocks:
        count = count_block(block, size)
        rows.append((f"stages.{block.stage}.{block.index}", count))
        size = count.out_size
    last = plan.blocks[-1].out_channels
    params, macs = _conv_bn(last, plan.head_channels, 1, 1, size)
    rows.append(("head", LayerCount(params, macs, size)))
    if num_classes > 0:
        classifier = plan.head_channels * num_classes
        rows.append(("classifier", LayerCount(classifier + num_classes, classifier, (1, 1))))
    return rows


def _as_hw(input_size: int | tuple[int, int]) -> tuple[int, int]:
    return (input_size, input_size) if isinstance(input_size, int) else input_size


def count_params(plan: NetworkPlan, *, num_classes: int = 1000, in_chans: int = 3) -> int:
    """Number of trainable parameters of the model that ``plan`` builds."""
    return sum(count.params for _, count in _walk(plan, (224, 224), in_chans, num_classes))


def count_macs(
    plan: NetworkPlan,
    input_size: int | tuple[int, int] = 224,
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
) -> int:
    """Multiply-accumulates of one forward pass at ``input_size`` (an int or (height, width))."""
    return sum(count.macs for _, count in _walk(plan, _as_hw(input_size), in_chans, num_classes))


def count_layers(
    plan: NetworkPlan,
    input_size: int | tuple[int, int] = 224,
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
) -> list[tuple[str, LayerCount]]:
    """Per-piece counts (stem, each block, head, classifier) in forward order."""
    return _walk(plan, _as_hw(input_size), in_chans, num_classes)
