"""Drop dangling entries from TorchScript's builtin-function table before scripting.

Why this exists (a torch bug, seen with torch 2.13): ``torch.jit._builtins`` maps ``id(fn)`` to
a TorchScript builtin for every op it knows. When a library adds an overload to an op whose
Python packet already exists, ``torch._ops._refresh_packet`` swaps in a new op object and the old
one is freed, but its id stays in the table. ``torch.compile`` does this for the
``quantized_decomposed`` ops (it imports ``torch.ao.quantization.fx._decomposed``), so any
process that has called it carries such entries. CPython reuses the freed address; when the
reused object is a module attribute (for instance ``Conv2d._reversed_padding_repeated_twice``,
a list), ``torch.jit.script`` takes it for that builtin and fails with "builtin cannot be used
as a value" -- at random, depending on the allocator. Removing the dangling entries makes
scripting deterministic again.
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["drop_dangling_builtin_ids"]


def _current_op_ids() -> dict[str, int]:
    """Qualified name -> id of the op object each existing packet holds now."""
    import torch
    from torch import _ops

    current: dict[str, int] = {}
    for namespace in list(vars(torch.ops).values()):
        if not isinstance(namespace, _ops._OpNamespace):
            continue
        for packet in list(vars(namespace).values()):
            if isinstance(packet, _ops.OpOverloadPacket):
                current[packet._qualified_op_name] = id(packet._op)
    return current


def _live_objects(ids: set[int]) -> dict[int, Any]:
    """The live, GC-tracked objects among ``ids`` (functions, builtins, lists all are)."""
    return {id(obj): obj for obj in gc.get_objects() if id(obj) in ids}


def _is_registered_function(obj: object, qualified_name: str) -> bool:
    """Whether ``obj`` looks like the function torch registered as ``qualified_name``."""
    op_name = qualified_name.split("::", 1)[-1]
    return callable(obj) and op_name in getattr(obj, "__name__", "")


def drop_dangling_builtin_ids() -> int:
    """Remove table entries left behind by refreshed op packets; return how many went.

    An entry is dangling when its name is an op packet's, its key is not that packet's current
    op, torch's own list of builtins does not hold it, and the object now at that address is not
    a live function named after the op (torch registers some Python functions under an op's
    name, such as ``torch.jit.is_scripting`` for ``aten::is_scripting``: those stay). Does
    nothing, and returns 0, on a torch without these internals.
    """
    try:
        from torch.jit import _builtins
    except ImportError:  # pragma: no cover - torch without TorchScript
        return 0
    table = getattr(_builtins, "_builtin_table", None)
    held_ops = getattr(_builtins, "_builtin_ops", None)
    if not isinstance(table, dict) or not isinstance(held_ops, list):
        return 0
    try:
        current = _current_op_ids()
    except (ImportError, AttributeError):  # internals renamed in a later torch
        return 0
    held = {id(entry[0]) for entry in held_ops}
    candidates = {
        key
        for key, name in list(table.items())
        if name in current and key != current[name] and key not in held
    }
    if not candidates:
        return 0
    live = _live_objects(candidates)
    dangling = [key for key in candidates if not _is_registered_function(live.get(key), table[key])]
    for key in dangling:
        table.pop(key, None)
    return len(dangling)
