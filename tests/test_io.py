"""mnaszoo._io: the one atomic-write helper export, persistence and search use."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnaszoo._io import atomic_path, write_text_atomic
from mnaszoo.errors import InvalidArgumentError


def test_failed_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old", encoding="utf-8")

    def interrupted_write() -> None:
        with atomic_path(target) as temp:
            temp.write_text("half", encoding="utf-8")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted_write()
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_text_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("a much longer old content", encoding="utf-8")
    write_text_atomic(target, "néw\n")
    assert target.read_text(encoding="utf-8") == "néw\n"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"directory .*missing does not exist"):
        write_text_atomic(tmp_path / "missing" / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []
