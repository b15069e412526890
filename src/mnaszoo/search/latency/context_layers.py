"""The units the in-context table times: the stem, every block, and the head with the
classifier, each keyed by its resolved configuration and input shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...models.counting import conv_output_size
from ...models.plan import BlockPlan, NetworkPlan
from .predictor import block_key

__all__ = ["ContextLayer", "context_layers", "layer_module"]


@dataclass(frozen=True)
class ContextLayer:
    """One timed unit: ``kind`` ``"stem"``, ``"block"`` or ``"head"``, its key and input."""

    key: str
    kind: str
    shape: tuple[int, ...]
    block: BlockPlan | None = None
    channels: tuple[int, ...] = ()


def context_layers(
    plan: NetworkPlan, image_size: int, batch_size: int, num_classes: int
) -> list[ContextLayer]:
    """The stem, every block and the head of ``plan``, each keyed by everything its latency
    depends on (kind, kernel, stride, widths, SE width, residual, input resolution)."""
    stem = plan.stem_channels
    layers = [
        ContextLayer(
            f"stem:i3:o{stem}:h{image_size}",
            "stem",
            (batch_size, 3, image_size, image_size),
            channels=(3, stem),
        )
    ]
    size = conv_output_size(image_size, 3, 2)
    for block in plan.blocks:
        layers.append(
            ContextLayer(
                block_key(block, size),
                "block",
                (batch_size, block.in_channels, size, size),
                block=block,
            )
        )
        size = conv_output_size(size, block.kernel, block.stride)
    last, head = plan.blocks[-1].out_channels, plan.head_channels
    layers.append(
        ContextLayer(
            f"head:i{last}:o{head}:c{num_classes}:h{size}",
            "head",
            (batch_size, last, size, size),
            channels=(last, head, num_classes),
        )
    )
    return layers


def layer_module(layer: ContextLayer) -> Any:
    """The layer as an eager ``nn.Module`` (randomly initialised, BatchNorm not folded)."""
    from torch import nn

    from ...errors import InvalidArgumentError
    from ...models.layers import ConvBnAct, make_block

    if layer.kind == "stem":
        return ConvBnAct(layer.channels[0], layer.channels[1], 3, 2)
    if layer.kind == "head":
        last, head, classes = layer.channels
        classifier: nn.Module = nn.Linear(head, classes) if classes else nn.Identity()
        return nn.Sequential(
            ConvBnAct(last, head, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), classifier
        )
    if layer.block is None:
        raise InvalidArgumentError(f"layer {layer.key!r} is a block without its BlockPlan.")
    return make_block(layer.block, drop_path=0.0, bn_eps=1e-5, bn_momentum=0.01)
