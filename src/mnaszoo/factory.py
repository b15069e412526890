"""Making models by name, with or without weights: :func:`create` and :func:`from_pretrained`.

This module sits above :mod:`mnaszoo.models` (architectures, no files) and
:mod:`mnaszoo.weights` (manifest, downloads, conversion): it is the one place that joins them.
A name may be a registered model (``mnasnet_a1``), a weights id (``mnasnet_a1.rmsp_in1k``), timm's
or torchvision's name for the same thing (``semnasnet_100``, ``mnasnet1_0``,
``MNASNet1_0_Weights.IMAGENET1K_V1``; see :data:`mnaszoo.weights.aliases.PEER_NAMES`), or any
Hub repository holding a MnasNet checkpoint (``hf-hub:OWNER/REPO[@REVISION]``).
"""

from __future__ import annotations

import os
from typing import Any, Literal, overload

from ._validate import check_bool
from .errors import ArgumentTypeError, InvalidArgumentError, UnknownWeightsError
from .models.config import ModelConfig
from .models.factory import build_from_config
from .models.mnasnet import MnasNet, MnasNetFeatures
from .models.registry import MODELS, ModelEntry, get_entry
from .weights.aliases import peer_name
from .weights.hub_repo import HF_HUB_PREFIX
from .weights.loading import load_into
from .weights.manifest import WeightsRecord, get_weights, load_manifest

__all__ = ["create", "from_pretrained"]

PathLike = str | os.PathLike[str]


@overload
def create(
    name: str,
    *,
    pretrained: bool | str = ...,
    checkpoint: PathLike | None = ...,
    num_classes: int | None = ...,
    width_mult: float | None = ...,
    depth_mult: float | None = ...,
    in_chans: int | None = ...,
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
    revision: str | None = ...,
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
    in_chans: int | None = ...,
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
    revision: str | None = ...,
) -> MnasNetFeatures: ...


def create(
    name: str,
    *,
    pretrained: bool | str = False,
    checkpoint: PathLike | None = None,
    num_classes: int | None = None,
    width_mult: float | None = None,
    depth_mult: float | None = None,
    in_chans: int | None = None,
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
    revision: str | None = None,
) -> MnasNet | MnasNetFeatures:
    """Create a MnasNet by name, randomly initialised or with pretrained weights.

    Args:
        name: a registered name (see :func:`mnaszoo.list_models`), e.g. ``"mnasnet_a1"``; a
            weights id (``"mnasnet_a1.rmsp_in1k"``); timm's or torchvision's name for the same
            model or weights (``"semnasnet_100"``, ``"mnasnet1_0"``,
            ``"MNASNet1_0_Weights.IMAGENET1K_V1"``; with ``pretrained=True`` they load that
            publisher's file); or ``"hf-hub:OWNER/REPO[@REVISION]"``, any Hub repository holding
            a MnasNet checkpoint in mnaszoo's, timm's or torchvision's layout (the architecture
            comes from its config.json, else from the tensors' shapes).
        pretrained: ``True`` loads the model's default weights (its best reported top-1), a
            string picks a tag (``"tv_in1k"``), a full weights id or a torchvision weights name;
            see :func:`mnaszoo.list_weights`. The file is downloaded once, verified by sha256,
            converted from its publisher's layout, and the model is returned in eval mode with
            ``model.weights_info`` and ``model.provenance`` set.
        checkpoint: a local weights file instead (safetensors or ``.pth``, in mnaszoo's, timm's or
            torchvision's layout, detected from its keys); loaded strictly, in eval mode.
        num_classes: classifier outputs. ``None``: as in the weights (or 1000). Another value
            loads every layer but the classifier, which is freshly initialised (logged). 0 drops
            the classifier.
        width_mult: override the width of a base name (``mnasnet_a1``, ``mnasnet_b1``, ...). Names
            with a width suffix fix their width; weights fix both width and depth.
        depth_mult: block-count multiplier (repeats round up); default 1.0.
        in_chans: input image channels (pretrained stems are adapted, as timm does);
            ``None``: 3, or the saved model's own for a mnaszoo checkpoint on the Hub.
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
        revision: with an ``hf-hub:`` name, the branch, tag or commit to load (also written
            ``hf-hub:OWNER/REPO@REVISION``); the commit loaded is recorded in
            ``model.weights_info.source.revision``.

    Returns:
        A :class:`~mnaszoo.models.mnasnet.MnasNet` (or
        :class:`~mnaszoo.models.mnasnet.MnasNetFeatures`).

    Raises:
        UnknownModelError: ``name`` is not registered (close matches are suggested).
        IncompatibleWeightsError: an ``hf-hub:`` repository is not a MnasNet, or its tensors do
            not fit its architecture (the message says what was found).
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
    options: dict[str, Any] = {
        "in_chans": in_chans,
        "drop_rate": drop_rate,
        "drop_path_rate": drop_path_rate,
        "bn_eps": bn_eps,
        "bn_momentum": bn_momentum,
    }
    fetch: dict[str, Any] = {
        "cache_dir": cache_dir,
        "local_files_only": local_files_only,
        "force_download": force_download,
        "token": token,
        "download_timeout": download_timeout,
    }
    for flag, value in (("local_files_only", local_files_only), ("force_download", force_download)):
        check_bool(flag, value)
    if not isinstance(name, str):
        raise ArgumentTypeError(f"name must be a str, got {type(name).__name__} {name!r}.")
    if name.startswith(HF_HUB_PREFIX):
        if checkpoint is not None:
            raise InvalidArgumentError(
                "Pass either an hf-hub: name or checkpoint=... (a local file), not both."
            )
        from ._hub_create import create_from_hub

        return create_from_hub(
            name,
            pretrained=pretrained,
            revision=revision,
            num_classes=num_classes,
            width_mult=width_mult,
            depth_mult=depth_mult,
            features_only=features_only,
            out_indices=out_indices,
            options=options,
            fetch=fetch,
        )
    if revision is not None:
        raise InvalidArgumentError(
            "revision= applies to hf-hub: names only; registered weights are pinned to a commit"
            " by the manifest."
        )
    model_name, named_weights = _resolve_name(name)
    entry = get_entry(model_name)
    record = _weights_record(model_name, pretrained, named_weights, name)
    if record is not None and checkpoint is not None:
        raise InvalidArgumentError(
            "Pass either pretrained=... (published weights) or checkpoint=... (a local file), not"
            " both."
        )
    if record is None and checkpoint is None:
        config = _config(
            entry,
            width_mult=width_mult,
            depth_mult=depth_mult,
            num_classes=1000 if num_classes is None else num_classes,
            **options,
        )
        return build_from_config(config, features_only=features_only, out_indices=out_indices)

    from .weights.model_card import state_digest
    from .weights.provenance import file_provenance
    from .weights.resolve import (
        check_weights_fix_architecture,
        fetch_weights,
        read_state,
        resolve_config,
    )

    check_weights_fix_architecture(
        model_name, width_mult=width_mult, entry_width=entry.width_mult, depth_mult=depth_mult
    )
    if record is not None:
        path = fetch_weights(record, **fetch)
        state = read_state(path, expected_layout=record.layout)
        source = f"{record.id} ({path})"
    else:
        state = read_state(checkpoint)
        path = None
        source = str(checkpoint)
    requested = num_classes  # only a num_classes the caller asked for replaces the classifier
    if num_classes is None:
        num_classes = state.num_classes if state.num_classes is not None else 1000
    config = resolve_config(
        _config(entry, width_mult=None, depth_mult=None, num_classes=num_classes, **options),
        state,
    )
    model = build_from_config(config, features_only=features_only, out_indices=out_indices)
    load_into(model, state.state_dict, source=source, model_name=model_name, num_classes=requested)
    model.weights_info = record
    model.provenance = file_provenance(
        record, path if path is not None else checkpoint, state.layout, config
    )
    model.provenance["state_sha256"] = state_digest(model)
    return model.eval()


def _resolve_name(name: str) -> tuple[str, str | None]:
    """The registered model a name stands for, and the weights id it names (if it names any).

    Accepted: a registered name, a weights id (``model.tag``), or a timm / torchvision name.
    """
    if name in MODELS:
        return name, None
    peer = peer_name(name)
    if peer is not None:
        return peer.model, peer.weights if peer.names_weights else None
    if "." in name:
        model, _, _tag = name.partition(".")
        if model in MODELS and name in load_manifest().records:
            return model, name
        peer = peer_name(model)
        if peer is not None:
            raise UnknownWeightsError(
                f"{name!r}: {peer.peer} publishes no weights tagged {_tag!r} for {model!r}"
                f" (mnaszoo's {peer.model!r}). Known weights: "
                + ", ".join(_weights_of(peer.model))
                + "."
            )
    return name, None  # get_entry raises UnknownModelError with close matches


def _weights_of(model: str) -> list[str]:
    return [rid for rid in load_manifest().records if rid.split(".", 1)[0] == model] or ["none"]


def _weights_record(
    model_name: str, pretrained: object, named_weights: str | None, name: str
) -> WeightsRecord | None:
    if pretrained is False:
        return None
    if pretrained is True:
        if named_weights is not None:
            return get_weights(named_weights)
        peer = peer_name(name)
        if peer is None:
            return get_weights(model_name)
        if peer.weights is None:
            raise UnknownWeightsError(
                f"{peer.peer} publishes no pretrained weights for {name!r} (mnaszoo's"
                f" {peer.model!r}, the same architecture). Weights of this architecture from"
                f" other publishers: {', '.join(_weights_of(peer.model))}; pass"
                f" create({peer.model!r}, pretrained=True) for the best of them."
            )
        return get_weights(peer.weights)
    if not isinstance(pretrained, str):
        raise ArgumentTypeError(
            f"pretrained must be True, False or a weights tag, got {type(pretrained).__name__}"
            f" {pretrained!r}."
        )
    peer = peer_name(pretrained)
    if peer is not None and peer.names_weights and peer.weights is not None:
        pretrained = peer.weights
    if "." in pretrained:
        record = get_weights(pretrained)
        if record.model != model_name:
            raise InvalidArgumentError(
                f"Weights {pretrained!r} are for {record.model!r}, not {name!r}; call"
                f" create({record.model!r}, pretrained={record.tag!r})."
            )
        return record
    return get_weights(model_name, pretrained)


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
    if options.get("in_chans") is None:
        options["in_chans"] = 3
    return ModelConfig.resolve(
        entry.spec,
        width_mult=width,
        depth_mult=1.0 if depth_mult is None else depth_mult,
        **options,
    )


def from_pretrained(
    location: PathLike,
    *,
    revision: str | None = None,
    cache_dir: PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
) -> MnasNet:
    """Load a model saved by :func:`mnaszoo.save_pretrained`, from a folder or the Hub.

    Args:
        location: a local folder written by :func:`mnaszoo.save_pretrained`, a Hub repo id in
            mnaszoo's format (``"user/my-mnasnet"``), or ``"hf-hub:OWNER/REPO[@REVISION]"``
            for any Hub repository holding a MnasNet checkpoint in mnaszoo's, timm's or
            torchvision's layout (as :func:`create` loads it).
        revision: Hub branch, tag or commit (pin a commit for reproducibility).
        cache_dir: where Hub downloads are cached, as in :func:`create`.
        local_files_only: never use the network, as in :func:`create`.
        force_download: download again even if cached, as in :func:`create`.
        token: Hugging Face token for private or gated repositories.

    Returns:
        The :class:`~mnaszoo.models.mnasnet.MnasNet`, in eval mode, with ``weights_info``
        (labels, preprocessing) and ``provenance`` set.

    Raises:
        CorruptCheckpointError: the files are not a mnaszoo checkpoint.
        IncompatibleWeightsError: the weights do not fit the saved config (or, for ``hf-hub:``
            names, any MnasNet).
        InvalidArgumentError: ``location`` is neither such a folder nor a Hub repo id.
        ArgumentTypeError: ``location`` is not a path or a string.
        WeightsError: download or verification failures.

    Example:
        >>> model = mnaszoo.from_pretrained("runs/flowers")  # doctest: +SKIP
        >>> model = mnaszoo.from_pretrained("hf-hub:timm/mnasnet_100.rmsp_in1k")
        ... # doctest: +SKIP
    """
    if isinstance(location, str) and location.startswith(HF_HUB_PREFIX):
        model = create(
            location,
            pretrained=True,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
            token=token,
        )
        return model
    from .weights.hub import from_pretrained as load_saved

    return load_saved(
        location,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        force_download=force_download,
        token=token,
    )
