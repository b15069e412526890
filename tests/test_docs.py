"""The docs show what the code computes."""

from __future__ import annotations

from pathlib import Path

import pytest

import mnaszoo

DOCS = Path(__file__).parents[1] / "docs"


@pytest.mark.parametrize("name", sorted(mnaszoo.ARCHITECTURES))
def test_architecture_tables_are_current(name: str) -> None:
    assert str(mnaszoo.describe(name)) in (DOCS / "architectures.md").read_text()
