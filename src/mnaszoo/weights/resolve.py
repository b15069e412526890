"""From a weights record or a local file to a mnaszoo-layout state dict and the config it needs."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..errors import ArgumentTypeError, IncompatibleWeightsError, InvalidArgumentError
from ..models.architectures import MNASNET_B1, MNASNET_B1_TORCHVISION_V1
from ..models.config import ModelConfig
from ._cache import is_offline
from .manifest import HubSource, UrlSource, WeightsRecord

__all__ = ["LoadedState", "fetch_weights", "pin_key", "read_state", "resolve_config"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedState:
    """A checkpoint converted to mnaszoo's layout."""

    state_dict: dict[str, torch.Tensor]
    layout: str
    source: str
    torchvision_version: int | None

    @property
    def num_classes(self) -> int | None:
        """Rows of the checkpoint's classifier, if it has one."""
        weight = self.state_dict.get("classifier.weight")
        return None if weight is None else int(weight.shape[0])


def pin_key(record: WeightsRecord) -> str:
    """The key of a record's trust-on-first-use pin: its id and where its file comes from."""
    return f"{record.id} {record.source}"


def fetch_weights(
    record: WeightsRecord,
    *,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool,
    force_download: bool,
    token: str | bool | None,
    download_timeout: float | None = None,
) -> Path:
    """Download (or find in the cache) the file of ``record``, verified against its hash,
    within ``download_timeout`` seconds (default: ``$MNASZOO_DOWNLOAD_TIMEOUT``, else 120).

    An entry without a published full sha256 is checked against its trust-on-first-use pin
    (:mod:`.pins`); the first download, checked against what is published (the Hub's Git-LFS
    sha256, torchvision's prefix), records it. Either way the check reads the file itself, so it
    does not depend on the cache's layout (symlinks or copies)."""
    from ._files import file_digest
    from .download import fetch_hub_file, fetch_url
    from .pins import check_or_pin, pinned

    pin = None if record.sha256 is not None else pinned(pin_key(record))
    if isinstance(record.source, HubSource):
        sha256 = record.sha256 or pin
        if sha256 is None and not (local_files_only or is_offline()):
            sha256 = _hub_lfs_sha256(record.source, token, download_timeout)
        path = fetch_hub_file(
            record.source.repo_id,
            record.source.filename,
            record.source.revision,
            sha256=sha256,
            size=record.size,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
            token=token,
            download_timeout=download_timeout,
        )
    elif isinstance(record.source, UrlSource):
        path = fetch_url(
            record.source.url,
            sha256=record.sha256 or pin,
            sha256_prefix=record.sha256_prefix,
            size=record.size,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
            download_timeout=download_timeout,
        )
    else:
        raise InvalidArgumentError(
            f"Weights {record.id!r} come from {record.source}, not from the manifest: load them"
            " with mnaszoo.from_pretrained()."
        )
    if record.sha256 is None and pin is None:
        check_or_pin(pin_key(record), file_digest(path)[0], f"the file of {record.id}")
    return path


def _hub_lfs_sha256(
    source: HubSource, token: str | bool | None, download_timeout: float | None
) -> str | None:
    """The sha256 the Hub states (Git-LFS metadata) for a file at a commit, if it is LFS."""
    from huggingface_hub import constants

    from ._deadline import Deadline
    from .hub_listing import repo_listing

    _, files = repo_listing(
        source.repo_id,
        source.revision,
        token,
        Path(constants.HF_HUB_CACHE),
        Deadline(download_timeout),
    )
    return files.get(source.filename)


def read_state(path: object, *, expected_layout: str | None = None) -> LoadedState:
    """Read a checkpoint in any supported layout and convert it to mnaszoo's.

    Raises:
        CorruptCheckpointError: the file cannot be read as weights.
        IncompatibleWeightsError: the layout is unknown, or differs from ``expected_layout``.
    """
    from .checkpoint import read_checkpoint
    from .convert import detect_layout, to_mnaszoo

    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"checkpoint must be a path, got {type(path).__name__}.")
    checkpoint = read_checkpoint(path)
    for note in checkpoint.notes:
        logger.info("%s: %s", path, note)
    layout = detect_layout(checkpoint.state_dict)
    if expected_layout is not None and layout != expected_layout:
        raise IncompatibleWeightsError(
            f"{path} has the {layout} layout, but its manifest entry says {expected_layout}: the"
            " file is not the published checkpoint; delete it from the cache and download again."
        )
    return LoadedState(
        state_dict=to_mnaszoo(checkpoint.state_dict, layout),
        layout=layout,
        source=str(path),
        torchvision_version=checkpoint.torchvision_version,
    )


def resolve_config(config: ModelConfig, state: LoadedState) -> ModelConfig:
    """The config the checkpoint needs: ``config`` itself, or torchvision's version-1 B1.

    torchvision's MNASNET before version 2 kept a 32/16-channel stem at every width; its
    checkpoints (``_metadata`` version 1, or simply those stem shapes) need
    :data:`~mnaszoo.models.architectures.MNASNET_B1_TORCHVISION_V1`. This is decided from the
    shapes, and logged: the returned model's ``config.spec.name`` records it.
    """
    if state.layout != "torchvision" or config.spec != MNASNET_B1 or config.width_mult == 1.0:
        return config
    stem = state.state_dict.get("stem.conv.weight")
    v1_stem = replace(config, spec=MNASNET_B1_TORCHVISION_V1).plan.stem_channels
    if stem is None or stem.shape[0] != v1_stem or config.plan.stem_channels == v1_stem:
        if state.torchvision_version == 1:
            logger.warning(
                "%s says torchvision version 1 but has version-2 shapes; loading it as version 2.",
                state.source,
            )
        return config
    logger.warning(
        "%s is a torchvision version-1 MNASNet checkpoint (32/16-channel stem at width %g):"
        " building %s, as torchvision does for such files.",
        state.source,
        config.width_mult,
        MNASNET_B1_TORCHVISION_V1.name,
    )
    return replace(config, spec=MNASNET_B1_TORCHVISION_V1)


def check_weights_fix_architecture(
    name: str, *, width_mult: float | None, entry_width: float, depth_mult: float | None
) -> None:
    """Pretrained weights fix the width and depth: refuse multipliers that would change them."""
    if width_mult is not None and width_mult != entry_width:
        raise InvalidArgumentError(
            f"width_mult={width_mult!r} conflicts with pretrained weights for {name!r} (width"
            f" {entry_width:g}); drop width_mult, or pick the model whose width you want"
            " (mnaszoo.list_weights() lists them)."
        )
    if depth_mult is not None and depth_mult != 1.0:
        raise InvalidArgumentError(
            f"depth_mult={depth_mult!r} conflicts with pretrained weights for {name!r}, which"
            " have depth 1.0; drop depth_mult to load them."
        )
