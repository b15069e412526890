"""Making models: :func:`build` turns any :class:`~mnaszoo.models.specs.NetworkSpec` into a
model, :func:`create` a registered model by name, optionally with pretrained weights."""

from __future__ import annotations

import os
from typing import Any, Literal, overload

from .._validate import check_bool
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..weights.loading import load_into
from ..weights.manifest import WeightsRecord, get_weights
from .config import ModelConfig
from .mnasnet import MnasNet, MnasNetFeatures
from .registry import ModelEntry, get_entry
from .specs import NetworkSpec

__all__ = ["build", "build_from_config", "create"]

PathLike = str | os.PathLike[str]


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


@overload
def create(
    name: str,
    *,
    pretrained: bool | str = ...,
    checkpoint: PathLike | None = ...,
    num_classes: int | None = ...,
    width_mult: float | None = ...,
    depth_mult: float | None = ...,
    in_chans: int = ...,
    drop_rate: float | None = ...,
    drop_path_rate: float = ...,
    bn_eps: float | None = ...,
    bn_momentum: float | None = ...,
    features_only: Literal[False] = ...,
    out_indices: None = ...,
    cache_dir: PathLike | None = ...,
    local_files_only: bool = ...,
    force_download: bool = ...,
    token: str | bool | None = ...,
    download_timeout: float | None = ...,
) -> MnasNet: ...


@overload
def create(
    name: str,
    *,
    pretrained: bool | str = ...,
    checkpoint: PathLike | None = ...,
    num_classes: int | None = ...,
    width_mult: float | None = ...,
    depth_mult: float | None = ...,
    in_chans: int = ...,
    drop_rate: float | None = ...,
    drop_path_rate: float = ...,
    bn_eps: float | None = ...,
    bn_momentum: float | None = ...,
    features_only: Literal[True],
    out_indices: tuple[int, ...] | None = ...,
    cache_dir: PathLike | None = ...,
    local_files_only: bool = ...,
    force_download: bool = ...,
    token: str | bool | None = ...,
    download_timeout: float | None = ...,
) -> MnasNetFeatures: ...


def create(
    name: str,
    *,
    pretrained: bool | str = False,
    checkpoint: PathLike | None = None,
    num_classes: int | None = None,
    width_mult: float | None = None,
    depth_mult: float | None = None,
    in_chans: int = 3,
    drop_rate: float | None = None,
    drop_path_rate: float = 0.0,
    bn_eps: float | None = None,
    bn_momentum: float | None = None,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    cache_dir: PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
    download_timeout: float | None = None,
) -> MnasNet | MnasNetFeatures:
    """Create a registered MnasNet by name, randomly initialised or with pretrained weights.

    Args:
        name: a registered name (see :func:`mnaszoo.list_models`), e.g. ``"mnasnet_a1"``.
        pretrained: ``True`` loads the model's default weights (its best reported top-1), a
            string picks a tag (``"tv_in1k"``) or a full weights id; see
            :func:`mnaszoo.list_weights`. The file is downloaded once, verified by sha256,
            converted from its publisher's layout, and the model is returned in eval mode with
            ``model.weights_info`` set.
        checkpoint: a local weights file instead (safetensors or ``.pth``, in mnaszoo's, timm's or
            torchvision's layout, detected from its keys); loaded strictly, in eval mode.
        num_classes: classifier outputs. ``None``: as in the weights (or 1000). Another value
            loads every layer but the classifier, which is freshly initialised (logged). 0 drops
            the classifier.
        width_mult: override the width of a base name (``mnasnet_a1``, ``mnasnet_b1``, ...). Names
            with a width suffix fix their width; weights fix both width and depth.
        depth_mult: block-count multiplier (repeats round up); default 1.0.
        in_chans: input image channels (pretrained stems are adapted, as timm does).
        drop_rate: dropout before the classifier; ``None`` takes the spec's (0.2).
        drop_path_rate: stochastic-depth rate (linear over blocks, training only).
        bn_eps: BatchNorm epsilon; ``None`` takes the spec's.
        bn_momentum: BatchNorm momentum, PyTorch convention; ``None`` takes the spec's (0.01).
        features_only: return a backbone giving the feature maps at strides 2 to 32.
        out_indices: with ``features_only``, the levels to return (0..4).
        cache_dir: where downloads are cached (default: the Hugging Face cache for Hub files,
            ``~/.cache/mnaszoo`` for URLs; see ``mnaszoo.weights.download``).
        local_files_only: never use the network (also ``HF_HUB_OFFLINE=1``).
        force_download: download again even if cached (a good cached file is kept if the new
            download fails verification).
        token: Hugging Face token for private or gated repositories.
        download_timeout: seconds the download may take in all, retries included (default:
            ``$MNASZOO_DOWNLOAD_TIMEOUT``, else 120); see docs/reliability.md.

    Returns:
        A :class:`~mnaszoo.models.mnasnet.MnasNet` (or
        :class:`~mnaszoo.models.mnasnet.MnasNetFeatures`).

    Raises:
        UnknownModelError: ``name`` is not registered (close matches are suggested).
        UnknownWeightsError: no such weights for this model.
        InvalidArgumentError: an argument is out of range or conflicts with the name or weights.
        ArgumentTypeError: an argument has the wrong type.
        WeightsError: a download, verification or loading failure (see :mod:`mnaszoo.errors`).

    Example:
        >>> import torch, mnaszoo
        >>> model = mnaszoo.create("mnasnet_a1").eval()
        >>> model(torch.randn(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """
    entry = get_entry(name)
    record = _weights_record(name, pretrained)
    if record is not None and checkpoint is not None:
        raise InvalidArgumentError(
            "Pass either pretrained=... (published weights) or checkpoint=... (a local file), not"
            " both."
        )
    for flag, value in (("local_files_only", local_files_only), ("force_download", force_download)):
        check_bool(flag, value)
    if record is None and checkpoint is None:
        config = _config(
            entry,
            width_mult=width_mult,
            depth_mult=depth_mult,
            num_classes=1000 if num_classes is None else num_classes,
            in_chans=in_chans,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            bn_eps=bn_eps,
            bn_momentum=bn_momentum,
        )
        return build_from_config(config, features_only=features_only, out_indices=out_indices)

    from ..weights.resolve import (
        check_weights_fix_architecture,
        fetch_weights,
        read_state,
        resolve_config,
    )

    check_weights_fix_architecture(
        name, width_mult=width_mult, entry_width=entry.width_mult, depth_mult=depth_mult
    )
    if record is not None:
        path = fetch_weights(
            record,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
            token=token,
            download_timeout=download_timeout,
        )
        state = read_state(path, expected_layout=record.layout)
        source = f"{record.id} ({path})"
    else:
        state = read_state(checkpoint)
        source = str(checkpoint)
    requested = num_classes  # only a num_classes the caller asked for replaces the classifier
    if num_classes is None:
        num_classes = state.num_classes if state.num_classes is not None else 1000
    config = resolve_config(
        _config(
            entry,
            width_mult=None,
            depth_mult=None,
            num_classes=num_classes,
            in_chans=in_chans,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            bn_eps=bn_eps,
            bn_momentum=bn_momentum,
        ),
        state,
    )
    model = build_from_config(config, features_only=features_only, out_indices=out_indices)
    load_into(model, state.state_dict, source=source, model_name=name, num_classes=requested)
    model.weights_info = record
    return model.eval()


def _weights_record(name: str, pretrained: object) -> WeightsRecord | None:
    if pretrained is False:
        return None
    if pretrained is True:
        return get_weights(name)
    if not isinstance(pretrained, str):
        raise ArgumentTypeError(
            f"pretrained must be True, False or a weights tag, got {type(pretrained).__name__}"
            f" {pretrained!r}."
        )
    if "." in pretrained:
        record = get_weights(pretrained)
        if record.model != name:
            raise InvalidArgumentError(
                f"Weights {pretrained!r} are for {record.model!r}, not {name!r}; call"
                f" create({record.model!r}, pretrained={record.tag!r})."
            )
        return record
    return get_weights(name, pretrained)


def _config(
    entry: ModelEntry,
    *,
    width_mult: float | None,
    depth_mult: float | None,
    **options: Any,
) -> ModelConfig:
    """The registered model's config: its fixed width unless another is asked for."""
    if width_mult is None:
        width = entry.width_mult
    elif entry.width_mult != 1.0 and width_mult != entry.width_mult:
        raise InvalidArgumentError(
            f"{entry.name!r} fixes width_mult={entry.width_mult:g}, but width_mult={width_mult!r}"
            f" was given; use create({entry.spec.name!r}, width_mult={width_mult!r}) for another"
            " width."
        )
    else:
        width = width_mult
    return ModelConfig.resolve(
        entry.spec,
        width_mult=width,
        depth_mult=1.0 if depth_mult is None else depth_mult,
        **options,
    )
