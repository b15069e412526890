"""mnaszoo's own checkpoint format: ``model.safetensors`` plus ``config.json`` in a directory.

The config holds everything needed to rebuild the model without the registry (the full spec,
multipliers, options), plus labels and preprocessing, so a fine-tuned model travels with what
``predict`` needs. Writes are atomic; a directory holding another architecture is not
overwritten unless asked. The same directory layout on the Hugging Face Hub loads with
:func:`from_pretrained` and is written by :func:`push_to_hub`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .._io import check_directory_target, new_file_mode, replace_directory
from .._validate import check_labels
from .._wrap import writing
from ..errors import (
    ArgumentTypeError,
    CacheNotWritableError,
    CorruptCheckpointError,
    InvalidArgumentError,
    ManifestError,
)
from ..models.config import ModelConfig
from ..models.counting import count_params
from ..models.mnasnet import MnasNet
from ._cache import is_offline
from ._deadline import Deadline, check_resolvable
from ._files import file_digest
from .download import fetch_hub_file
from .hub_download import with_retries
from .loading import load_into
from .manifest import DEFAULT_PREPROCESSING, LocalSource, Preprocessing, WeightsRecord

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "from_pretrained", "push_to_hub", "save_pretrained"]

logger = logging.getLogger(__name__)


CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
PathLike = str | os.PathLike[str]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")


def _architecture(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("spec", "width_mult", "depth_mult", "in_chans", "num_classes")
    return {key: config.get(key) for key in keys}


def _checkpoint_files(directory: Path, *, card: bool = False) -> set[str] | None:
    """The files of a checkpoint save_pretrained wrote in ``directory``; ``None`` if it holds
    none (its config.json is missing, unreadable or not mnaszoo's). Its model card counts as
    its own while unchanged since mnaszoo wrote it, or when ``card`` (the caller replaces it)."""
    from .model_card import CARD_NAME, card_is_ours

    try:
        data = json.loads((directory / CONFIG_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("library_name") != "mnaszoo":
        return None
    files = {CONFIG_NAME, WEIGHTS_NAME}
    extra = data.get("files")
    if isinstance(extra, dict):
        files.update(name for name in extra if isinstance(name, str))
    if card or card_is_ours(directory):
        files.add(CARD_NAME)
    return files


def _check_overwrite(directory: Path, config: ModelConfig, overwrite: bool) -> None:
    # Files save_pretrained did not write are never replaced, overwrite or not.
    mine = check_directory_target(
        directory,
        kind="a checkpoint",
        owned=_checkpoint_files,
        exclusive=False,
        overwrite=True,
        expected=(WEIGHTS_NAME, CONFIG_NAME),
    )
    if overwrite or not mine:
        return
    try:
        saved = json.loads((directory / CONFIG_NAME).read_text("utf-8"))["architecture"]
    except (OSError, ValueError, KeyError, TypeError):
        saved = None
    if saved is None or _architecture(saved) != _architecture(config.to_dict()):
        what = (
            f"a {saved['spec']['name']} checkpoint"
            if isinstance(saved, dict) and isinstance(saved.get("spec"), dict)
            else "a checkpoint of another model"
        )
        raise InvalidArgumentError(
            f"{directory} already holds {what}; pass overwrite=True to replace it, or choose"
            " another directory."
        )


def _record_dict(model: torch.nn.Module, labels: Sequence[str] | None) -> dict[str, Any]:
    info: WeightsRecord | None = getattr(model, "weights_info", None)
    num_classes = int(getattr(model, "num_classes", 0))
    if labels is not None:
        labels = list(check_labels(labels, num_classes))
    elif info is not None and info.num_classes == num_classes:
        labels = info.labels if isinstance(info.labels, str) else list(info.labels)
    return {
        "labels": labels,
        "preprocessing": None if info is None else info.preprocessing.to_dict(),
        "weights_id": None if info is None else info.id,
    }


def save_pretrained(
    model: torch.nn.Module,
    directory: PathLike,
    *,
    overwrite: bool = False,
    labels: Sequence[str] | None = None,
) -> Path:
    """Save ``model`` as ``model.safetensors`` + ``config.json`` + a model card in ``directory``.

    The model card (``README.md``, with ``architecture.svg``) carries the Hub metadata, a usage
    snippet, the preprocessing recipe, the published results (when the weights are unchanged)
    and the provenance of the weights; ``config.json`` records the same provenance, which
    ``mnaszoo verify`` checks the folder against.

    Args:
        model: a :class:`~mnaszoo.models.mnasnet.MnasNet`.
        directory: created if needed.
        overwrite: replace a checkpoint of another architecture found there, and a
            ``README.md`` that mnaszoo did not write (or that was edited since).
        labels: class names (one per output) to store with the model; default: the labels of
            its pretrained weights, if the classifier is theirs.

    Returns:
        The directory.

    Raises:
        InvalidArgumentError: the directory holds another architecture's checkpoint, or the
            model's weights are not a checkpoint (an :func:`mnaszoo.optimize_for_inference`
            copy, whose BatchNorm layers are folded away).
        ArgumentTypeError: ``model`` is not a :class:`~mnaszoo.models.mnasnet.MnasNet`.
        CacheNotWritableError: the directory cannot be written (any ``OSError``: permissions,
            a full disk); the directory is then unchanged. The update is all or nothing: a
            complete new directory is written beside it and swapped in (other files in it are
            kept).

    Example:
        >>> import tempfile, mnaszoo
        >>> model = mnaszoo.create("mnasnet_small", num_classes=3)
        >>> folder = tempfile.TemporaryDirectory()
        >>> path = mnaszoo.save_pretrained(model, folder.name, labels=["ant", "bee", "cat"])
        >>> sorted(p.name for p in path.iterdir())
        ['README.md', 'architecture.svg', 'config.json', 'model.safetensors']
        >>> mnaszoo.from_pretrained(path).weights_info.labels
        ('ant', 'bee', 'cat')
        >>> folder.cleanup()
    """
    return _save(model, directory, overwrite=overwrite, labels=labels, location=None)


def _save(
    model: torch.nn.Module,
    directory: PathLike,
    *,
    overwrite: bool,
    labels: Sequence[str] | None,
    location: str | None,
) -> Path:
    """:func:`save_pretrained`; ``location`` is what the card tells users to load (default:
    the directory)."""
    from safetensors.torch import save_file

    from ..models.diagram import draw
    from .model_card import CARD_NAME, DIAGRAM_NAME, card_is_ours, render_card

    if not isinstance(model, MnasNet):
        raise ArgumentTypeError(f"save_pretrained takes a MnasNet, got {type(model).__name__}.")
    path = Path(directory)
    _check_overwrite(path, model.config, overwrite)
    # safetensors needs contiguous CPU tensors; channels_last weights are not NCHW-contiguous.
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    _check_loadable(model, tensors)
    from .._version import __version__

    write_card = overwrite or card_is_ours(path)
    if not write_card:
        logger.warning(
            "%s holds a README.md that mnaszoo did not write (or that was edited): it is kept."
            " Pass overwrite=True to replace it with a generated model card.",
            path,
        )
    config: dict[str, Any] = {
        "library_name": "mnaszoo",
        "format_version": FORMAT_VERSION,
        "mnaszoo_version": __version__,
        "architecture": model.config.to_dict(),
        **_record_dict(model, labels),
        "provenance": model.provenance,
    }
    metadata = {
        "format": "pt",
        "mnaszoo_format": str(FORMAT_VERSION),
        "architecture": model.config.spec.name,
    }

    def fill(staging: Path) -> None:
        save_file(tensors, str(staging / WEIGHTS_NAME), metadata)
        # The config names the weights it belongs to: a pair torn by an interrupted update
        # (possible only where the directory cannot be swapped as a whole) fails to load.
        config["weights_sha256"] = file_digest(staging / WEIGHTS_NAME)[0]
        names = [WEIGHTS_NAME, CONFIG_NAME]
        if write_card:
            card = render_card(
                model,
                location=location if location is not None else str(directory),
                saved={WEIGHTS_NAME: config["weights_sha256"]},
                version=__version__,
            )
            (staging / CARD_NAME).write_text(card, "utf-8")
            (staging / DIAGRAM_NAME).write_text(draw(model.config), "utf-8")
            config["card_sha256"] = file_digest(staging / CARD_NAME)[0]
            config["files"] = {DIAGRAM_NAME: file_digest(staging / DIAGRAM_NAME)[0]}
            names += [CARD_NAME, DIAGRAM_NAME]
        else:
            config["card_sha256"] = None
        _write_json(staging / CONFIG_NAME, config)
        for name in names:
            os.chmod(staging / name, new_file_mode())

    # Weights and config are one checkpoint: a complete new directory is written and swapped in,
    # so a failure (a full disk, a killed process) never pairs new weights with an old config.
    with writing("the checkpoint", path, CacheNotWritableError):
        replace_directory(
            path,
            fill,
            kind="a checkpoint",
            # overwrite=True is the user's word that a card of theirs may be replaced too.
            owned=lambda directory: _checkpoint_files(directory, card=write_card),
            order=(WEIGHTS_NAME, DIAGRAM_NAME, CARD_NAME, CONFIG_NAME),
        )
    return path


def _check_loadable(model: Any, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a state that :func:`from_pretrained` could not load into ``MnasNet(config)``."""
    from ..models.mnasnet import MnasNet
    from .loading import diff_shapes

    if getattr(type(model), "_mnaszoo_inference_only", False):
        raise InvalidArgumentError(
            "This model was made by mnaszoo.optimize_for_inference: its BatchNorm layers are"
            " folded away, so its weights are not a checkpoint. Save the original model, and"
            " call optimize_for_inference again after loading it."
        )
    with torch.device("meta"):
        reference = MnasNet(model.config)  # shapes only: no memory, no initialisation cost
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    missing, unexpected, mismatched = diff_shapes(
        expected, {k: tuple(v.shape) for k, v in tensors.items()}
    )
    if missing or unexpected or mismatched:
        problems = (
            mismatched + [f"missing {k}" for k in missing] + [f"unexpected {k}" for k in unexpected]
        )
        raise InvalidArgumentError(
            "The model's weights do not match its configuration, so the checkpoint could not be"
            f" loaded back: {'; '.join(problems[:5])}. Save an unmodified mnaszoo model."
        )


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise CorruptCheckpointError(f"Cannot read {path}: {error}") from error
    if not isinstance(data, dict) or data.get("library_name") != "mnaszoo":
        raise CorruptCheckpointError(
            f"{path} is not a mnaszoo config (no 'library_name': 'mnaszoo'); for timm or"
            " torchvision files use mnaszoo.create(name, checkpoint=...)."
        )
    if data.get("format_version") != FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"{path} has format_version {data.get('format_version')!r}; this mnaszoo reads"
            f" {FORMAT_VERSION}: upgrade mnaszoo."
        )
    return data


def _model_config(data: dict[str, Any], path: Path) -> ModelConfig:
    """The architecture of a config, with its labels checked, or a CorruptCheckpointError."""
    architecture = data.get("architecture")
    if not isinstance(architecture, dict):
        raise CorruptCheckpointError(
            f"{path} has no 'architecture' object (got {architecture!r}): it was not written by"
            " save_pretrained(), or was edited. Save the model again."
        )
    try:
        config = ModelConfig.from_dict(architecture)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CorruptCheckpointError(
            f"{path} has an unusable 'architecture' ({type(error).__name__}: {error}). Save the"
            " model again."
        ) from error
    labels = data.get("labels")
    if labels is not None and not isinstance(labels, str):
        if not isinstance(labels, list):
            raise CorruptCheckpointError(
                f"{path} has 'labels': {labels!r:.80}; expected a list of class names (or null)."
            )
        check_labels(labels, config.num_classes, where=f"{path}", error=CorruptCheckpointError)
    preprocessing = data.get("preprocessing")
    if preprocessing is not None and not isinstance(preprocessing, dict):
        raise CorruptCheckpointError(
            f"{path} has 'preprocessing': {preprocessing!r:.80}; expected an object (or null)."
        )
    if preprocessing is not None:
        try:  # every field, before anything is built from it
            Preprocessing.from_dict(preprocessing)
        except ManifestError as error:
            raise CorruptCheckpointError(
                f"{path}: {error} Fix that block of the file, or save the model again."
            ) from error
    return config


def _hub_files(
    repo_id: str,
    *,
    revision: str | None,
    cache_dir: PathLike | None,
    local_files_only: bool,
    force_download: bool,
    token: str | bool | None,
) -> tuple[Path, Path]:
    from huggingface_hub import constants, hf_hub_download, hf_hub_url

    revision = revision or "main"
    cache = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE).expanduser()
    what = f"{CONFIG_NAME!r} of {repo_id}@{revision}"
    deadline = Deadline()
    if not (local_files_only or is_offline()):
        check_resolvable(hf_hub_url(repo_id, CONFIG_NAME, revision=revision), deadline, what)
    # Every huggingface_hub error becomes a mnaszoo WeightsError, as for the weights file.
    config = Path(
        with_retries(
            lambda: hf_hub_download(
                repo_id,
                CONFIG_NAME,
                revision=revision,
                cache_dir=cache,
                local_files_only=local_files_only,
                force_download=force_download,
                token=token,
                library_name="mnaszoo",
            ),
            what,
            cache,
            deadline,
        )
    )
    weights = fetch_hub_file(
        repo_id,
        WEIGHTS_NAME,
        revision,
        sha256=None,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        force_download=force_download,
        token=token,
    )
    return config, weights


def from_pretrained(
    location: PathLike,
    *,
    revision: str | None = None,
    cache_dir: PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
) -> MnasNet:
    """Load a model saved by :func:`save_pretrained`, from a directory or a Hub repository.

    Args:
        location: a local directory, or a Hub repo id (``"user/my-mnasnet"``).
        revision: Hub branch, tag or commit (pin a commit for reproducibility).
        cache_dir: where Hub downloads are cached, as in :func:`mnaszoo.create`.
        local_files_only: never use the network, as in :func:`mnaszoo.create`.
        force_download: download again even if cached, as in :func:`mnaszoo.create`.
        token: Hugging Face token for private or gated repositories.

    Returns:
        The :class:`~mnaszoo.models.mnasnet.MnasNet`, in eval mode, with ``weights_info`` holding
        its labels and preprocessing.

    Raises:
        CorruptCheckpointError: the files are not a mnaszoo checkpoint.
        IncompatibleWeightsError: the weights do not fit the saved config.
        InvalidArgumentError: ``location`` is neither such a directory nor a Hub repo id.
        ArgumentTypeError: ``location`` is not a path or a string.
        WeightsError: download or verification failures (Hub): every huggingface_hub error
            (repository or file not found, gated, not cached offline) is mapped to one.
        InvalidArgumentError: ``location`` looks like a path (starts with ``.``, ``/`` or
            ``~``, or its parent folder exists) but is not a directory; it is not sent to the
            Hub.

    Example:
        >>> model = mnaszoo.from_pretrained("runs/flowers")  # doctest: +SKIP
        >>> model = mnaszoo.from_pretrained("me/mnasnet-flowers", revision="3f2a9c1")
        ... # doctest: +SKIP

        :func:`save_pretrained` shows a round trip.
    """
    from safetensors.torch import load_file

    if not isinstance(location, (str, os.PathLike)):
        raise ArgumentTypeError(
            f"location must be a path or repo id, got {type(location).__name__}."
        )
    local = Path(location)
    if local.is_dir():
        config_path, weights_path = local / CONFIG_NAME, local / WEIGHTS_NAME
        for needed in (config_path, weights_path):
            if not needed.is_file():
                raise CorruptCheckpointError(
                    f"{local} lacks {needed.name}: it is not a directory written by"
                    " save_pretrained()."
                )
    elif not local.exists() and _looks_like_path(str(location)):
        raise InvalidArgumentError(
            f"The local directory {location!s} does not exist (nothing was sent to the Hub,"
            " since it looks like a path). Check the spelling; a Hub repo id is 'user/name'."
        )
    elif local.exists() or str(location).count("/") != 1:
        raise InvalidArgumentError(
            f"{location!s} is neither a directory written by save_pretrained() nor a Hub repo id"
            " ('user/name'); for a single weights file use mnaszoo.create(name, checkpoint=...)."
        )
    else:
        config_path, weights_path = _hub_files(
            str(location),
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
            token=token,
        )
    data = _read_config(config_path)
    config = _model_config(data, config_path)
    recorded = data.get("weights_sha256")
    if isinstance(recorded, str) and file_digest(weights_path)[0] != recorded:
        raise CorruptCheckpointError(
            f"{weights_path} is not the weights its {CONFIG_NAME} was saved with (sha256"
            f" differs): an interrupted or mixed save. Save the model again."
        )
    model = MnasNet(config)
    try:
        state = load_file(str(weights_path))
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise CorruptCheckpointError(f"Cannot read {weights_path}: {error}") from error
    load_into(model, state, source=str(weights_path), model_name=config.spec.name)
    model.weights_info = _local_record(data, config, str(location))
    model.provenance = _folder_provenance(data, config_path, weights_path, str(location), local)
    return model.eval()


def _folder_provenance(
    data: dict[str, Any], config_path: Path, weights_path: Path, location: str, local: Path
) -> dict[str, Any]:
    """Provenance of a checkpoint folder or Hub repo in mnaszoo's format: its own files, and
    the provenance it was saved with (``origin``)."""
    from .._version import __version__
    from .provenance import conversion_note

    on_hub = not local.is_dir()
    # A Hub file's cache path is .../snapshots/<commit>/<file>: the commit that was loaded.
    revision = weights_path.parent.name if on_hub else None
    return {
        "source": "huggingface-hub" if on_hub else "local",
        "repo_id": location if on_hub else None,
        "revision": revision,
        "url": None if on_hub else location,
        "weights_id": data.get("weights_id"),
        "files": {
            WEIGHTS_NAME: file_digest(weights_path)[0],
            CONFIG_NAME: file_digest(config_path)[0],
        },
        "layout": "mnaszoo",
        "conversion": conversion_note("mnaszoo"),
        "mnaszoo_version": __version__,
        "origin": data.get("provenance"),
    }


def _looks_like_path(text: str) -> bool:
    """Whether a missing ``location`` was meant as a local directory: it starts like a path,
    or its parent folder exists here (``runs/finetnue`` with a ``runs`` folder)."""
    if text.startswith((".", "/", "~", "\\")) or os.sep in text.replace("/", ""):
        return True
    parent = Path(text).expanduser().parent
    return parent != Path(".") and parent.exists()


def _local_record(data: dict[str, Any], config: ModelConfig, location: str) -> WeightsRecord | None:
    preprocessing = data.get("preprocessing")
    labels = data.get("labels")
    if preprocessing is None and labels is None:
        return None
    return WeightsRecord(
        id=f"{config.spec.name}.local",
        source=LocalSource(location),
        sha256=None,
        sha256_prefix=None,
        size=None,
        layout="mnaszoo",
        num_classes=config.num_classes,
        labels=labels if isinstance(labels, str) else tuple(labels or ()),
        preprocessing=Preprocessing.from_dict(preprocessing)
        if preprocessing
        else DEFAULT_PREPROCESSING,
        metrics=(),
        license="",
        num_params=count_params(
            config.plan, num_classes=config.num_classes, in_chans=config.in_chans
        ),
        publisher=str(data.get("weights_id") or location),
        notes="Loaded with from_pretrained().",
    )


def push_to_hub(
    model: torch.nn.Module,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | bool | None = None,
    commit_message: str = "Upload mnaszoo model",
    labels: Sequence[str] | None = None,
) -> str:
    """Save ``model`` in mnaszoo's format and upload it to a Hub repository (created if needed).

    The repository gets ``model.safetensors``, ``config.json`` (as :func:`save_pretrained`
    writes them) and a model card; :func:`from_pretrained` loads it back.

    Args:
        model: a :class:`~mnaszoo.models.mnasnet.MnasNet`.
        repo_id: the Hub repository, ``"user/name"``.
        private: create the repository as private (``None``: the Hub's default).
        token: Hugging Face token with write access (default: the logged-in user's).
        commit_message: the message of the upload commit.
        labels: class names to store with the model, as in :func:`save_pretrained`.

    Returns:
        The URL of the commit.

    Raises:
        ArgumentTypeError: ``model`` is not a :class:`~mnaszoo.models.mnasnet.MnasNet`.
        huggingface_hub.errors.HfHubHTTPError: the Hub refused the repository or the upload.

    Example:
        >>> mnaszoo.push_to_hub(model, "me/mnasnet-flowers", labels=class_names)  # doctest: +SKIP
        'https://huggingface.co/me/mnasnet-flowers/commit/...'
    """
    from huggingface_hub import HfApi

    if not isinstance(model, MnasNet):
        raise ArgumentTypeError(f"push_to_hub takes a MnasNet, got {type(model).__name__}.")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        _save(model, folder, overwrite=True, labels=labels, location=repo_id)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message
        )
    return str(commit)
