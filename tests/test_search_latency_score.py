"""The latency predictor's score: within ±x%, MAPE, Spearman, the Markdown table.

Checked against scipy where installed and against hand-computed values; nothing is timed."""

from __future__ import annotations

import errno
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from mnaszoo.errors import InvalidArgumentError
from mnaszoo.search.latency.score import (
    mape,
    markdown_table,
    score_predictions,
    within_fraction,
)

MEASURED = [10.0, 20.0, 40.0, 80.0, 100.0]
PREDICTED = [10.4, 21.5, 35.0, 80.0, 111.0]
# Relative errors: 4%, 7.5%, 12.5%, 0%, 11%  (hand-computed).


def test_within_fractions_by_hand() -> None:
    assert within_fraction(PREDICTED, MEASURED, 0.05) == pytest.approx(2 / 5)
    assert within_fraction(PREDICTED, MEASURED, 0.10) == pytest.approx(3 / 5)
    assert within_fraction(PREDICTED, MEASURED, 0.12) == pytest.approx(4 / 5)
    assert within_fraction(PREDICTED, MEASURED, 0.125) == 1.0  # 12.5% exactly: within


def test_an_error_exactly_at_the_tolerance_is_within() -> None:
    assert within_fraction([110.0, 90.0], [100.0, 100.0], 0.1) == 1.0
    assert within_fraction([110.001], [100.0], 0.1) == 0.0


def test_mape_by_hand() -> None:
    expected = (0.04 + 0.075 + 0.125 + 0.0 + 0.11) / 5
    assert mape(PREDICTED, MEASURED) == pytest.approx(expected)


def test_score_by_hand() -> None:
    score = score_predictions(PREDICTED, MEASURED)
    assert score["networks"] == 5
    assert score["worst"] == pytest.approx(0.125)
    # Ranks of PREDICTED: 1,2,3,4,5; of MEASURED: 1,2,3,4,5: a perfect order.
    assert score["spearman"] == pytest.approx(1.0)
    swapped = score_predictions([1.0, 3.0, 2.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    # d = (0, 1, -1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert swapped["spearman"] == pytest.approx(0.8)


def test_constant_measurements_have_no_spearman() -> None:
    assert score_predictions([1.0, 2.0], [5.0, 5.0])["spearman"] is None
    assert score_predictions([1.0], [1.0])["spearman"] is None


@pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="scipy not installed")
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30)), min_size=3, max_size=25).filter(
        lambda xs: len({a for a, _ in xs}) > 1 and len({b for _, b in xs}) > 1
    )
)
def test_spearman_matches_scipy_with_ties(pairs: list[tuple[int, int]]) -> None:
    from scipy.stats import spearmanr

    predicted = [float(a) for a, _ in pairs]
    measured = [float(b) for _, b in pairs]
    expected = float(spearmanr(predicted, measured).statistic)
    assert score_predictions(predicted, measured)["spearman"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("predicted", "measured", "match"),
    [
        ([1.0], [1.0, 2.0], "1 predictions for 2"),
        ([], [], "at least one"),
        ([1.0], [0.0], "positive"),
        ([math.nan], [1.0], "finite"),
    ],
)
def test_bad_input_is_refused_by_name(
    predicted: list[float], measured: list[float], match: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        score_predictions(predicted, measured)


def test_markdown_table() -> None:
    row = {
        "backend": "executorch",
        "set": "space",
        "calibration_s": 12.5,
        **score_predictions(PREDICTED, MEASURED),
    }
    text = markdown_table([row])
    lines = text.splitlines()
    assert lines[0].startswith("| backend | networks | set | within ±5% | within ±10% | MAPE")
    assert lines[2] == (
        "| executorch | 5 | space | 40.0% | 60.0% | 7.0% | 1.000 | 12.5% | 12.500 |"
    )


def test_benchmark_sets_are_held_out_and_outside() -> None:
    """The benchmark's held-out networks exclude the calibration ones; its outside set is 20."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        import latency_predictor_score as bench
    finally:
        sys.path.pop(0)
    from mnaszoo.search.latency.open import calibration_networks, spec_key
    from mnaszoo.search.space import SearchSpace

    calibration = calibration_networks(SearchSpace(), 32)
    plans = bench.held_out(100, calibration)
    keys = {spec_key(p.spec) for p in plans}
    assert len(keys) == 100 and not keys & {spec_key(p.spec) for p in calibration}
    far = bench.outside(quick=False)
    assert len(far) == 20
    assert {p.width_mult for p, _ in far} >= {0.35, 1.4}
    assert {s for _, s in far} >= {160, 320}


def _bench():  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        import latency_predictor_score as bench
    finally:
        sys.path.pop(0)
    return bench


@pytest.mark.parametrize(
    ("floors", "expected"),
    [
        ({"onnxruntime": 0.011, "executorch": 0.02}, "Quiet run"),  # 2% exactly is still quiet
        ({"onnxruntime": 0.011, "executorch": 0.036}, "NOT a quiet run"),
        ({}, "not measured"),
    ],
)
def test_benchmark_says_when_its_run_was_not_quiet(floors: dict[str, float], expected: str) -> None:
    """The noise floor (the same networks timed twice) decides whether a run's scores measure
    the predictor or the machine; a busy backend is named with its figure."""
    results = [{"backend": name, "remeasured": {"mape": mape}} for name, mape in floors.items()]
    note = _bench().quiet_note(results or [{"backend": "onnxruntime"}])
    assert expected in note
    if expected.startswith("NOT"):
        assert "executorch 3.6%" in note and "onnxruntime" not in note


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--held-out", "0"], "argument --held-out: expected a positive integer, got '0'"),
        (["--calibration", "2"], "argument --calibration: expected an integer >= 3, got '2'"),
        (["--rounds", "0"], "argument --rounds: expected a positive integer, got '0'"),
        (["--per-round", "0"], "argument --per-round: expected a positive integer, got '0'"),
        (["--retries", "-1"], "argument --retries: expected an integer >= 0, got '-1'"),
        (["--input-size", "8"], "argument --input-size: expected an integer >= 16, got '8'"),
        (["--max-spread", "0"], "argument --max-spread: expected a positive number, got '0'"),
        (["--max-spread", "nan"], "argument --max-spread: expected a positive number, got 'nan'"),
        (["--backends", "tflite"], "argument --backends: invalid choice: 'tflite'"),
    ],
)
def test_benchmark_refuses_impossible_settings_before_timing(
    argv: list[str],
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A setting that would fail minutes into a run (or score nothing) is refused at once, with
    argparse's usage message and status 2, and nothing is timed or written."""
    bench = _bench()
    monkeypatch.setattr(bench, "score_backend", lambda *a: pytest.fail("a network was timed"))
    with pytest.raises(SystemExit) as exited:
        bench.main([*argv, "--out", str(tmp_path / "scores")])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert says in error and "usage:" in error and "Traceback" not in error
    assert not (tmp_path / "scores" / "scores.json").exists()


def test_benchmark_refuses_an_output_folder_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out`` naming a file, or a folder below a file, is refused before any timing, and the
    file is left as it was."""
    bench = _bench()
    monkeypatch.setattr(bench, "score_backend", lambda *a: pytest.fail("a network was timed"))
    taken = tmp_path / "taken.txt"
    taken.write_text("mine", encoding="utf-8")
    for out, says in ((taken, "is a file"), (taken / "below", "cannot be written")):
        with pytest.raises(SystemExit) as exited:
            bench.main(["--out", str(out)])
        assert exited.value.code == 2
        error = capsys.readouterr().err
        assert f"--out {out} {says}" in error and "Traceback" not in error
    assert taken.read_text(encoding="utf-8") == "mine"


def test_benchmark_writes_its_scores_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished run leaves scores.json and scores.md complete, with no temporary file beside
    them (they are written to a temporary file and renamed); the scoring itself is faked."""
    bench = _bench()
    measured, predicted = [10.0, 20.0, 5.0], [10.4, 19.0, 5.1]

    def scored(backend: str, args: object) -> dict[str, object]:
        detail = [
            {"predicted_ms": p, "measured_ms": m} for p, m in zip(predicted, measured, strict=True)
        ]
        figures = {**score_predictions(predicted, measured), "networks_detail": detail}
        return {
            "backend": backend,
            "calibration_s": 1.5,
            "sets": {"space": figures},
            "remeasured": score_predictions(measured, measured),
        }

    monkeypatch.setattr(bench, "score_backend", scored)
    out = tmp_path / "scores"
    assert bench.main(["--backends", "onnxruntime", "--out", str(out)]) == 0
    data = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    assert data["results"][0]["backend"] == "onnxruntime"
    report = (out / "scores.md").read_text(encoding="utf-8")
    assert "| onnxruntime | 3 | space |" in report
    assert "Quiet run" in report
    assert {p.name for p in out.iterdir()} <= {
        "scores.json",
        "scores.md",
        "scatter_onnxruntime.png",
    }
    capsys.readouterr()


def test_a_full_disk_keeps_the_previous_scores_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while the scores are saved: the run's table is still on the console, the
    previous scores.json is left as it was (not half-overwritten), and the exit status is 1."""
    bench = _bench()
    measured = [10.0, 20.0, 5.0]
    figures = {**score_predictions(measured, measured), "networks_detail": []}
    result = {"calibration_s": 1.0, "sets": {"space": figures}}
    monkeypatch.setattr(
        bench, "score_backend", lambda backend, args: {"backend": backend, **result}
    )
    out = tmp_path / "scores"
    out.mkdir()
    (out / "scores.json").write_text('{"earlier": "run"}\n', encoding="utf-8")

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert bench.main(["--backends", "onnxruntime", "--out", str(out)]) == 1
    console = capsys.readouterr()
    assert "| onnxruntime | 3 | space |" in console.out
    assert "could not be saved" in console.err and "No space left" in console.err
    assert json.loads((out / "scores.json").read_text(encoding="utf-8")) == {"earlier": "run"}
    assert {p.name for p in out.iterdir()} == {"scores.json"}
