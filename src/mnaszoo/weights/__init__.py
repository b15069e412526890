"""Pretrained weights: the manifest, verified downloads, checkpoint reading, layout conversion,
strict loading and mnaszoo's own checkpoint directories (:func:`save_pretrained`,
:func:`push_to_hub`; :func:`mnaszoo.from_pretrained` loads them).

A manifest record is fetched (:mod:`.download`), verified by sha256, read (:mod:`.checkpoint`),
converted from the publisher"s layout (:mod:`.convert`) and loaded strictly (:mod:`.loading`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .hub import (
        push_to_hub as push_to_hub,
        save_pretrained as save_pretrained,
    )
    from .manifest import (
        Preprocessing as Preprocessing,
        WeightsRecord as WeightsRecord,
        get_weights as get_weights,
        list_weights as list_weights,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".hub": (
            "push_to_hub",
            "save_pretrained",
        ),
        ".manifest": (
            "Preprocessing",
            "WeightsRecord",
            "get_weights",
            "list_weights",
        ),
    },
)
