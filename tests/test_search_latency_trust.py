"""The predictor says when it cannot be trusted: load, another machine, outside calibration.

Synthetic entries and timings only: nothing here is timed."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import pytest

from mnaszoo.errors import SearchStateError
from mnaszoo.models.plan import resolve_plan
from mnaszoo.search.latency import trust
from mnaszoo.search.latency.context_table import ContextLatencyTable
from mnaszoo.search.latency.steady import SteadyTiming
from mnaszoo.search.space import SearchSpace


def _timing(ms: float) -> SteadyTiming:
    return SteadyTiming(ms, ms * 0.99, ms * 1.01, 0.02, 6)


def _table_with(specs: list) -> ContextLatencyTable:  # type: ignore[type-arg]
    """A torch table whose entries are made up (1 ms per 1e6 MACs of the layer, roughly):
    predictions need no timing."""
    table = ContextLatencyTable(backend="torch", image_size=64, num_classes=10)
    for spec in specs:
        for layer in table.layers(spec):
            width = sum(layer.shape[1:]) if layer.block is None else layer.block.mid_channels
            table._entries.setdefault(layer.key, _timing(0.01 + width / 1000))
    return table


def _space_specs(n: int, seed: int) -> list:  # type: ignore[type-arg]
    space = SearchSpace()
    rng = random.Random(seed)
    return [space.to_spec(space.sample(rng), name=f"net{i}") for i in range(n)]


@pytest.fixture
def calibrated() -> tuple[ContextLatencyTable, list]:  # type: ignore[type-arg]
    specs = _space_specs(6, 0)
    table = _table_with(specs)
    raw = [table.predict_raw(s) for s in specs]
    table.fit_calibration(specs, [_timing(1.1 * r + 0.05) for r in raw])
    return table, specs


def test_calibration_records_the_range_it_covered(calibrated) -> None:  # type: ignore[no-untyped-def]
    table, specs = calibrated
    coverage = table.coverage
    assert coverage is not None
    plans = [resolve_plan(s) for s in specs]
    assert coverage.width_mult == [1.0, 1.0]
    assert coverage.blocks == [
        float(min(len(p.blocks) for p in plans)),
        float(max(len(p.blocks) for p in plans)),
    ]
    assert coverage.layers[0] == coverage.blocks[0] + 2  # the stem and the head


def test_a_network_inside_the_range_predicts_silently(calibrated) -> None:  # type: ignore[no-untyped-def]
    table, specs = calibrated
    with warnings.catch_warnings():
        warnings.simplefilter("error", trust.LatencyTrustWarning)
        table.predict(specs[0])
    assert table.predict_checked(specs[0]).trusted


def test_a_narrower_network_is_named_outside_the_range(calibrated) -> None:  # type: ignore[no-untyped-def]
    table, specs = calibrated
    narrow = resolve_plan(specs[0], width_mult=0.35)
    table._entries.update(_table_with([narrow])._entries)
    with pytest.warns(trust.OutOfRangeWarning, match="width multiplier 0.35"):
        table.predict(narrow)
    checked = table.predict_checked(narrow)
    assert not checked.trusted
    assert ("OutOfRangeWarning", checked.issues[0][1]) == checked.issues[0]
    assert checked.ms == pytest.approx(table.predict(narrow))


def test_an_uncalibrated_table_has_no_range_to_leave() -> None:
    specs = _space_specs(1, 1)
    table = _table_with(specs)
    assert table.coverage is None
    assert trust.range_issues(table, resolve_plan(specs[0]), 1.0, 3) == []


def test_load_issues_name_drift_and_load() -> None:
    assert trust.load_issues({}) == []
    assert trust.load_issues({"max_reference_drift": 0.05, "max_load_per_cpu": 0.5}) == []
    drift = trust.load_issues({"max_reference_drift": 0.4})
    assert len(drift) == 1 and "40%" in drift[0]
    assert "3.0 per CPU" in trust.load_issues({"max_load_per_cpu": 3.0})[0]


def test_reference_drift_while_measuring_warns_once_and_is_recorded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(trust, "load_per_cpu", lambda: 0.2)  # a quiet machine's load
    table = ContextLatencyTable(backend="torch", image_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", trust.MeasuredUnderLoadWarning)
        trust.note_conditions(table, 1.02)  # 2% drift: a quiet machine
    with pytest.warns(trust.MeasuredUnderLoadWarning, match="drifted by 50%"):
        trust.note_conditions(table, 1 / 1.5)  # the reference ran 1.5x slower
    assert table.conditions["max_reference_drift"] == pytest.approx(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", trust.MeasuredUnderLoadWarning)
        trust.note_conditions(table, 1 / 1.2)  # still loaded: no second warning


def test_a_load_average_above_the_cores_warns(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(trust, "load_per_cpu", lambda: 3.5)
    table = ContextLatencyTable(backend="torch", image_size=32)
    with pytest.warns(trust.MeasuredUnderLoadWarning, match="3.5 per CPU core"):
        trust.note_conditions(table, 1.0)
    assert table.conditions == {"max_reference_drift": 0.0, "max_load_per_cpu": 3.5}


def test_machine_issues() -> None:
    origin = {"device_cpu": "CPU A", "runtime": "onnxruntime 1.20"}
    assert trust.machine_issues(origin, dict(origin)) == []
    other = trust.machine_issues(origin, {"device_cpu": "CPU B", "runtime": "onnxruntime 1.21"})
    assert len(other) == 2 and "CPU A" in other[0] and "1.21" in other[1]
    assert trust.machine_issues(origin, {"device_cpu": "B"}, device_table=True) == []
    threads = trust.machine_issues(origin, origin, threads=1, wanted_threads=4)
    assert threads == ["the table was measured with 1 threads, used with 4"]


def _saved(table: ContextLatencyTable, path: Path, **changes: object) -> Path:
    data = table.to_dict()
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section][field] = value
        else:
            data[section] = value
    path.write_text(json.dumps(data))
    return path


def test_a_table_from_another_cpu_or_runtime_warns_on_load(calibrated, tmp_path) -> None:  # type: ignore[no-untyped-def]
    table, specs = calibrated
    path = _saved(table, tmp_path / "t.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error", trust.LatencyTrustWarning)
        loaded = ContextLatencyTable.load(path)  # this machine's own table: silent
    assert loaded.coverage == table.coverage
    other = _saved(table, tmp_path / "o.json", fingerprint__device_cpu="Some Other CPU")
    with pytest.warns(trust.ForeignTableWarning, match="Some Other CPU"):
        loaded = ContextLatencyTable.load(other)
    issues = loaded.predict_checked(specs[0]).issues
    assert [name for name, _ in issues] == ["ForeignTableWarning"]
    old = _saved(table, tmp_path / "v.json", fingerprint__runtime="torch 0.1")
    with pytest.warns(trust.ForeignTableWarning, match="torch 0.1"):
        ContextLatencyTable.load(old)


def test_a_table_measured_under_load_says_so_on_load(calibrated, tmp_path) -> None:  # type: ignore[no-untyped-def]
    table, specs = calibrated
    path = _saved(table, tmp_path / "t.json", conditions={"max_reference_drift": 0.3})
    with pytest.warns(trust.MeasuredUnderLoadWarning, match="drifted by 30%"):
        loaded = ContextLatencyTable.load(path)
    assert loaded.predict_checked(specs[0]).issues[0][0] == "MeasuredUnderLoadWarning"


def test_a_damaged_coverage_is_refused_by_name(calibrated, tmp_path) -> None:  # type: ignore[no-untyped-def]
    table, _ = calibrated
    path = _saved(table, tmp_path / "t.json", coverage__layers=[9, 3])
    with pytest.raises(SearchStateError, match="coverage layers"):
        ContextLatencyTable.load(path)


def test_warnings_can_be_turned_into_refusals(calibrated) -> None:  # type: ignore[no-untyped-def]
    table, specs = calibrated
    narrow = resolve_plan(specs[0], width_mult=0.5)
    table._entries.update(_table_with([narrow])._entries)
    with warnings.catch_warnings():
        warnings.simplefilter("error", trust.LatencyTrustWarning)
        with pytest.raises(trust.OutOfRangeWarning):
            table.predict(narrow)
