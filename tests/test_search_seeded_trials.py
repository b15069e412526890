"""Same seed, same trials: two small searches (digits, and a generated image folder) against the
trials recorded before the search package was restructured (tests/fixtures/search_trials,
written by its record.py). Latency comes from the recorded frozen tables, so it is a lookup and
the comparison is exact. Accuracy comes from training in floating point, whose rounding depends
on the CPU's torch kernels (AVX2, AVX-512), so the trials are recorded per kernel set; on a
machine whose kernels have no recording the tests skip and say how to record one."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "search_trials"


def _recorder() -> Any:
    spec = importlib.util.spec_from_file_location("record_search_trials", FIXTURES / "record.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected(name: str) -> list[dict[str, Any]]:
    import torch

    found: list[dict[str, Any]] | None = _recorder().recorded_trials(name)
    if found is None:
        pytest.skip(
            f"no trials recorded for torch's {torch.backends.cpu.get_cpu_capability()} kernels;"
            f" record them on this machine: {_recorder().RECORD_COMMAND}"
        )
    return found


def _compare(found: list[dict[str, Any]], name: str) -> None:
    expected = _expected(name)
    assert [t["tokens"] for t in found] == [t["tokens"] for t in expected]
    assert [t["spec"] for t in found] == [t["spec"] for t in expected]
    for got, want in zip(found, expected, strict=True):
        assert got["latency_ms"] == pytest.approx(want["latency_ms"], rel=1e-12)
        assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-12)
        assert got["reward"] == pytest.approx(want["reward"], rel=1e-9)


def _table(tmp_path: Path, name: str) -> Path:
    table = tmp_path / f"{name}_table.json"
    shutil.copy(FIXTURES / f"{name}_table.json", table)
    return table


@pytest.mark.slow
def test_digits_search_gives_the_recorded_trials(tmp_path: Path, one_thread: None) -> None:
    pytest.importorskip("sklearn")
    _expected("digits")  # skips here, before searching, where none is recorded
    from mnaszoo.search import search_digits

    record = _recorder()
    out = tmp_path / "run"
    search_digits(out, **record.DIGITS, table_path=_table(tmp_path, "digits"))
    _compare(record.trials(out), "digits")


@pytest.mark.slow
def test_image_folder_search_gives_the_recorded_trials(tmp_path: Path, one_thread: None) -> None:
    _expected("images")
    from mnaszoo.search import search_images

    record = _recorder()
    folder = record.make_folder(tmp_path / "data")
    out = tmp_path / "run"
    search_images(out, folder, **record.IMAGES, table_path=_table(tmp_path, "images"))
    _compare(record.trials(out), "images")
