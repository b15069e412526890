"""Everything needed to rebuild a model: the spec plus the construction options, validated once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, fields
from typing import Any

from .._validate import check_float, check_int
from ..errors import ArgumentTypeError, InvalidArgumentError
from .plan import NetworkPlan, resolve_plan
from .specs import NetworkSpec

__all__ = ["MAX_BN_MOMENTUM", "MAX_IN_CHANS", "MAX_NUM_CLASSES", "ModelConfig"]

MAX_NUM_CLASSES = 100_000
"""The most classifier outputs a config accepts: ImageNet-21k has 21,841 classes; 100,000 at the
widest head (1,792 features) is 0.7 GB of weights. A larger count in a config file is a typo or
damage, refused before any memory is allocated (10**7 would be 51 GB)."""
MAX_IN_CHANS = 1024
"""The most input channels a config accepts (hyperspectral images have a few hundred)."""

MAX_BN_MOMENTUM = 0.5
"""The largest BatchNorm momentum accepted: a PyTorch momentum above it almost always comes from
TensorFlow's decay convention (0.99, 0.9997), where PyTorch's momentum is 1 - decay."""


@dataclass(frozen=True)
class ModelConfig:
    """A network spec with multipliers and construction options, all resolved and checked.

    Make one with :meth:`resolve`, which takes the spec's dropout and BatchNorm values where none
    are given; the constructor takes every value explicitly (as :meth:`from_dict` does). Every
    model carries its config (``model.config``), and :func:`mnaszoo.save_pretrained` stores it, so
    a model can be rebuilt without the registry.

    Args:
        spec: the network table.
        width_mult: channel multiplier (widths round to multiples of 8).
        depth_mult: block-count multiplier (repeats round up).
        num_classes: classifier outputs; 0 for no classifier; at most :data:`MAX_NUM_CLASSES`.
        in_chans: input image channels, 1 to :data:`MAX_IN_CHANS`.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic-depth rate of the last block.
        bn_eps: BatchNorm epsilon.
        bn_momentum: BatchNorm momentum in PyTorch's convention (``1 - TF decay``).

    Raises:
        InvalidArgumentError: a value is out of range (the message says the accepted range).
        ArgumentTypeError: a value has the wrong type.

    Example:
        >>> from mnaszoo import MNASNET_B1
        >>> config = ModelConfig.resolve(MNASNET_B1, width_mult=0.5, num_classes=10)
        >>> config.dropout, config.batchnorm
        (0.2, (1e-05, 0.01))
        >>> ModelConfig.from_dict(config.to_dict()) == config
        True
        >>> ModelConfig.resolve(MNASNET_B1, bn_momentum=0.99)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        mnaszoo.errors.InvalidArgumentError: bn_momentum=0.99 uses TensorFlow's decay ...
    """

    spec: NetworkSpec
    _: KW_ONLY
    width_mult: float = 1.0
    depth_mult: float = 1.0
    num_classes: int = 1000
    in_chans: int = 3
    drop_rate: float
    drop_path_rate: float = 0.0
    bn_eps: float
    bn_momentum: float

    @classmethod
    def resolve(
        cls,
        spec: NetworkSpec,
        *,
        drop_rate: float | None = None,
        bn_eps: float | None = None,
        bn_momentum: float | None = None,
        **options: Any,
    ) -> ModelConfig:
        """A config of ``spec`` whose ``None`` dropout and BatchNorm values are the spec's.

        ``options`` are the other fields (``width_mult``, ``depth_mult``, ``num_classes``,
        ``in_chans``, ``drop_path_rate``).

        Raises:
            ArgumentTypeError: ``spec`` is not a NetworkSpec, or a value has the wrong type.
            InvalidArgumentError: a value is out of range, or an option is unknown.
        """
        if not isinstance(spec, NetworkSpec):
            raise ArgumentTypeError(
                f"spec must be a NetworkSpec, got {type(spec).__name__}; see"
                " mnaszoo.models.architectures for the built-in tables."
            )
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            raise InvalidArgumentError(f"Unknown model options {unknown}.")
        return cls(
            spec,
            drop_rate=spec.dropout if drop_rate is None else drop_rate,
            bn_eps=spec.bn_eps if bn_eps is None else bn_eps,
            bn_momentum=spec.bn_momentum if bn_momentum is None else bn_momentum,
            **options,
        )

    def __post_init__(self) -> None:
        if not isinstance(self.spec, NetworkSpec):
            raise ArgumentTypeError(
                f"spec must be a NetworkSpec, got {type(self.spec).__name__}; see"
                " mnaszoo.models.architectures for the built-in tables."
            )
        check_int("num_classes", self.num_classes, minimum=0, maximum=MAX_NUM_CLASSES)
        check_int("in_chans", self.in_chans, minimum=1, maximum=MAX_IN_CHANS)
        set_field = object.__setattr__
        set_field(
            self,
            "drop_rate",
            check_float("drop_rate", self.drop_rate, minimum=0.0, maximum=1.0, max_inclusive=False),
        )
        set_field(
            self,
            "drop_path_rate",
            check_float(
                "drop_path_rate", self.drop_path_rate, minimum=0.0, maximum=1.0, max_inclusive=False
            ),
        )
        set_field(
            self, "bn_eps", check_float("bn_eps", self.bn_eps, minimum=0.0, min_inclusive=False)
        )
        momentum = check_float("bn_momentum", self.bn_momentum, minimum=0.0, maximum=1.0)
        if momentum > MAX_BN_MOMENTUM:
            raise InvalidArgumentError(
                f"bn_momentum={momentum!r} uses TensorFlow's decay convention; mnaszoo takes"
                f" PyTorch's momentum = 1 - decay (e.g. decay 0.99 -> bn_momentum=0.01)."
                f" Accepted: 0 <= bn_momentum <= {MAX_BN_MOMENTUM}."
            )
        set_field(self, "bn_momentum", momentum)
        # Resolving the plan validates the multipliers with the same messages as resolve_plan.
        set_field(self, "_plan", resolve_plan(self.spec, self.width_mult, self.depth_mult))
        set_field(self, "width_mult", float(self.width_mult))
        set_field(self, "depth_mult", float(self.depth_mult))

    @property
    def batchnorm(self) -> tuple[float, float]:
        """The resolved ``(eps, momentum)`` of every BatchNorm layer."""
        return self.bn_eps, self.bn_momentum

    @property
    def dropout(self) -> float:
        """The resolved dropout rate before the classifier."""
        return self.drop_rate

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
