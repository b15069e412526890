"""Griffe extension: adapt mnaszoo's docstrings to mkdocstrings' Markdown rendering.

mnaszoo's docstrings use Sphinx roles (``:func:`mnaszoo.create```,
``:class:`~mnaszoo.models.mnasnet.MnasNet```) so that they read well in ``help()`` and in the
source.
This extension (loaded by ``mkdocs.yml``) rewrites each role into an optional mkdocs-autorefs
reference: a link where the target is rendered somewhere in the site, plain code where it is not
(a private helper, the standard library). It also reads an ``Example:`` section as Google
style's ``Examples:``, so that ``>>>`` lines render as code. The source files are not changed.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([\w.]+)`")
_EXAMPLE = re.compile(r"^Example:[ \t]*$", re.MULTILINE)


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` into ``<autoref identifier=... optional>`` markup."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "mnaszoo":
            return
        self._rewrite_tree(pkg, pkg)

    def _rewrite_tree(self, obj: griffe.Object, pkg: griffe.Module) -> None:
        if obj.docstring is not None:
            value = _ROLE.sub(lambda m: _reference(m, obj, pkg), obj.docstring.value)
            obj.docstring.value = _EXAMPLE.sub("Examples:", value)
        for member in obj.members.values():
            if not member.is_alias and isinstance(member, griffe.Object):
                self._rewrite_tree(member, pkg)


def _exists(path: str, pkg: griffe.Module) -> bool:
    if path == pkg.path:
        return True
    if not path.startswith(f"{pkg.path}."):
        return False
    try:
        pkg[path[len(pkg.path) + 1 :]]
    except Exception:  # KeyError, or an alias that does not resolve
        return False
    return True


def _reference(match: re.Match[str], obj: griffe.Object, pkg: griffe.Module) -> str:
    short, target = match.group(1) == "~", match.group(2)
    text = target.rsplit(".", 1)[-1] if short else target
    candidates = [target]
    scope: griffe.Object | None = obj
    while scope is not None:  # relative names: the object's own scope, then its parents'
        candidates.append(f"{scope.path}.{target}")
        scope = scope.parent
    path = next((c for c in candidates if _exists(c, pkg)), None)
    code = f"<code>{html.escape(text)}</code>"
    if path is None:
        return code
    return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'


class LazyExports(griffe.Extension):
    """Show griffe the public names that ``mnaszoo`` and its sub-packages export lazily.

    The sub-packages list their names in ``TYPE_CHECKING`` imports plus a ``lazy_exports`` table
    (which sets ``__all__`` at run time), and ``mnaszoo`` re-exports them with ``import *``
    under ``TYPE_CHECKING``; griffe, reading the source statically, sees no ``__all__`` and so
    no top-level ``mnaszoo.create``. This adds each name of the runtime ``__all__`` as an alias
    of its home, where griffe does not already have it.
    """

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "mnaszoo":
            return
        import importlib

        for part in ("models", "weights", "data", "tasks", "deploy"):
            module = pkg.members[part]
            names = importlib.import_module(f"mnaszoo.{part}").__all__
            for name in names:
                member = module.members.get(name)
                if member is None:
                    continue
                target = member.target_path if member.is_alias else member.path
                if name not in pkg.members:
                    pkg.set_member(name, griffe.Alias(name, target, parent=pkg))
