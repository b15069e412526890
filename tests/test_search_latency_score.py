"""The latency predictor's score: within ±x%, MAPE, Spearman, the Markdown table.

Checked against scipy where installed and against hand-computed values; nothing is timed."""

from __future__ import annotations

import importlib.util
import math
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
