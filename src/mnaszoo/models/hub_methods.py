"""Hugging Face style methods on :class:`~mnaszoo.models.mnasnet.MnasNet`:
``model.save_pretrained(dir)``, ``MnasNet.from_pretrained(repo_or_dir)``,
``model.push_to_hub(repo)``, as huggingface_hub's ``ModelHubMixin`` names them.

They are the module-level functions :func:`mnaszoo.save_pretrained`,
:func:`mnaszoo.from_pretrained` and :func:`mnaszoo.push_to_hub`, which live above ``models``
(they read and write files); the methods look them up when called, so this package keeps no
import of the layers above it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

_M = TypeVar("_M", bound="HubMethods")


def _api(module: str) -> Any:
    # Resolved at call time: models/ sits below the file-handling layers these methods call.
    return importlib.import_module(module)


class HubMethods:
    """``save_pretrained``, ``from_pretrained`` and ``push_to_hub`` as methods."""

    def save_pretrained(
        self,
        save_directory: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        labels: Sequence[str] | None = None,
        push_to_hub: bool = False,
        repo_id: str | None = None,
        **push_kwargs: Any,
    ) -> Path:
        """Save as :func:`mnaszoo.save_pretrained` does (weights, config, model card); with
        ``push_to_hub=True`` also upload the folder to ``repo_id`` (default: the folder's name),
        as ``ModelHubMixin.save_pretrained`` does.
        """
        path: Path = _api("mnaszoo.weights.hub").save_pretrained(
            self, save_directory, overwrite=overwrite, labels=labels
        )
        if push_to_hub:
            self.push_to_hub(repo_id or Path(save_directory).name, labels=labels, **push_kwargs)
        return path

    @classmethod
    def from_pretrained(
        cls: type[_M], pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> _M:
        """Load as :func:`mnaszoo.from_pretrained` does (a folder, a mnaszoo Hub repo, or
        ``"hf-hub:OWNER/REPO[@REVISION]"`` in any MnasNet layout)."""
        model: _M = _api("mnaszoo.factory").from_pretrained(pretrained_model_name_or_path, **kwargs)
        return model

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload as :func:`mnaszoo.push_to_hub` does; returns the commit URL."""
        url: str = _api("mnaszoo.weights.hub").push_to_hub(self, repo_id, **kwargs)
        return url
