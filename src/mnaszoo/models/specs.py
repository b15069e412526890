"""Typed, declarative descriptions of MnasNet networks.

A :class:`StageSpec` is one row of the paper's architecture figure: a run of ``repeats`` identical
blocks, of which only the first may change resolution or width. A :class:`NetworkSpec` is the
whole table plus the settings in which the published references differ (BatchNorm, dropout, the
rounding of squeeze-and-excitation widths, whether the head is width-scaled).

Specs are plain data: they import no torch, compare by value, and round-trip through
:meth:`NetworkSpec.to_dict` / :meth:`NetworkSpec.from_dict` (JSON) and through the TF-style block
strings of :mod:`mnaszoo.models.codec`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._validate import check_bool, check_float, check_int
from ..errors import ArgumentTypeError, SpecError

__all__ = ["BlockKind", "NetworkSpec", "SERounding", "StageSpec"]

SERounding = Literal["round", "floor"]
_SE_ROUNDINGS: tuple[str, ...] = ("round", "floor")
SUPPORTED_KERNELS: tuple[int, ...] = (3, 5, 7)
SUPPORTED_STRIDES: tuple[int, ...] = (1, 2)


class BlockKind(str, enum.Enum):
    """The three block types of the MnasNet search space.

    A :class:`StageSpec` accepts the member or its string value.

    Example:
        >>> BlockKind("mb") is BlockKind.MB, str(BlockKind.DS)
        (True, 'ds')
    """

    CONV = "conv"
    """Regular ``k x k`` convolution -> BN -> ReLU (optionally followed by SE)."""
    DS = "ds"
    """Depthwise-separable: depthwise ``k x k`` -> BN -> ReLU -> [SE] -> pointwise 1x1 -> BN."""
    MB = "mb"
    """Inverted residual (MBConv): 1x1 expand -> BN -> ReLU -> depthwise -> BN -> ReLU -> [SE] ->
    1x1 project -> BN."""

    def __str__(self) -> str:
        return self.value


def _coerce_kind(value: object) -> BlockKind:
    if isinstance(value, BlockKind):
        return value
    if isinstance(value, str):
        try:
            return BlockKind(value)
        except ValueError:
            pass
    accepted = ", ".join(repr(k.value) for k in BlockKind)
    raise SpecError(f"Unknown block kind {value!r}; accepted kinds are {accepted}.")


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``repeats`` blocks of one kind, the first with ``stride``, the rest stride 1.

    Args:
        kind: block type (:class:`BlockKind` or its string value ``"conv"``, ``"ds"``, ``"mb"``).
        repeats: number of blocks in the stage before depth scaling (>= 1).
        kernel: spatial kernel of the depthwise (or regular) convolution: 3, 5 or 7.
        stride: stride of the first block: 1 or 2.
        expansion: MBConv expansion ratio (the expanded width is ``input_channels * expansion``);
            must be 1 for ``ds`` and ``conv`` blocks.
        out_channels: output channels of every block of the stage, before width scaling.
        se_ratio: squeeze-and-excitation ratio, relative to the block's *input* channels as in the
            TF reference and timm; 0 disables SE.
        skip: allow identity residuals. A block gets one only where its stride is 1 and its input
            and output widths are equal (TF's ``noskip`` is ``skip=False``).

    Raises:
        SpecError: a field has a value outside what MnasNet defines.

    Example:
        >>> stage = StageSpec("mb", repeats=2, kernel=5, stride=2, expansion=6, out_channels=24)
        >>> stage.kind, stage.se_ratio, stage.skip
        (<BlockKind.MB: 'mb'>, 0.0, True)
        >>> StageSpec("ds", repeats=1, kernel=3, stride=1, expansion=6, out_channels=16)
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        mnaszoo.errors.SpecError: StageSpec.expansion must be 1 for a 'ds' block, got 6; ...
    """

    kind: BlockKind
    repeats: int
    kernel: int
    stride: int
    expansion: float
    out_channels: int
    se_ratio: float = 0.0
    skip: bool = True

    def __post_init__(self) -> None:
        kind = _coerce_kind(self.kind)
        object.__setattr__(self, "kind", kind)
        check_int("StageSpec.repeats", self.repeats, minimum=1, error=SpecError)
        check_int("StageSpec.kernel", self.kernel, error=SpecError)
        if self.kernel not in SUPPORTED_KERNELS:
            raise SpecError(
                f"StageSpec.kernel must be one of {SUPPORTED_KERNELS}, got {self.kernel}."
            )
        check_int("StageSpec.stride", self.stride, error=SpecError)
        if self.stride not in SUPPORTED_STRIDES:
            raise SpecError(
                f"StageSpec.stride must be one of {SUPPORTED_STRIDES}, got {self.stride}."
            )
        expansion = check_float("StageSpec.expansion", self.expansion, minimum=1.0, error=SpecError)
        if kind is not BlockKind.MB and expansion != 1.0:
            raise SpecError(
                f"StageSpec.expansion must be 1 for a {kind.value!r} block, got {self.expansion!r};"
                " use kind='mb' for an expanded (inverted residual) block."
            )
        # Keep integral ratios as ints so that specs compare, print and serialise like the paper.
        object.__setattr__(
            self, "expansion", int(expansion) if expansion.is_integer() else expansion
        )
        check_int("StageSpec.out_channels", self.out_channels, minimum=1, error=SpecError)
        se_ratio = check_float(
            "StageSpec.se_ratio",
            self.se_ratio,
            minimum=0.0,
            maximum=1.0,
            max_inclusive=False,
            error=SpecError,
        )
        object.__setattr__(self, "se_ratio", se_ratio)
        check_bool("StageSpec.skip", self.skip)

    def to_dict(self) -> dict[str, Any]:
        """Return the stage as JSON-ready data (the inverse of :meth:`from_dict`)."""
        data = dataclasses.asdict(self)
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageSpec:
        """Build a stage from :meth:`to_dict` data; unknown or missing keys raise SpecError."""
        return cls(**_checked_fields(cls, data, "StageSpec"))


@dataclass(frozen=True)
class NetworkSpec:
    """A whole MnasNet: stem, stages and head, at width and depth multiplier 1.0.

    Args:
        name: short identifier of the table (e.g. ``"mnasnet_a1"``).
        stem_channels: output channels of the 3x3 stride-2 stem convolution.
        stages: the stage rows, input to output.
        head_channels: channels of the final 1x1 convolution (1280 in every reference).
        scale_head: whether the width multiplier also scales the head (no reference does).
        fixed_stem: keep the declared widths of the stem and the first stage under a width
            multiplier (torchvision's version-1 MNASNet did; version 2 scales them).
        bn_eps: BatchNorm epsilon (1e-5 in timm and torchvision; 1e-3 in TF).
        bn_momentum: BatchNorm momentum in PyTorch's convention (``1 - TF decay``).
        dropout: default dropout before the classifier.
        se_rounding: how SE widths are rounded: ``"round"`` (timm, Python's ``round``) or
            ``"floor"`` (TF's ``int()``).
        description: one line for listings.

    Raises:
        SpecError: a field is invalid or the stages are empty.
        ArgumentTypeError: ``stages`` is not a tuple or list of :class:`StageSpec`.

    Example:
        >>> import mnaszoo
        >>> spec = NetworkSpec(
        ...     "tiny",
        ...     stem_channels=16,
        ...     stages=(
        ...         StageSpec("ds", repeats=1, kernel=3, stride=1, expansion=1, out_channels=16),
        ...         StageSpec("mb", repeats=2, kernel=5, stride=2, expansion=6, out_channels=24),
        ...     ),
        ... )
        >>> NetworkSpec.from_dict(spec.to_dict()) == spec
        True
        >>> model = mnaszoo.build(spec, num_classes=10)  # randomly initialised
        >>> model.num_classes
        10
    """

    name: str
    stem_channels: int
    stages: tuple[StageSpec, ...]
    head_channels: int = 1280
    scale_head: bool = False
    fixed_stem: bool = False
    bn_eps: float = 1e-5
    bn_momentum: float = 0.01
    dropout: float = 0.2
    se_rounding: SERounding = "round"
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"NetworkSpec.name must be a non-empty string, got {self.name!r}.")
        check_int("NetworkSpec.stem_channels", self.stem_channels, minimum=1, error=SpecError)
        if isinstance(self.stages, (str, bytes)) or not isinstance(self.stages, (tuple, list)):
            raise ArgumentTypeError(
                "NetworkSpec.stages must be a tuple of StageSpec, got"
                f" {type(self.stages).__name__}."
            )
        stages = tuple(self.stages)
        if not stages:
            raise SpecError("NetworkSpec.stages must hold at least one StageSpec.")
        for index, stage in enumerate(stages):
            if not isinstance(stage, StageSpec):
                raise ArgumentTypeError(
                    f"NetworkSpec.stages[{index}] must be a StageSpec, got {type(stage).__name__}."
                )
        object.__setattr__(self, "stages", stages)
        check_int("NetworkSpec.head_channels", self.head_channels, minimum=1, error=SpecError)
        check_bool("NetworkSpec.scale_head", self.scale_head)
        check_bool("NetworkSpec.fixed_stem", self.fixed_stem)
        check_float(
            "NetworkSpec.bn_eps", self.bn_eps, minimum=0.0, min_inclusive=False, error=SpecError
        )
        check_float(
            "NetworkSpec.bn_momentum", self.bn_momentum, minimum=0.0, maximum=1.0, error=SpecError
        )
        check_float(
            "NetworkSpec.dropout",
            self.dropout,
            minimum=0.0,
            maximum=1.0,
            max_inclusive=False,
            error=SpecError,
        )
        if self.se_rounding not in _SE_ROUNDINGS:
            raise SpecError(
                f"NetworkSpec.se_rounding must be one of {_SE_ROUNDINGS}, got {self.se_rounding!r}."
            )

    def replace(self, **changes: Any) -> NetworkSpec:
        """Return a copy with some fields changed (validated like a new spec)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as JSON-ready data (the inverse of :meth:`from_dict`)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["stages"] = [stage.to_dict() for stage in self.stages]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkSpec:
        """Build a spec from :meth:`to_dict` data; unknown or missing keys raise SpecError."""
        fields = _checked_fields(cls, data, "NetworkSpec")
        stages = fields.get("stages")
        if not isinstance(stages, (list, tuple)):
            raise SpecError(f"NetworkSpec 'stages' must be a list, got {type(stages).__name__}.")
        fields["stages"] = tuple(
            stage if isinstance(stage, StageSpec) else StageSpec.from_dict(stage)
            for stage in stages
        )
        return cls(**fields)


def _checked_fields(cls: type, data: Mapping[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise SpecError(f"{what} data must be a mapping, got {type(data).__name__}.")
    known = {f.name for f in dataclasses.fields(cls)}
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(
            f"{what} data has unknown keys {unknown}; accepted keys are {sorted(known)}."
        )
    missing = sorted(required - set(data))
    if missing:
        raise SpecError(f"{what} data lacks required keys {missing}.")
    return dict(data)
