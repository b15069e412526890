"""What a weights file is, judged by its bytes: sha256 digests, the hex patterns that pin files,
and recognising files that are not weights at all (a Git-LFS pointer, an HTML page)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

__all__ = ["REVISION", "SHA256", "SHA256_PREFIX", "SNIFF_BYTES", "file_digest", "sniff"]

REVISION = re.compile(r"[0-9a-f]{40}")
"""A full Git commit hash (use ``fullmatch``)."""
SHA256 = re.compile(r"[0-9a-f]{64}")
"""A sha256 hex digest (use ``fullmatch``)."""
SHA256_PREFIX = re.compile(r"[0-9a-f]{8,64}")
"""The leading hex characters of a sha256 digest, as torch.hub file names carry (``fullmatch``)."""
SNIFF_BYTES = 4096
"""How many leading bytes :func:`sniff` needs."""

_CHUNK = 1 << 20
_LFS_MAGIC = b"version https://git-lfs"
_HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml")


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 hex digest and the size in bytes of ``path``, read in 1 MiB chunks."""
    digest, total = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            total += len(chunk)
    return digest.hexdigest(), total


def sniff(head: bytes) -> Literal["lfs-pointer", "html"] | None:
    """What a file whose first bytes are ``head`` is, when it is clearly not weights."""
    text = head.lstrip().lower()
    if text.startswith(_LFS_MAGIC):
        return "lfs-pointer"
    if text.startswith(_HTML_STARTS):
        return "html"
    return None
