"""Reading the search's JSON files (state, settings, tables), with errors that say what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import SearchStateError

__all__ = ["read_json", "read_json_object"]


def read_json(path: Path, what: str, hint: str = "Delete it to start afresh.") -> Any:
    """The JSON value in ``path``; ``what`` names the file in errors, ``hint`` says what to do.

    Raises:
        SearchStateError: the file cannot be read or is not JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SearchStateError(
            f"Cannot read {what} {str(path)!r}: {error}. {hint}".rstrip()
        ) from error


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """Like :func:`read_json`, and the value must be a JSON object."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise SearchStateError(f"{what.capitalize()} {str(path)!r} is not a JSON object.")
    return data
