"""The exceptions mnaszoo raises.

Every error derives from :class:`MnaszooError`, so ``except mnaszoo.MnaszooError`` catches all of
them, and also from the built-in exception a caller would expect (``ValueError`` for bad values,
``TypeError`` for values of the wrong type), so generic handlers keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ArgumentTypeError",
    "InvalidArgumentError",
    "MnaszooError",
    "SpecError",
    "UnknownModelError",
    "close_matches_hint",
]


class MnaszooError(Exception):
    """Base class of every error raised by mnaszoo."""


class InvalidArgumentError(MnaszooError, ValueError):
    """An argument has the right type but a value mnaszoo cannot accept."""


class ArgumentTypeError(MnaszooError, TypeError):
    """An argument has a type mnaszoo cannot accept."""


class SpecError(MnaszooError, ValueError):
    """A block spec, network spec or block string is malformed or inconsistent."""


class UnknownModelError(MnaszooError, ValueError):
    """A model name is not in the registry."""


def close_matches_hint(name: str, choices: Iterable[str], *, n: int = 3) -> str:
    """Return ``" Did you mean 'a' or 'b'?"`` for the closest choices, or ``""`` if none is."""
    matches = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
    if not matches:
        return ""
    quoted = [repr(m) for m in matches]
    if len(quoted) == 1:
        return f" Did you mean {quoted[0]}?"
    return f" Did you mean {', '.join(quoted[:-1])} or {quoted[-1]}?"
