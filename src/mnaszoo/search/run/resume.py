"""A search's output folder records its :class:`~mnaszoo.search.config.SearchConfig`
(``search_config.json``); continuing it with other settings is refused, naming each field that
differs."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import SearchStateError
from ..config import _SECTIONS, CONFIG_FILE, KEYWORDS, SearchConfig

__all__ = ["check_resume", "record_config"]


# What a search may resume with changed: where the trials run (it changes nothing in them), how
# many trials there are in all, and what happens around the trials (calibrating a new table,
# validating, finalizing; a table file that moved).
_PLACEMENT = {
    ("execution", "workers"),
    ("execution", "ray_address"),
    ("execution", "progress"),
    ("controller", "budget"),
    ("latency", "table"),
    ("latency", "calibrate"),
    ("latency", "validate"),
    ("proxy", "finalize"),
    ("proxy", "finalize_epochs"),
}


def check_resume(output: Path, config: SearchConfig) -> None:
    """Refuse to continue the search in ``output`` with a config other than the recorded one,
    naming each field that differs.

    Raises:
        SearchStateError: the recorded config differs (placement aside).
    """
    path = output / CONFIG_FILE
    if path.exists():
        saved = SearchConfig.load(output).to_dict()
        now = config.to_dict()
        keyword = {place: word for word, place in reversed(KEYWORDS.items())}
        differ = [
            f"{section}.{name} ({keyword.get((section, name), name)}=): saved"
            f" {saved[section][name]!r}, now {now[section][name]!r}"
            for section in _SECTIONS
            for name in now[section]
            if (section, name) not in _PLACEMENT and saved[section][name] != now[section][name]
        ]
        if differ:
            raise SearchStateError(
                f"{output} holds a search with other settings ({'; '.join(differ)}). Rerun with"
                " the saved settings to continue it (SearchConfig.load reads them), or choose"
                " another output folder."
            )


def record_config(output: Path, config: SearchConfig) -> None:
    """Write ``config`` into ``output`` (atomically) for :func:`check_resume` and
    :meth:`SearchConfig.load`."""
    from ..._io import write_text_atomic

    write_text_atomic(output / CONFIG_FILE, json.dumps(config.to_dict(), indent=1) + "\n")
