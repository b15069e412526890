"""The units the per-layer table times in isolation: the stem, every block, and the head with
the classifier, each with its key, a module factory and its input shape."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ...models.counting import conv_output_size
from ...models.layers import ConvBnAct, make_block
from ...models.plan import NetworkPlan
from .predictor import block_key


@dataclass(frozen=True)
class _Layer:
    key: str
    make: Callable[[], nn.Module]
    shape: tuple[int, ...]


def _layers(plan: NetworkPlan, image_size: int, batch: int, num_classes: int) -> list[_Layer]:
    """The stem, every block and the head+classifier, each with its key and input shape."""
    layers: list[_Layer] = []
    stem = plan.stem_channels
    layers.append(
        _Layer(
            f"stem:i3:o{stem}:h{image_size}",
            lambda: ConvBnAct(3, stem, 3, 2),
            (batch, 3, image_size, image_size),
        )
    )
    size = conv_output_size(image_size, 3, 2)
    for block in plan.blocks:
        layers.append(
            _Layer(
                block_key(block, size),
                functools.partial(make_block, block, drop_path=0.0, bn_eps=1e-5, bn_momentum=0.01),
                (batch, block.in_channels, size, size),
            )
        )
        size = conv_output_size(size, block.kernel, block.stride)
    last, head = plan.blocks[-1].out_channels, plan.head_channels

    def make_head() -> nn.Module:
        classifier: nn.Module = nn.Linear(head, num_classes) if num_classes else nn.Identity()
        return nn.Sequential(
            ConvBnAct(last, head, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), classifier
        )

    layers.append(
        _Layer(f"head:i{last}:o{head}:c{num_classes}:h{size}", make_head, (batch, last, size, size))
    )
    return layers
