"""``create("hf-hub:OWNER/REPO[@REVISION]")``: a model from any Hub repository holding a MnasNet.

The architecture comes from the repository's config (mnaszoo's full ``architecture``, or timm's
``architecture`` name, translated through the peer-name table); without a config it is the
registered model whose every tensor shape the checkpoint fits. Either way the tensors are
checked against the architecture before anything is loaded.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .errors import IncompatibleWeightsError, InvalidArgumentError
from .models.config import ModelConfig
from .models.counting import count_params
from .models.factory import build_from_config
from .models.mnasnet import MnasNet, MnasNetFeatures
from .models.registry import MODELS, ModelEntry
from .weights.hub_repo import (
    HubCheckpoint,
    fetch_hub_checkpoint,
    parse_hub_name,
    registered_model,
)
from .weights.loading import load_into
from .weights.manifest import DEFAULT_PREPROCESSING, HubSource, WeightsRecord
from .weights.model_card import state_digest
from .weights.provenance import hub_provenance
from .weights.resolve import LoadedState, resolve_config

__all__ = ["create_from_hub"]


def create_from_hub(
    name: str,
    *,
    pretrained: object,
    revision: str | None,
    num_classes: int | None,
    width_mult: float | None,
    depth_mult: float | None,
    features_only: bool,
    out_indices: tuple[int, ...] | None,
    options: dict[str, Any],
    fetch: dict[str, Any],
) -> MnasNet | MnasNetFeatures:
    """See :func:`mnaszoo.create`; ``name`` starts with ``hf-hub:``."""
    repo_id, named_revision = parse_hub_name(name)
    if revision is not None and named_revision is not None and revision != named_revision:
        raise InvalidArgumentError(
            f"{name!r} names revision {named_revision!r} but revision={revision!r} was given;"
            " give it once."
        )
    if pretrained not in (True, False):
        raise InvalidArgumentError(
            f"pretrained={pretrained!r}: an hf-hub: name has one checkpoint; pass"
            " pretrained=True to load it, or False for its architecture only."
        )
    if pretrained and (width_mult is not None or (depth_mult not in (None, 1.0))):
        raise InvalidArgumentError(
            "width_mult/depth_mult conflict with pretrained weights: the checkpoint fixes them."
        )
    found = fetch_hub_checkpoint(
        repo_id, revision or named_revision, weights=bool(pretrained), **fetch
    )
    state = found.state
    requested = num_classes
    if num_classes is None:
        num_classes = found.num_classes if found.num_classes is not None else 1000
    base = _base_config(found, num_classes, options)
    if not pretrained:
        if width_mult is not None or depth_mult is not None:
            base = dataclasses.replace(
                base,
                width_mult=base.width_mult if width_mult is None else width_mult,
                depth_mult=base.depth_mult if depth_mult is None else depth_mult,
            )
        return build_from_config(base, features_only=features_only, out_indices=out_indices)
    config = resolve_config(base, state)
    model = build_from_config(config, features_only=features_only, out_indices=out_indices)
    source = f"hf-hub:{repo_id}@{found.revision[:8]} ({found.filename})"
    load_into(
        model, state.state_dict, source=source, model_name=config.spec.name, num_classes=requested
    )
    model.weights_info = _record(found, config)
    model.provenance = hub_provenance(repo_id, found.revision, found.files, state.layout, config)
    model.provenance["state_sha256"] = state_digest(model)
    return model.eval()


def _base_config(found: HubCheckpoint, num_classes: int, options: dict[str, Any]) -> ModelConfig:
    if found.mnaszoo_config is not None:
        saved = found.mnaszoo_config
        chosen = {k: (getattr(saved, k) if v is None else v) for k, v in options.items()}
        return ModelConfig.resolve(
            saved.spec,
            width_mult=saved.width_mult,
            depth_mult=saved.depth_mult,
            num_classes=num_classes,
            **chosen,
        )
    if found.architecture is not None:
        entry = _entry_for_architecture(found)
        return _entry_config(entry, num_classes, options)
    if not found.state.state_dict:
        raise IncompatibleWeightsError(
            f"hf-hub:{found.repo_id} has no config.json naming its architecture, so a randomly"
            " initialised model cannot be built from it; pass pretrained=True (the architecture"
            " is then read from the weights' shapes)."
        )
    return _config_from_shapes(found, num_classes, options)


def _entry_for_architecture(found: HubCheckpoint) -> ModelEntry:
    name = registered_model(str(found.architecture), found.repo_id, found.revision)
    return MODELS[name]


def _entry_config(entry: ModelEntry, num_classes: int, options: dict[str, Any]) -> ModelConfig:
    chosen = {**options, "in_chans": 3 if options["in_chans"] is None else options["in_chans"]}
    return ModelConfig.resolve(
        entry.spec, width_mult=entry.width_mult, num_classes=num_classes, **chosen
    )


def _shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = MnasNet(config)
    return {
        k: tuple(v.shape)
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def _config_from_shapes(
    found: HubCheckpoint, num_classes: int, options: dict[str, Any]
) -> ModelConfig:
    """The registered architecture whose every tensor shape the checkpoint has."""
    state: LoadedState = found.state
    have = {
        k: tuple(v.shape)
        for k, v in state.state_dict.items()
        if not k.endswith("num_batches_tracked")
    }
    closest: tuple[int, str] | None = None
    for entry in MODELS.values():
        config = resolve_config(_entry_config(entry, num_classes, options), state)
        want = _shapes(config)
        if want == have:
            return config
        differences = len(set(want) ^ set(have)) + sum(
            1 for k in set(want) & set(have) if want[k] != have[k]
        )
        if closest is None or differences < closest[0]:
            closest = (differences, entry.name)
    stem = have.get("stem.conv.weight")
    classifier = have.get("classifier.weight")
    raise IncompatibleWeightsError(
        f"hf-hub:{found.repo_id}@{found.revision[:8]} holds {found.filename} in {state.layout}'s"
        f" layout ({len(have)} tensors, stem {stem}, classifier {classifier}), but its shapes fit"
        f" no MnasNet that mnaszoo knows (closest: {closest[1] if closest else 'none'}, with"
        f" {closest[0] if closest else 0} differing tensors) and the repository has no"
        " config.json naming its architecture. Add a config.json with timm's 'architecture'"
        " key, or load the file with mnaszoo.create(name, checkpoint=path)."
    )


def _record(found: HubCheckpoint, config: ModelConfig) -> WeightsRecord:
    labels: str | tuple[str, ...]
    names = found.config.get("labels") or found.config.get("label_names")
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        labels = tuple(names)
    elif isinstance(names, str):
        labels = names
    else:
        labels = "imagenet-1k" if config.num_classes == 1000 else ()
    return WeightsRecord(
        id=f"{config.spec.name}.hf_hub",
        source=HubSource(found.repo_id, found.revision, found.filename),
        sha256=found.files.get(found.filename),
        sha256_prefix=None,
        size=found.path.stat().st_size if found.path.is_file() else None,
        layout=found.state.layout,  # type: ignore[arg-type]
        num_classes=config.num_classes,
        labels=labels,
        preprocessing=found.preprocessing() or DEFAULT_PREPROCESSING,
        metrics=(),
        license=str(found.config.get("license", "")),
        num_params=count_params(
            config.plan, num_classes=config.num_classes, in_chans=config.in_chans
        ),
        publisher=f"hf-hub:{found.repo_id}",
        notes=f"Loaded from hf-hub:{found.repo_id} at commit {found.revision}"
        f" (asked for {found.requested!r}).",
    )
