"""Re-check files against their pins: what ``mnaszoo verify NAME|DIR|FILE`` does.

Every file is hashed again (never trusted from a cache's layout or a blob's name) and compared
with a pin: the manifest's full sha256, a trust-on-first-use pin recorded at the first download,
the ``config.json`` written by :func:`mnaszoo.save_pretrained` (its weights, card and diagram), or
the sha256 the user gives. A file with no pin at all is reported as ``unpinned``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from ..errors import InvalidArgumentError
from ._files import file_digest
from .manifest import HubSource, UrlSource, WeightsRecord, load_manifest

__all__ = ["FileCheck", "verify"]

Status = Literal["ok", "mismatch", "missing", "unpinned", "extra"]
FAILING: frozenset[str] = frozenset({"mismatch", "missing", "unpinned"})
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass(frozen=True)
class FileCheck:
    """One file's check.

    Attributes:
        file: the file's path (or, when missing, what was looked for).
        status: ``ok``, ``mismatch``, ``missing``, ``unpinned``, or ``extra`` (a file in a
            checkpoint folder that is not part of the checkpoint: listed, not failing).
        sha256: the sha256 the file has now (``None`` when missing).
        expected: the pinned sha256 (``None`` when unpinned).
        pinned_by: where the pin comes from (``manifest``, ``trust-on-first-use``,
            ``config.json``, ``--sha256``), or ``None``.
        what: the weights id or role of the file.
    """

    file: str
    status: Status
    sha256: str | None
    expected: str | None
    pinned_by: str | None
    what: str

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready."""
        return asdict(self)


def _check(
    path: Path, expected: str | None, pinned_by: str | None, what: str, *, extra: bool = False
) -> FileCheck:
    if not path.is_file():
        return FileCheck(str(path), "missing", None, expected, pinned_by, what)
    digest = file_digest(path)[0]
    if expected is None:
        return FileCheck(str(path), "extra" if extra else "unpinned", digest, None, None, what)
    status: Status = "ok" if digest == expected else "mismatch"
    return FileCheck(str(path), status, digest, expected, pinned_by, what)


def _record_pin(record: WeightsRecord) -> tuple[str | None, str | None]:
    from .pins import pinned
    from .resolve import pin_key

    if record.sha256 is not None:
        return record.sha256, "manifest"
    pin = pinned(pin_key(record))
    return (pin, "trust-on-first-use") if pin is not None else (None, None)


def _cached_path(record: WeightsRecord, cache_dir: str | os.PathLike[str] | None) -> Path:
    """Where the record's file is in the cache (whether or not it is there)."""
    if isinstance(record.source, HubSource):
        from huggingface_hub import constants, try_to_load_from_cache

        cache = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE)
        found = try_to_load_from_cache(
            record.source.repo_id,
            record.source.filename,
            cache_dir=str(cache.expanduser()),
            revision=record.source.revision,
        )
        if isinstance(found, str):
            return Path(found)
        folder = f"models--{record.source.repo_id.replace('/', '--')}"
        return cache / folder / "snapshots" / record.source.revision / record.source.filename
    assert isinstance(record.source, UrlSource)  # manifest records are Hub or URL
    from ._cache import default_cache_dir

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "urls" / record.source.url.rsplit("/", 1)[-1]


def _verify_records(
    records: list[WeightsRecord], cache_dir: str | os.PathLike[str] | None
) -> list[FileCheck]:
    checks = []
    for record in records:
        expected, by = _record_pin(record)
        checks.append(_check(_cached_path(record, cache_dir), expected, by, record.id))
    return checks


def _known_pins() -> dict[str, tuple[str, str]]:
    """sha256 -> (weights id, pinned by), over the manifest and the local pins."""
    known: dict[str, tuple[str, str]] = {}
    for record in load_manifest().records.values():
        expected, by = _record_pin(record)
        if expected is not None and by is not None:
            known[expected] = (record.id, by)
    return known


def _verify_folder(folder: Path) -> list[FileCheck]:
    config_path = folder / "config.json"
    config: dict[str, object] = {}
    if config_path.is_file():
        try:
            loaded = json.loads(config_path.read_text("utf-8"))
            config = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            config = {}
    if config.get("library_name") == "mnaszoo":
        pins = {"model.safetensors": config.get("weights_sha256")}
        files = config.get("files")
        if isinstance(files, dict):
            pins.update(files)
        if config.get("card_sha256"):
            pins["README.md"] = config.get("card_sha256")
        checks = [
            _check(folder / name, sha if isinstance(sha, str) else None, "config.json", name)
            for name, sha in sorted(pins.items())
        ]
        listed = set(pins) | {"config.json"}
        for extra in sorted(p for p in folder.iterdir() if p.is_file() and p.name not in listed):
            checks.append(_check(extra, None, None, "not part of the checkpoint", extra=True))
        return checks
    # Any other folder (a Hub repo downloaded with local_dir=, a copy of a cache snapshot):
    # every weights file must be a file the manifest or a pin knows.
    known = _known_pins()
    checks = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in _WEIGHT_SUFFIXES:
            checks.append(_check_known(path, known))
    if not checks:
        raise InvalidArgumentError(
            f"{folder} holds no config.json written by mnaszoo and no weights file"
            f" ({', '.join(_WEIGHT_SUFFIXES)}): nothing to verify."
        )
    return checks


def _check_known(path: Path, known: dict[str, tuple[str, str]]) -> FileCheck:
    digest = file_digest(path)[0]
    if digest in known:
        weights_id, by = known[digest]
        return FileCheck(str(path), "ok", digest, digest, by, weights_id)
    return FileCheck(str(path), "unpinned", digest, None, None, "not a known weights file")


def verify(
    target: str,
    *,
    sha256: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[FileCheck]:
    """Check ``target`` (a weights id or model name, a folder, or a file) against its pins.

    Args:
        target: a weights id (``mnasnet_a1.rmsp_in1k``), a model name (its default weights),
            a timm or torchvision name, a folder (a :func:`mnaszoo.save_pretrained` folder, a
            Hub repo downloaded with ``local_dir=``) or a single file.
        sha256: the sha256 a single file must have (a pin of your own).
        cache_dir: the cache the manifest's files are in (as in :func:`mnaszoo.create`).

    Returns:
        One :class:`FileCheck` per file.

    Raises:
        InvalidArgumentError: ``target`` is neither an existing path nor a known name, or
            ``sha256`` is given for something other than a single file.
    """
    path = Path(target).expanduser()
    if sha256 is not None:
        if not path.is_file():
            raise InvalidArgumentError(f"--sha256 pins a single file, but {target} is not a file.")
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
            raise InvalidArgumentError(f"--sha256 must be 64 hex characters, got {sha256!r}.")
        return [_check(path, sha256.lower(), "--sha256", path.name)]
    if path.is_dir():
        return _verify_folder(path)
    if path.is_file():
        return [_check_known(path, _known_pins())]
    if os.sep in target or target.startswith("."):
        raise InvalidArgumentError(f"{target} does not exist.")
    return _verify_records([_record_for(target)], cache_dir)


def _record_for(name: str) -> WeightsRecord:
    from .aliases import peer_name
    from .manifest import get_weights

    peer = peer_name(name)
    if peer is not None and peer.weights is not None:
        return get_weights(peer.weights)
    return get_weights(name)
