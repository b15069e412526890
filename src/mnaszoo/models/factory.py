"""Making models: :func:`build` turns any :class:`~mnaszoo.models.specs.NetworkSpec` into a
randomly initialised model. (:func:`mnaszoo.create`, which also loads weights, lives above
``models`` and ``weights``, in :mod:`mnaszoo.factory`.)"""

from __future__ import annotations

from typing import Literal, overload

from .._validate import check_bool
from ..errors import InvalidArgumentError
from .config import ModelConfig
from .mnasnet import MnasNet, MnasNetFeatures
from .specs import NetworkSpec

__all__ = ["build", "build_from_config"]


@overload
def build(
    spec: NetworkSpec,
    *,
    width_mult: float = ...,
    depth_mult: float = ...,
    num_classes: int = ...,
    in_chans: int = ...,
    drop_rate: float | None = ...,
    drop_path_rate: float = ...,
    bn_eps: float | None = ...,
    bn_momentum: float | None = ...,
    features_only: Literal[False] = ...,
    out_indices: None = ...,
) -> MnasNet: ...


@overload
def build(
    spec: NetworkSpec,
    *,
    width_mult: float = ...,
    depth_mult: float = ...,
    num_classes: int = ...,
    in_chans: int = ...,
    drop_rate: float | None = ...,
    drop_path_rate: float = ...,
    bn_eps: float | None = ...,
    bn_momentum: float | None = ...,
    features_only: Literal[True],
    out_indices: tuple[int, ...] | None = ...,
) -> MnasNetFeatures: ...


def build(
    spec: NetworkSpec,
    *,
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_rate: float | None = None,
    drop_path_rate: float = 0.0,
    bn_eps: float | None = None,
    bn_momentum: float | None = None,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
) -> MnasNet | MnasNetFeatures:
    """Build a model from a spec, randomly initialised.

    Args:
        spec: the network table (a built-in one from :mod:`mnaszoo.models.architectures`, or
            your own).
        width_mult: channel multiplier in (0, 8]; widths round to multiples of 8 (never more than
            10% down); 1.0 keeps the declared widths.
        depth_mult: block-count multiplier in (0, 8]; repeats round up.
        num_classes: classifier outputs; 0 drops the classifier (``forward`` returns pooled
            features).
        in_chans: input image channels.
        drop_rate: dropout before the classifier; ``None`` takes the spec's (0.2 for MnasNet).
        drop_path_rate: stochastic-depth rate of the last block, growing linearly from 0 over the
            blocks; active only in training.
        bn_eps: BatchNorm epsilon; ``None`` takes the spec's.
        bn_momentum: BatchNorm momentum in PyTorch's convention (``1 - TF decay``); ``None`` takes
            the spec's.
        features_only: return a :class:`~mnaszoo.models.mnasnet.MnasNetFeatures` backbone giving
            feature maps at strides 2 to 32 instead of a classifier.
        out_indices: with ``features_only``, which levels to return (0 = stride 2 ... 4 = stride
            32); default all.

    Returns:
        A :class:`~mnaszoo.models.mnasnet.MnasNet`, or a
        :class:`~mnaszoo.models.mnasnet.MnasNetFeatures` backbone.

    Raises:
        InvalidArgumentError: an argument is out of range (the message gives the range).
        ArgumentTypeError: an argument has the wrong type.

    Example:
        >>> from mnaszoo.models.architectures import MNASNET_A1
        >>> model = build(MNASNET_A1, width_mult=0.5, num_classes=10)
        >>> model.num_classes, model.num_features
        (10, 1280)
    """
    config = ModelConfig.resolve(
        spec,
        width_mult=width_mult,
        depth_mult=depth_mult,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        bn_eps=bn_eps,
        bn_momentum=bn_momentum,
    )
    return build_from_config(config, features_only=features_only, out_indices=out_indices)


def build_from_config(
    config: ModelConfig, *, features_only: bool = False, out_indices: tuple[int, ...] | None = None
) -> MnasNet | MnasNetFeatures:
    """Build from an already validated :class:`~mnaszoo.models.config.ModelConfig`.

    See :func:`build`.
    """
    check_bool("features_only", features_only)
    if features_only:
        return MnasNetFeatures(config, out_indices)
    if out_indices is not None:
        raise InvalidArgumentError(
            "out_indices only applies with features_only=True; pass features_only=True to get a"
            " backbone returning feature maps."
        )
    return MnasNet(config)
