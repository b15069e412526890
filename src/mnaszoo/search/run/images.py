"""Platform-aware search on your own image folder (and, with a kit's table, your own device).

:func:`search_images` is :func:`~mnaszoo.search.run.digits.search_digits` with the proxy task
decoded from a class-per-folder dataset
(:func:`~mnaszoo.search.proxy.image_data.load_image_folder_proxy`)
and, by default, the in-context latency predictor (:mod:`.context_table`); a latency table
measured on the target device by a latency kit (:mod:`.kit`) makes it predict that device. The
output folder holds the same files as a digits search; ``finalize`` then trains the best
architectures fully (:func:`~mnaszoo.search.proxy.finalize.finalize_search`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from ..config import SearchConfig
from ..proxy.finalize import FinalModel
from .launch import launch
from .runner import SearchResult

__all__ = ["search_images"]


def search_images(
    output: str | os.PathLike[str],
    data: str | os.PathLike[str],
    config: SearchConfig | None = None,
    **settings: Any,
) -> tuple[SearchResult, list[FinalModel]]:
    """Search the default space on an image folder; write the results to ``output``.

    Args:
        output: the output folder (created; rerunning the same call continues the search).
        data: the training images, one subfolder per class (as ``mnaszoo evaluate`` reads).
        config: the search's settings (:class:`~mnaszoo.search.config.SearchConfig`); its
            ``data.folder`` is replaced by ``data``. ``None``: the defaults.
        **settings: a shorthand for fields of ``config``
            (:data:`~mnaszoo.search.config.KEYWORDS`: ``budget=``, ``val=``, ``proxy_epochs=``,
            ``image_size=``, ``table_path=``, ``finalize=``, ``workers=``...).

    Returns:
        ``(result, finals)``: the search's :class:`~mnaszoo.search.run.runner.SearchResult` and the
        :class:`~mnaszoo.search.proxy.finalize.FinalModel` of every finalized architecture.

    Raises:
        InvalidArgumentError: bad folders or settings (see
            :func:`~mnaszoo.search.proxy.image_data.load_image_folder_proxy`), refused before any
            latency is measured.
        InvalidImageError: ``corrupt="error"`` and unreadable images.
        SearchStateError: ``output`` holds a search with other settings (the message names
            them).
    """
    base = config or SearchConfig()
    base = dataclasses.replace(base, data=dataclasses.replace(base.data, folder=os.fspath(data)))
    return launch(output, base.replace(**settings))
