"""Trust-on-first-use pins: the full sha256 of a file whose publisher states none.

For manifest entries without a published full sha256 (a torchvision file names only a prefix;
some Hub files' hashes are stated nowhere public), the first download that passes the checks
that do exist (the prefix, the Hub's Git-LFS sha256) records the file's full sha256 in
``<mnaszoo cache>/pins.json``. Every later load and ``mnaszoo verify`` check the file against
that pin, whatever the shape of the cache (symlinks or not, a ``local_dir`` copy): a file that
changes afterwards is refused. The manifest and ``verify`` say which entries rest on such a pin.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .._io import write_text_atomic
from ..errors import IntegrityError
from ._cache import default_cache_dir

__all__ = ["PINS_NAME", "check_or_pin", "pinned", "pins_path"]

logger = logging.getLogger(__name__)

PINS_NAME = "pins.json"


def pins_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the pins are kept: ``pins.json`` in mnaszoo's cache (``$MNASZOO_CACHE``)."""
    return (
        Path(cache_dir).expanduser() / PINS_NAME if cache_dir else default_cache_dir() / PINS_NAME
    )


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        logger.warning("Ignoring unreadable pins file %s (%s).", path, error)
        return {}
    pins = data.get("pins") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in pins.items()} if isinstance(pins, dict) else {}


def pinned(key: str, cache_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The pinned sha256 of ``key`` (a weights id and its source), or ``None``."""
    return _read(pins_path(cache_dir)).get(key)


def check_or_pin(
    key: str, sha256: str, what: str, cache_dir: str | os.PathLike[str] | None = None
) -> bool:
    """Check ``sha256`` against the pin of ``key``, or record it when there is none.

    Returns:
        ``True`` when the pin was recorded now (first use), ``False`` when it matched.

    Raises:
        IntegrityError: the file differs from the one first downloaded.
    """
    path = pins_path(cache_dir)
    pins = _read(path)
    known = pins.get(key)
    if known is not None:
        if known != sha256:
            raise IntegrityError(
                f"{what} has sha256 {sha256}, but the copy first downloaded here had {known}"
                f" (pinned in {path}): the published file changed or this copy is damaged."
                " Delete the cached file to download it again; delete the pin only if you"
                " trust the new file."
            )
        return False
    pins[key] = sha256
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"pins": pins}, indent=2, sort_keys=True) + "\n")
    except OSError as error:  # the file itself passed its checks; only the pin is lost
        logger.warning("Could not record the sha256 pin of %s in %s (%s).", what, path, error)
        return False
    logger.info("Pinned %s at sha256 %s (trust on first use, in %s).", what, sha256, path)
    return True
