"""torch.hub entry points: ``torch.hub.load("mnaszoo/mnaszoo", "mnasnet_a1", pretrained=True)``.

Every registered model is an entry point, and so are timm's and torchvision's names for the same
models (``semnasnet_100``, ``mnasnet1_0``, ...). Each takes ``pretrained`` (``True``, ``False``
or a weights tag) and any other keyword argument of ``mnaszoo.create``.
"""

from __future__ import annotations

import os
import sys
from typing import Any as _Any

dependencies = ["torch", "safetensors", "huggingface_hub", "numpy", "PIL"]

# A checkout (or torch.hub's download of it) keeps the package under src/: load that copy.
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if os.path.isdir(os.path.join(_SRC, "mnaszoo")) and _SRC not in sys.path:
    sys.path.insert(0, _SRC)

import mnaszoo  # noqa: E402
from mnaszoo.models.registry import MODELS  # noqa: E402
from mnaszoo.weights.aliases import PEER_NAMES  # noqa: E402


def _entry_point(name: str, what: str) -> _Any:
    def load(pretrained: bool | str = False, **kwargs: _Any) -> _Any:
        return mnaszoo.create(name, pretrained=pretrained, **kwargs)

    load.__name__ = load.__qualname__ = name
    load.__doc__ = (
        f"{what}.\n\n"
        "Args:\n"
        "    pretrained: True for the default weights, a weights tag, or False.\n"
        "    **kwargs: any other argument of mnaszoo.create (num_classes, features_only, ...).\n"
    )
    return load


for _name, _entry in MODELS.items():
    globals()[_name] = _entry_point(_name, _entry.description)
for _name, _peer in PEER_NAMES.items():
    if _name.isidentifier() and not _peer.names_weights and _name not in MODELS:
        globals()[_name] = _entry_point(
            _name, f"{_peer.peer}'s {_name}: mnaszoo's {_peer.model}, {_peer.peer}'s weights"
        )
del _name, _entry, _peer
