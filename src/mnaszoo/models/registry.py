"""The read-only registry of named models, built once from the spec tables."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from types import MappingProxyType

from ..errors import ArgumentTypeError, UnknownModelError, close_matches_hint
from .architectures import MNASNET_A1, MNASNET_B1, MNASNET_D1, MNASNET_D1_320, MNASNET_SMALL
from .specs import NetworkSpec

__all__ = ["MODELS", "ModelEntry", "get_entry", "list_models"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: a base spec at a fixed width multiplier."""

    name: str
    spec: NetworkSpec
    width_mult: float

    @property
    def description(self) -> str:
        """One line for listings."""
        suffix = "" if self.width_mult == 1.0 else f", width x{self.width_mult:g}"
        return f"{self.spec.description}{suffix}"


def _entries() -> dict[str, ModelEntry]:
    table: list[tuple[str, NetworkSpec, float]] = [
        ("mnasnet_a1", MNASNET_A1, 1.0),
        ("mnasnet_a1_035", MNASNET_A1, 0.35),
        ("mnasnet_a1_050", MNASNET_A1, 0.5),
        ("mnasnet_a1_075", MNASNET_A1, 0.75),
        ("mnasnet_a1_140", MNASNET_A1, 1.4),
        ("mnasnet_b1", MNASNET_B1, 1.0),
        ("mnasnet_b1_050", MNASNET_B1, 0.5),
        ("mnasnet_b1_075", MNASNET_B1, 0.75),
        ("mnasnet_b1_130", MNASNET_B1, 1.3),
        ("mnasnet_b1_140", MNASNET_B1, 1.4),
        ("mnasnet_small", MNASNET_SMALL, 1.0),
        ("mnasnet_d1", MNASNET_D1, 1.0),
        ("mnasnet_d1_320", MNASNET_D1_320, 1.0),
    ]
    entries: dict[str, ModelEntry] = {}
    for name, spec, width in table:
        if name in entries:  # a programming error in the table above, caught by the tests
            raise RuntimeError(f"Duplicate model name {name!r} in the registry table.")
        entries[name] = ModelEntry(name, spec, width)
    return entries


MODELS = MappingProxyType(_entries())
"""Every registered model by name (read-only)."""


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, sorted, optionally filtered by a shell-style pattern.

    Args:
        pattern: e.g. ``"mnasnet_a1*"``; ``None`` lists every model.

    Returns:
        The matching names (an empty list if none match).

    Raises:
        ArgumentTypeError: ``pattern`` is not a string.

    Example:
        >>> list_models("mnasnet_b1*")
        ['mnasnet_b1', 'mnasnet_b1_050', 'mnasnet_b1_075', 'mnasnet_b1_130', 'mnasnet_b1_140']
    """
    if pattern is not None and not isinstance(pattern, str):
        raise ArgumentTypeError(f"pattern must be a str or None, got {type(pattern).__name__}.")
    names = sorted(MODELS)
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``.

    Raises:
        UnknownModelError: ``name`` is not registered (the message suggests close matches).
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"A model name must be a str, got {type(name).__name__} {name!r}.")
    entry = MODELS.get(name)
    if entry is None:
        hint = close_matches_hint(name, MODELS)
        if "." in name:
            hint += " A model name has no '.<tag>'; pass weights tags separately."
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} Available models: {', '.join(sorted(MODELS))}"
            " (mnaszoo.list_models() lists them)."
        )
    return entry
