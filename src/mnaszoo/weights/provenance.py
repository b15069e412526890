"""Where a model's weights came from: source, revision, sha256 of every input file, conversion.

The record travels with a model as ``model.provenance`` (a JSON-ready dict), is written into the
``config.json`` and the model card of :func:`mnaszoo.save_pretrained`, and is what
``mnaszoo verify`` checks a folder against.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..models.config import ModelConfig
from ._files import file_digest
from .manifest import HubSource, LocalSource, UrlSource, WeightsRecord

__all__ = ["conversion_note", "file_provenance", "hub_provenance"]

_CONVERSIONS = {
    "mnaszoo": "none: the file is in mnaszoo's layout",
    "timm": "timm's state-dict keys renamed to mnaszoo's, one to one; no tensor changed",
    "torchvision": "torchvision's state-dict keys renamed to mnaszoo's, one to one; no tensor"
    " changed",
}


def conversion_note(layout: str, config: ModelConfig | None = None) -> str:
    """One line saying what was done to a checkpoint of ``layout`` to load it."""
    note = _CONVERSIONS.get(layout, f"from the {layout} layout")
    if config is not None and config.spec.name.endswith("_torchvision_v1"):
        note += f" (torchvision version-1 stem: built as {config.spec.name})"
    return note


def _version() -> str:
    from .._version import __version__

    return __version__


def file_provenance(
    record: WeightsRecord | None,
    path: str | os.PathLike[str] | None,
    layout: str,
    config: ModelConfig | None = None,
) -> dict[str, Any]:
    """The provenance of weights loaded from a manifest record, or from a local file.

    The sha256 is that of the file actually read (for a manifest record, the file that passed
    verification).
    """
    files: dict[str, str] = {}
    if path is not None and Path(path).is_file():
        name = Path(path).name
        if record is not None and isinstance(record.source, HubSource):
            name = record.source.filename
        elif record is not None and isinstance(record.source, UrlSource):
            name = record.source.url.rsplit("/", 1)[-1]
        files[name] = file_digest(Path(path))[0]
    info: dict[str, Any] = {
        "source": None,
        "repo_id": None,
        "revision": None,
        "url": None,
        "weights_id": None if record is None else record.id,
        "files": files,
        "layout": layout,
        "conversion": conversion_note(layout, config),
        "mnaszoo_version": _version(),
    }
    if record is None:
        info["source"] = "local file"
    elif isinstance(record.source, HubSource):
        info.update(
            source="huggingface-hub",
            repo_id=record.source.repo_id,
            revision=record.source.revision,
        )
    elif isinstance(record.source, UrlSource):
        info.update(source="url", url=record.source.url)
    elif isinstance(record.source, LocalSource):
        info.update(source="local", url=record.source.location)
    return info


def hub_provenance(
    repo_id: str, revision: str, files: dict[str, str], layout: str, config: ModelConfig
) -> dict[str, Any]:
    """The provenance of weights loaded from any Hub repository (``hf-hub:`` names)."""
    return {
        "source": "huggingface-hub",
        "repo_id": repo_id,
        "revision": revision,
        "url": None,
        "weights_id": None,
        "files": dict(files),
        "layout": layout,
        "conversion": conversion_note(layout, config),
        "mnaszoo_version": _version(),
    }
