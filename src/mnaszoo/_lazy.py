"""Lazy public names for a package (PEP 562): a name's module is imported on first access.

``import mnaszoo`` and its sub-packages stay light this way: the spec tables, the registry and the
counters need no torch, and the modules that import torch load only when one of their names is
used. Each package lists its public names once, as ``{module: (name, ...)}``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` from one table; sets its ``__all__``.

    ``exports`` maps a module (relative to ``package``, e.g. ``".specs"``) to the public names it
    defines. A resolved name is cached in the package's namespace, so each is looked up once.
    ``__all__`` is set here rather than assigned in the package so that type checkers take the
    package's public names from its ``TYPE_CHECKING`` imports (``from package import *`` then
    keeps their types).
    """
    homes = {name: module for module, names in exports.items() for name in names}
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module hook's required name)
        module = homes.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(namespace) | set(homes))

    namespace["__all__"] = sorted(homes)
    return __getattr__, __dir__
