"""Everything needed to rebuild a model: the spec plus the construction options, validated once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .._validate import check_float, check_int
from ..errors import ArgumentTypeError, InvalidArgumentError
from .plan import NetworkPlan, resolve_plan
from .specs import NetworkSpec

__all__ = ["ModelConfig"]

# A PyTorch momentum this high almost always comes from TF's decay convention (0.99, 0.9997).
_SUSPICIOUS_MOMENTUM = 0.5


@dataclass(frozen=True)
class ModelConfig:
    """A network spec with multipliers and construction options, all checked.

    ``None`` for ``drop_rate``, ``bn_eps`` and ``bn_momentum`` means "the spec's value"; the stored
    config always holds the resolved number. Every model carries its config (``model.config``),
    and :func:`mnaszoo.save_pretrained` stores it, so a model can be rebuilt without the registry.

    Args:
        spec: the network table.
        width_mult: channel multiplier (widths round to multiples of 8).
        depth_mult: block-count multiplier (repeats round up).
        num_classes: classifier outputs; 0 for no classifier.
        in_chans: input image channels.
        drop_rate: dropout before the classifier; ``None``: the spec's.
        drop_path_rate: stochastic-depth rate of the last block.
        bn_eps: BatchNorm epsilon; ``None``: the spec's.
        bn_momentum: BatchNorm momentum in PyTorch's convention; ``None``: the spec's.

    Raises:
        InvalidArgumentError: a value is out of range (the message says the accepted range).
        ArgumentTypeError: a value has the wrong type.

    Example:
        >>> from mnaszoo import MNASNET_B1
        >>> config = ModelConfig(MNASNET_B1, width_mult=0.5, num_classes=10)
        >>> config.dropout, config.batchnorm
        (0.2, (1e-05, 0.01))
        >>> ModelConfig.from_dict(config.to_dict()) == config
        True
        >>> ModelConfig(MNASNET_B1, bn_momentum=0.99)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        mnaszoo.errors.InvalidArgumentError: bn_momentum=0.99 uses TensorFlow's decay ...
    """

    spec: NetworkSpec
    width_mult: float = 1.0
    depth_mult: float = 1.0
    num_classes: int = 1000
    in_chans: int = 3
    drop_rate: float | None = None
    drop_path_rate: float = 0.0
    bn_eps: float | None = None
    bn_momentum: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.spec, NetworkSpec):
            raise ArgumentTypeError(
                f"spec must be a NetworkSpec, got {type(self.spec).__name__}; see"
                " mnaszoo.models.architectures for the built-in tables."
            )
        check_int("num_classes", self.num_classes, minimum=0)
        check_int("in_chans", self.in_chans, minimum=1)
        drop_rate = self.spec.dropout if self.drop_rate is None else self.drop_rate
        set_field = object.__setattr__
        set_field(
            self,
            "drop_rate",
            check_float("drop_rate", drop_rate, minimum=0.0, maximum=1.0, max_inclusive=False),
        )
        set_field(
            self,
            "drop_path_rate",
            check_float(
                "drop_path_rate", self.drop_path_rate, minimum=0.0, maximum=1.0, max_inclusive=False
            ),
        )
        eps = self.spec.bn_eps if self.bn_eps is None else self.bn_eps
        set_field(self, "bn_eps", check_float("bn_eps", eps, minimum=0.0, min_inclusive=False))
        momentum = self.spec.bn_momentum if self.bn_momentum is None else self.bn_momentum
        momentum = check_float("bn_momentum", momentum, minimum=0.0, maximum=1.0)
        if momentum > _SUSPICIOUS_MOMENTUM:
            raise InvalidArgumentError(
                f"bn_momentum={momentum!r} uses TensorFlow's decay convention; mnaszoo takes"
                f" PyTorch's momentum = 1 - decay (e.g. decay 0.99 -> bn_momentum=0.01)."
                f" Accepted: 0 <= bn_momentum <= {_SUSPICIOUS_MOMENTUM}."
            )
        set_field(self, "bn_momentum", momentum)
        # Resolving the plan validates the multipliers with the same messages as resolve_plan.
        set_field(self, "_plan", resolve_plan(self.spec, self.width_mult, self.depth_mult))
        set_field(self, "width_mult", float(self.width_mult))
        set_field(self, "depth_mult", float(self.depth_mult))

    @property
    def batchnorm(self) -> tuple[float, float]:
        """The resolved ``(eps, momentum)`` of every BatchNorm layer."""
        return float(self.bn_eps or 0.0), float(self.bn_momentum or 0.0)

    @property
    def dropout(self) -> float:
        """The resolved dropout rate before the classifier."""
        return float(self.drop_rate or 0.0)

    @property
    def plan(self) -> NetworkPlan:
        """The resolved per-block widths (computed once, at construction)."""
        plan: NetworkPlan = self.__dict__["_plan"]
        return plan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; :meth:`from_dict` rebuilds an equal config without the registry."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["spec"] = self.spec.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise InvalidArgumentError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgumentError(
                f"Model config has unknown keys {unknown}; accepted keys are {sorted(known)}."
            )
        if "spec" not in data:
            raise InvalidArgumentError("Model config lacks the required key 'spec'.")
        values = dict(data)
        values["spec"] = NetworkSpec.from_dict(values["spec"])
        return cls(**values)
