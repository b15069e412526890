"""``mnaszoo.create``: a registered model by name."""

from __future__ import annotations

from typing import Literal, overload

from .builder import build
from .errors import InvalidArgumentError
from .model import MnasNet, MnasNetFeatures
from .registry import get_entry

__all__ = ["create"]


@overload
def create(
    name: str,
    *,
    num_classes: int = ...,
    width_mult: float | None = ...,
    depth_mult: float | None = ...,
    in_chans: int = ...,
    drop_rate: float | None = ...,
    drop_path_rate: float = ...,
    bn_eps: float | None = ...,
    bn_momentum: float | None = ...,
    features_only: Literal[False] = ...,
    out_indices: None = ...,
) -> MnasNet: ...


@overload
def create(
    name: str,
    *,
    num_classes: int = ...,
    width_mult: float | None = ...,
    depth_mult: float | None = ...,
    in_chans: int = ...,
    drop_rate: float | None = ...,
    drop_path_rate: float = ...,
    bn_eps: float | None = ...,
    bn_momentum: float | None = ...,
    features_only: Literal[True],
    out_indices: tuple[int, ...] | None = ...,
) -> MnasNetFeatures: ...


def create(
    name: str,
    *,
    num_classes: int = 1000,
    width_mult: float | None = None,
    depth_mult: float | None = None,
    in_chans: int = 3,
    drop_rate: float | None = None,
    drop_path_rate: float = 0.0,
    bn_eps: float | None = None,
    bn_momentum: float | None = None,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
) -> MnasNet | MnasNetFeatures:
    """Create a registered MnasNet by name.

    Args:
        name: a registered name (see :func:`mnaszoo.list_models`), e.g. ``"mnasnet_a1"``.
        num_classes: classifier outputs; 0 drops the classifier.
        width_mult: override the width of a base name (``mnasnet_a1``, ``mnasnet_b1``, ...). Names
            with a width suffix (``mnasnet_a1_075``) fix their width.
        depth_mult: block-count multiplier (repeats round up); default 1.0.
        in_chans: input image channels.
        drop_rate: dropout before the classifier; ``None`` takes the spec's (0.2).
        drop_path_rate: stochastic-depth rate (linear over blocks, training only).
        bn_eps: BatchNorm epsilon; ``None`` takes the spec's.
        bn_momentum: BatchNorm momentum, PyTorch convention; ``None`` takes the spec's (0.01).
        features_only: return a backbone giving the feature maps at strides 2 to 32.
        out_indices: with ``features_only``, the levels to return (0..4).

    Returns:
        A :class:`~mnaszoo.model.MnasNet` (or :class:`~mnaszoo.model.MnasNetFeatures`).

    Raises:
        UnknownModelError: ``name`` is not registered (close matches are suggested).
        InvalidArgumentError: an argument is out of range or conflicts with the name.
        ArgumentTypeError: an argument has the wrong type.

    Example:
        >>> import torch, mnaszoo
        >>> model = mnaszoo.create("mnasnet_a1").eval()
        >>> model(torch.randn(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """
    entry = get_entry(name)
    if width_mult is None:
        width = entry.width_mult
    elif entry.width_mult != 1.0 and width_mult != entry.width_mult:
        base = entry.spec.name
        raise InvalidArgumentError(
            f"{name!r} fixes width_mult={entry.width_mult:g}, but width_mult={width_mult!r} was"
            f" given; use create({base!r}, width_mult={width_mult!r}) for another width."
        )
    else:
        width = width_mult
    return build(  # type: ignore[call-overload,no-any-return]
        entry.spec,
        width_mult=width,
        depth_mult=1.0 if depth_mult is None else depth_mult,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        bn_eps=bn_eps,
        bn_momentum=bn_momentum,
        features_only=features_only,
        out_indices=out_indices,
    )
