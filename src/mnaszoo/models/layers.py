"""The building blocks: standard ``torch.nn`` modules only, so that models script, export and
quantise with stock PyTorch tooling.

Module attribute names are part of mnaszoo's checkpoint format (they become state-dict keys):
``conv``/``bn`` inside :class:`ConvBnAct`; ``expand``, ``dw``, ``se``, ``project`` inside blocks;
``reduce``/``expand`` inside :class:`SqueezeExcite`. Do not rename them.
"""

from __future__ import annotations

import torch
from torch import nn

from .plan import BlockPlan
from .specs import BlockKind

__all__ = [
    "ConvBlock",
    "ConvBnAct",
    "DepthwiseSeparable",
    "DropPath",
    "InvertedResidual",
    "SqueezeExcite",
    "make_block",
]


class ConvBnAct(nn.Sequential):
    """Convolution (no bias, padding ``kernel // 2``) -> BatchNorm -> optional ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        *,
        groups: int = 1,
        act: bool = True,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        # Identity keeps one module layout whether or not the layer is activated.
        self.act: nn.Module = nn.ReLU(inplace=True) if act else nn.Identity()


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global mean -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid gate."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.expand(self.act(self.reduce(scale)))
        return x * torch.sigmoid(scale)


class DropPath(nn.Module):
    """Stochastic depth: zero the residual branch of whole samples with probability ``p``.

    Active only in training; survivors are scaled by ``1 / (1 - p)`` so that expectations match
    evaluation.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class _Block(nn.Module):
    """Shared residual logic: ``out = drop_path(body(x)) + x`` where the plan allows a residual."""

    def __init__(self, plan: BlockPlan, drop_path: float) -> None:
        super().__init__()
        self.has_residual = plan.residual
        self.drop_path = DropPath(drop_path) if plan.residual else nn.Identity()

    def body(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.has_residual:
            out = self.drop_path(out) + x
        return out


def _se_or_identity(channels: int, reduced: int) -> nn.Module:
    return SqueezeExcite(channels, reduced) if reduced > 0 else nn.Identity()


class ConvBlock(_Block):
    """Regular ``k x k`` convolution -> BN -> ReLU -> [SE]."""

    def __init__(
        self,
        plan: BlockPlan,
        *,
        drop_path: float = 0.0,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__(plan, drop_path)
        self.conv = ConvBnAct(
            plan.in_channels,
            plan.out_channels,
            plan.kernel,
            plan.stride,
            bn_eps=bn_eps,
            bn_momentum=bn_momentum,
        )
        self.se = _se_or_identity(plan.out_channels, plan.se_channels)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.se(self.conv(x))
        return out


class DepthwiseSeparable(_Block):
    """Depthwise ``k x k`` -> BN -> ReLU -> [SE] -> pointwise 1x1 -> BN (linear)."""

    def __init__(
        self,
        plan: BlockPlan,
        *,
        drop_path: float = 0.0,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__(plan, drop_path)
        mid = plan.mid_channels
        self.dw = ConvBnAct(
            mid, mid, plan.kernel, plan.stride, groups=mid, bn_eps=bn_eps, bn_momentum=bn_momentum
        )
        self.se = _se_or_identity(mid, plan.se_channels)
        self.project = ConvBnAct(
            mid, plan.out_channels, act=False, bn_eps=bn_eps, bn_momentum=bn_momentum
        )

    def body(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.project(self.se(self.dw(x)))
        return out


class InvertedResidual(_Block):
    """MBConv: 1x1 expand -> BN -> ReLU -> depthwise -> BN -> ReLU -> [SE] -> 1x1 project -> BN."""

    def __init__(
        self,
        plan: BlockPlan,
        *,
        drop_path: float = 0.0,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__(plan, drop_path)
        mid = plan.mid_channels
        self.expand = ConvBnAct(plan.in_channels, mid, bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.dw = ConvBnAct(
            mid, mid, plan.kernel, plan.stride, groups=mid, bn_eps=bn_eps, bn_momentum=bn_momentum
        )
        self.se = _se_or_identity(mid, plan.se_channels)
        self.project = ConvBnAct(
            mid, plan.out_channels, act=False, bn_eps=bn_eps, bn_momentum=bn_momentum
        )

    def body(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.project(self.se(self.dw(self.expand(x))))
        return out


_BLOCKS: dict[BlockKind, type[ConvBlock | DepthwiseSeparable | InvertedResidual]] = {
    BlockKind.CONV: ConvBlock,
    BlockKind.DS: DepthwiseSeparable,
    BlockKind.MB: InvertedResidual,
}


def make_block(
    plan: BlockPlan, *, drop_path: float, bn_eps: float, bn_momentum: float
) -> nn.Module:
    """Build the module for one resolved block."""
    return _BLOCKS[plan.kind](plan, drop_path=drop_path, bn_eps=bn_eps, bn_momentum=bn_momentum)
