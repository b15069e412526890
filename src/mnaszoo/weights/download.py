"""Downloading weight files: the only part of mnaszoo that talks to the network.

Two sources, one contract: a file is returned only after its sha256 (and size, when known) has
been checked, a failed or corrupt download never replaces a good cached file, and every failure
is a :mod:`mnaszoo.errors` exception that says what went wrong and what to do.

* Hugging Face Hub files go through ``huggingface_hub`` into its cache (``HF_HOME`` /
  ``HF_HUB_CACHE``, or ``cache_dir``). A file pinned to a commit and already cached is found
  with no request at all.
* Plain URLs are fetched with :mod:`urllib.request` into ``<cache>/urls/<basename>``, where
  ``<cache>`` is ``cache_dir`` or :func:`default_cache_dir`.

``HF_HUB_OFFLINE=1`` (or ``local_files_only=True``) switches both off: only cached files load.
``huggingface_hub`` is imported inside the functions, so ``import mnaszoo`` stays light. The
Hub path lives in :mod:`.hub_download`, the URL path in :mod:`.url_download`, the shared cache
and verification in ``_cache``.
"""

from __future__ import annotations

from ._cache import default_cache_dir, is_offline
from .hub_download import fetch_hub_file
from .url_download import fetch_url

__all__ = ["default_cache_dir", "fetch_hub_file", "fetch_url", "is_offline"]
