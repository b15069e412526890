"""Any Hub repository holding a MnasNet checkpoint: ``create("hf-hub:OWNER/REPO[@REVISION]")``.

The revision is resolved to its commit first, with the file list and the Hub's Git-LFS sha256 of
each file, so every file is then downloaded at that commit and checked against the sha256 the
Hub states (whatever the shape of the local cache). The weights file is picked by name
(safetensors first), read safely, its layout (mnaszoo's, timm's or torchvision's) detected and
converted; the repository's ``config.json``, where there is one, names the architecture (timm's
``architecture``, or mnaszoo's full ``architecture`` object).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    CorruptCheckpointError,
    IncompatibleWeightsError,
    InvalidArgumentError,
    WeightsNotCachedError,
)
from ..models.config import ModelConfig
from ._cache import is_offline
from ._deadline import Deadline
from ._files import file_digest
from .hub_download import fetch_hub_file, with_retries
from .hub_listing import repo_listing
from .manifest import Preprocessing
from .resolve import LoadedState

__all__ = ["HF_HUB_PREFIX", "HubCheckpoint", "fetch_hub_checkpoint", "parse_hub_name"]

HF_HUB_PREFIX = "hf-hub:"
CONFIG_NAME = "config.json"
# Weights files in the order a repository's file is preferred (timm's loader order first).
_PREFERRED = ("model.safetensors", "pytorch_model.bin")
_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_SHARDED = re.compile(r"-\d{5}-of-\d{5}\.")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class HubCheckpoint:
    """A Hub repository's checkpoint, downloaded, verified and converted to mnaszoo's layout.

    Attributes:
        repo_id: ``"owner/name"``.
        revision: the commit that was loaded (40 hex digits).
        requested: the revision asked for (a branch, tag or commit; ``"main"`` by default).
        filename: the weights file inside the repository.
        path: the local copy of the weights file.
        state: the weights in mnaszoo's layout, with the layout they were found in.
        files: every file read from the repository, name to sha256.
        config: the repository's ``config.json`` (``{}`` when it has none).
        mnaszoo_config: the architecture of a mnaszoo checkpoint, else ``None``.
        architecture: the architecture name timm's config gives, else ``None``.
    """

    repo_id: str
    revision: str
    requested: str
    filename: str
    path: Path
    state: LoadedState
    files: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    mnaszoo_config: ModelConfig | None = None
    architecture: str | None = None

    @property
    def num_classes(self) -> int | None:
        """The config's number of classes, else the classifier's rows, if any."""
        value = self.config.get("num_classes")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return self.state.num_classes

    def preprocessing(self) -> Preprocessing | None:
        """The evaluation transform the repository's config states (timm's ``pretrained_cfg``
        or mnaszoo's ``preprocessing``), if any."""
        mnaszoo = self.config.get("preprocessing")
        if isinstance(mnaszoo, dict):
            return Preprocessing.from_dict(mnaszoo)
        cfg = self.config.get("pretrained_cfg")
        if not isinstance(cfg, dict):
            return None
        try:
            size = cfg["input_size"]
            return Preprocessing(
                input_size=int(size[-1]),
                interpolation=cfg.get("interpolation", "bicubic"),
                mean=tuple(float(x) for x in cfg["mean"]),  # type: ignore[arg-type]
                std=tuple(float(x) for x in cfg["std"]),  # type: ignore[arg-type]
                crop_pct=float(cfg.get("crop_pct", 0.875)),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None  # an unusual pretrained_cfg: the model's default recipe applies


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """Split ``"hf-hub:owner/repo[@revision]"`` into the repo id and the revision (or ``None``).

    Raises:
        InvalidArgumentError: the part after ``hf-hub:`` is not ``owner/repo``.
    """
    rest = name[len(HF_HUB_PREFIX) :] if name.startswith(HF_HUB_PREFIX) else name
    repo_id, _, revision = rest.partition("@")
    if not _REPO_ID.fullmatch(repo_id) or (_ and not revision):
        raise InvalidArgumentError(
            f"{name!r} is not a Hub model name; write 'hf-hub:OWNER/REPO' or"
            " 'hf-hub:OWNER/REPO@REVISION' (a branch, tag or commit)."
        )
    return repo_id, revision or None


def _pick_weights(repo_id: str, files: list[str]) -> str:
    for name in _PREFERRED:
        if name in files:
            return name
    candidates = [f for f in files if f.lower().endswith(_SUFFIXES) and "/" not in f]
    sharded = [f for f in candidates if _SHARDED.search(f)]
    single = [f for f in candidates if f not in sharded]
    safetensors = [f for f in single if f.endswith(".safetensors")]
    if len(safetensors) == 1:
        return safetensors[0]
    if len(single) == 1:
        return single[0]
    listing = ", ".join(files[:12]) or "no files"
    problem = (
        f"several weights files ({', '.join(single)})"
        if len(single) > 1
        else "only a sharded checkpoint"
        if sharded
        else "no weights file"
    )
    raise IncompatibleWeightsError(
        f"hf-hub:{repo_id} holds {problem}, so it is not a MnasNet checkpoint that mnaszoo can"
        f" load (files: {listing}). mnaszoo reads one model.safetensors, pytorch_model.bin, or a"
        " single .safetensors/.pth/.pt/.bin file at the top of the repository."
    )


def _cached_listing(repo_id: str, revision: str, cache: Path) -> tuple[str, dict[str, str | None]]:
    """Offline: the cached snapshot of ``revision`` (a commit, or a branch recorded in refs/)."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    commit = revision
    ref = folder / "refs" / revision
    if ref.is_file():
        commit = ref.read_text("utf-8").strip()
    snapshot = folder / "snapshots" / commit
    if not snapshot.is_dir():
        raise WeightsNotCachedError(
            f"hf-hub:{repo_id}@{revision} is not in the cache {cache} and the network is off"
            " (local_files_only=True or HF_HUB_OFFLINE=1). Load it once online, or point"
            " cache_dir/HF_HUB_CACHE at a cache that holds it."
        )
    return commit, {p.name: None for p in snapshot.iterdir() if p.is_file()}


def _read_config(path: Path, repo_id: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise CorruptCheckpointError(
            f"The config.json of hf-hub:{repo_id} cannot be read as JSON ({error})."
        ) from error
    if not isinstance(data, dict):
        raise CorruptCheckpointError(
            f"The config.json of hf-hub:{repo_id} is a {type(data).__name__}, not an object."
        )
    return data


def fetch_hub_checkpoint(
    repo_id: str,
    revision: str | None,
    *,
    cache_dir: PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
    download_timeout: float | None = None,
    weights: bool = True,
) -> HubCheckpoint:
    """Download (or find in the cache) a repository's config and weights, verified, converted.

    Args:
        repo_id: ``"owner/name"``.
        revision: a branch, tag or commit (default ``"main"``).
        cache_dir: the huggingface_hub cache (default ``HF_HUB_CACHE``).
        local_files_only: never use the network.
        force_download: download again even if cached.
        token: Hugging Face token for private or gated repositories.
        download_timeout: seconds each download may take, retries included.
        weights: ``False`` reads the config only (to build a randomly initialised model).

    Raises:
        IncompatibleWeightsError: the repository holds no single weights file, or its tensors
            are in no MnasNet layout.
        CorruptCheckpointError: the config or the weights cannot be read.
        WeightsError: a download failure (see :func:`mnaszoo.weights.download.fetch_hub_file`).
    """
    from huggingface_hub import constants

    from .resolve import read_state

    requested = revision or "main"
    cache = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE).expanduser()
    offline = local_files_only or is_offline()
    if offline:
        commit, listing = _cached_listing(repo_id, requested, cache)
    else:
        commit, listing = repo_listing(repo_id, requested, token, cache, Deadline())
    files: dict[str, str] = {}
    config: dict[str, Any] = {}
    common: dict[str, Any] = {
        "cache_dir": cache_dir,
        "local_files_only": local_files_only,
        "force_download": force_download,
        "token": token,
        "download_timeout": download_timeout,
    }
    if CONFIG_NAME in listing:
        config_path = _fetch_small(repo_id, CONFIG_NAME, commit, listing, cache, offline, token)
        files[CONFIG_NAME] = file_digest(config_path)[0]
        config = _read_config(config_path, repo_id)
    mnaszoo_config = _mnaszoo_config(config, repo_id)
    architecture = config.get("architecture") if mnaszoo_config is None else None
    if isinstance(architecture, str):
        registered_model(architecture, repo_id, commit)  # refuse before downloading weights
    if not weights:
        empty = LoadedState({}, "mnaszoo", f"hf-hub:{repo_id}", None)
        return HubCheckpoint(
            repo_id,
            commit,
            requested,
            "",
            Path(),
            empty,
            files,
            config,
            mnaszoo_config,
            architecture if isinstance(architecture, str) else None,
        )
    filename = _pick_weights(repo_id, sorted(listing))
    path = fetch_hub_file(repo_id, filename, commit, sha256=listing.get(filename), **common)
    if not offline and requested != commit:
        _remember_ref(cache, repo_id, requested, commit)
    files[filename] = file_digest(path)[0]
    try:
        state = read_state(path)
    except IncompatibleWeightsError as error:
        raise IncompatibleWeightsError(
            f"hf-hub:{repo_id}@{commit[:8]} is not a MnasNet checkpoint ({filename}): {error}"
        ) from error
    return HubCheckpoint(
        repo_id=repo_id,
        revision=commit,
        requested=requested,
        filename=filename,
        path=path,
        state=state,
        files=files,
        config=config,
        mnaszoo_config=mnaszoo_config,
        architecture=architecture if isinstance(architecture, str) else None,
    )


def _fetch_small(
    repo_id: str,
    filename: str,
    commit: str,
    listing: dict[str, str | None],
    cache: Path,
    offline: bool,
    token: str | bool | None,
) -> Path:
    """A small file kept in git (no LFS sha256): the commit pins it."""
    from huggingface_hub import hf_hub_download

    sha256 = listing.get(filename)
    if sha256 is not None:  # an LFS config: verified like the weights
        return fetch_hub_file(
            repo_id, filename, commit, sha256=sha256, cache_dir=cache, local_files_only=offline
        )
    return Path(
        with_retries(
            lambda: hf_hub_download(
                repo_id,
                filename,
                revision=commit,
                cache_dir=cache,
                local_files_only=offline,
                token=token,
                library_name="mnaszoo",
            ),
            f"{filename!r} of {repo_id}@{commit}",
            cache,
            Deadline(),
        )
    )


def _mnaszoo_config(config: dict[str, Any], repo_id: str) -> ModelConfig | None:
    if config.get("library_name") != "mnaszoo":
        return None
    from .hub import _model_config

    architecture = config.get("architecture")
    if not isinstance(architecture, dict):
        raise CorruptCheckpointError(
            f"The config.json of hf-hub:{repo_id} says mnaszoo but has no 'architecture' object."
        )
    return _model_config(config, Path(f"hf-hub:{repo_id}/{CONFIG_NAME}"))


def _remember_ref(cache: Path, repo_id: str, ref: str, commit: str) -> None:
    """Record where a branch or tag pointed, as huggingface_hub does, for offline loads."""
    from .._io import write_text_atomic

    path = cache / f"models--{repo_id.replace('/', '--')}" / "refs" / ref
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, commit)
    except OSError:
        pass  # only offline loads by branch name need it; the files themselves are cached


def registered_model(architecture: str, repo_id: str, commit: str) -> str:
    """The registered mnaszoo model an architecture name (mnaszoo's, timm's or torchvision's,
    with or without a ``.tag``) stands for.

    Raises:
        IncompatibleWeightsError: the name is no MnasNet that mnaszoo knows.
    """
    from ..models.registry import MODELS
    from .aliases import PEER_NAMES, peer_name

    model = architecture.partition(".")[0]
    peer = peer_name(architecture) or peer_name(model)
    if peer is not None:
        return peer.model
    if model in MODELS:
        return model
    known = sorted({*MODELS, *(n for n, p in PEER_NAMES.items() if not p.names_weights)})
    raise IncompatibleWeightsError(
        f"hf-hub:{repo_id}@{commit[:8]}: its config.json names the architecture"
        f" {architecture!r}, which is not a MnasNet. mnaszoo loads MnasNet checkpoints only; the"
        f" architectures it knows are: {', '.join(known)}."
    )
