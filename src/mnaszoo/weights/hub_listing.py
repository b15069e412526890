"""The file list of a Hub repository at a revision, with the sha256 the Hub states per file.

The sha256 comes from the Hub's Git-LFS metadata (``model_info(files_metadata=True)``), never
from the local cache's layout, so a check against it works on any cache.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import IncompatibleWeightsError
from ._deadline import Deadline, check_resolvable
from .hub_download import with_retries

__all__ = ["repo_listing"]

CONFIG_NAME = "config.json"


def repo_listing(
    repo_id: str, revision: str, token: str | bool | None, cache: Path, deadline: Deadline
) -> tuple[str, dict[str, str | None]]:
    """The commit ``revision`` names and the repository's files there, each with the sha256 the
    Hub states for it (Git-LFS files) or ``None`` (small files kept in git)."""
    from huggingface_hub import HfApi, hf_hub_url

    what = f"the file list of {repo_id}@{revision}"
    check_resolvable(hf_hub_url(repo_id, CONFIG_NAME, revision=revision), deadline, what)
    info = with_retries(
        lambda: HfApi(token=token).model_info(repo_id, revision=revision, files_metadata=True),
        what,
        cache,
        deadline,
    )
    if not info.sha:
        raise IncompatibleWeightsError(f"The Hub sent no commit for {repo_id}@{revision}.")
    files: dict[str, str | None] = {}
    for sibling in info.siblings or []:
        lfs = getattr(sibling, "lfs", None)
        files[sibling.rfilename] = getattr(lfs, "sha256", None) if lfs is not None else None
    return info.sha, files
