"""What the latency tables time (computation, not page faults or a noisy yardstick) and what
they are calibrated on.

Nothing here is timed: page faults are counted, calls are counted, and time is a fake clock."""

from __future__ import annotations

import itertools
import os
import resource
import subprocess
import sys
import textwrap

import pytest
import torch

from mnaszoo.errors import SearchStateError
from mnaszoo.search.latency import context_table as context_module
from mnaszoo.search.latency.context_table import ContextLatencyTable
from mnaszoo.search.latency.heap import steady_heap
from mnaszoo.search.latency.open import CALIBRATION_WIDTHS, calibration_networks, spec_key
from mnaszoo.search.latency.reference import REFERENCE_COPIES, interleave_reference, rescale
from mnaszoo.search.latency.steady import SteadyTiming
from mnaszoo.search.space import SearchSpace

# A tiny space for device tables: 32 px layers.
TINY = SearchSpace(
    ops=("mb3",), kernels=(3,), se_ratios=(0.0,), skips=(True,), filters=(1.0,), layers=(-1, 0)
)

GLIBC = bool(getattr(os, "confstr_names", {}).get("CS_GNU_LIBC_VERSION")) and bool(
    os.confstr("CS_GNU_LIBC_VERSION")
)

# Allocates and frees a 40 MiB tensor ten times, then nine more, and prints the page faults of
# the nine:
# glibc serves a block that large from fresh mmap pages every time, unless told to keep it.
_FAULTS = textwrap.dedent(
    """
    import resource, sys, torch
    from mnaszoo.search.latency.heap import steady_heap

    def faults():
        for _ in range(10):  # glibc settles its heap's layout over the first few blocks
            torch.empty(10 << 20).fill_(1.0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(9):
            torch.empty(10 << 20).fill_(1.0)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    if sys.argv[1] == "steady":
        with steady_heap() as kept:
            print(int(kept), faults())
    else:
        print(0, faults())
    """
)


def _faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return bool(int(out[0])), int(out[1])


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_steady_heap_stops_the_page_faults_of_large_tensors() -> None:
    kept, with_heap = _faults("steady")
    _, without = _faults("default")
    pages = 9 * (40 << 20) // resource.getpagesize()
    assert kept
    assert without > pages // 2  # the default: every large block faults its pages in again
    assert with_heap < pages // 50  # kept: the pages are reused


def test_steady_heap_leaves_the_allocator_working() -> None:
    with steady_heap():
        inside = torch.ones(1 << 20).sum()
    after = torch.ones(1 << 20).sum()  # allocation still works after the thresholds are reset
    assert float(inside) == float(after) == float(1 << 20)


def _fake_batches(monkeypatch, reference: list[float]) -> None:  # type: ignore[no-untyped-def]
    """Each batch times every call at 2 ms and the reference network at the next ``reference``."""
    drifts = iter(reference)

    def fake_time(self, calls, names, retry=True):  # type: ignore[no-untyped-def]
        ref = next(drifts)
        return [
            SteadyTiming(ref, ref, ref, 0.0, 6)
            if name == "reference network"
            else SteadyTiming(2.0, 1.9, 2.1, 0.1, 6)
            for name in names
        ]

    monkeypatch.setattr(ContextLatencyTable, "_time", fake_time)
    monkeypatch.setattr(context_module.trust, "load_per_cpu", lambda: 0.1)


@pytest.mark.parametrize(("clock", "threads"), [("thread", 1), ("wall", 2)])
def test_batches_are_rescaled_by_the_reference_networks_drift(monkeypatch, clock, threads) -> None:  # type: ignore[no-untyped-def]
    _fake_batches(monkeypatch, [4.0, 4.4])
    table = ContextLatencyTable(backend="torch", image_size=32, clock=clock, threads=threads)
    calls = [lambda: None] * 3
    assert [t.ms for t in table.time_calls(calls, ["a", "b", "c"])] == [2.0, 2.0, 2.0]
    assert table.reference_ms == 4.0
    # The reference ran 10% slower in the second batch: its timings are brought back.
    second = table.time_calls(calls, ["a", "b", "c"])
    assert [t.ms for t in second] == pytest.approx([2.0 / 1.1] * 3)
    assert table.conditions["max_reference_drift"] == pytest.approx(0.1)


@pytest.mark.parametrize("n", [0, 1, 4, 5, 6, 11, 100])
def test_the_reference_is_spread_through_every_batch(n: int) -> None:
    calls = [lambda i=i: i for i in range(n)]
    names = [f"m{i}" for i in range(n)]
    reference = lambda: None  # noqa: E731
    merged, labels, positions = interleave_reference(calls, names, reference)
    assert len(positions) == REFERENCE_COPIES
    assert all(merged[i] is reference for i in positions)
    kept = [label for i, label in enumerate(labels) if i not in set(positions)]
    assert kept == names  # every call once, in order
    assert positions[0] == 0
    if n >= REFERENCE_COPIES:  # spread: no two copies side by side
        assert all(b - a > 1 for a, b in itertools.pairwise(positions))
    timings = [SteadyTiming(2.0 if i in positions else 1.0, 1, 1, 0, 3) for i in range(len(merged))]
    rescaled, measured, factor = rescale(timings, positions, 4.0)
    assert measured == 2.0 and factor == 2.0 and [t.ms for t in rescaled] == [2.0] * n


@pytest.mark.parametrize("n", [3, 4, 32])
def test_calibration_networks_span_the_widths_and_repeat(n: int) -> None:
    first = calibration_networks(SearchSpace(), n)
    again = calibration_networks(SearchSpace(), n)
    assert [(spec_key(p.spec), p.width_mult) for p in first] == [
        (spec_key(p.spec), p.width_mult) for p in again
    ]
    widths = [p.width_mult for p in first]
    assert widths.count(1.0) == n - n // 3  # two in three where the search predicts
    others = [w for w in widths if w != 1.0]
    assert others == list(CALIBRATION_WIDTHS * 3)[: len(others)]  # in order, then again
    assert len({spec_key(p.spec) for p in first}) == n  # all different networks


def test_steady_heap_changes_nothing_off_glibc(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """musl, macOS, Windows: no glibc to configure, so nothing is set and timing goes on."""
    from mnaszoo.search.latency import heap

    def no_glibc(name: str) -> str:
        raise ValueError(name)  # what os.confstr raises for a name the C library lacks

    monkeypatch.setattr(heap.os, "confstr", no_glibc)
    heap._glibc.cache_clear()
    heap._keep_freed_memory.cache_clear()
    try:
        with steady_heap() as kept:
            assert kept is False
    finally:
        heap._glibc.cache_clear()
        heap._keep_freed_memory.cache_clear()


def test_a_timing_keeps_its_fastest_call(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """15 calls on a fake clock: the median and the fastest are told apart and both kept."""
    from mnaszoo.search.latency import steady

    durations = iter([0.004, 0.002, 0.002] * 5)  # a round's first call is slower (cold)
    now = [0.0]

    def clock() -> float:
        return now[0]

    def call() -> None:
        now[0] += next(durations)

    monkeypatch.setattr(steady.time, "perf_counter", clock)
    (timing,) = steady.time_steady([call], warmup=0, rounds=5, per_round=3, retries=0)
    assert timing.ms == pytest.approx(2.0) and timing.min_ms == pytest.approx(2.0)
    assert timing.p75_ms == pytest.approx(4.0)
    assert timing.scaled(0.5).min_ms == pytest.approx(1.0)  # rescaling carries it along


@pytest.mark.parametrize(("settle", "median", "spread"), [(0, 2.0, 0.25), (1, 2.0, 0.0)])
def test_a_settling_call_leaves_the_cold_call_of_each_round_untimed(
    monkeypatch, settle: int, median: float, spread: float
) -> None:  # type: ignore[no-untyped-def]
    """A round's first call runs cold (4 ms, then 2 ms): timed, 5 of 20 calls push p75 to 2.5 ms;
    called untimed first (``settle=1``), the three timed calls are the steady ones."""
    from mnaszoo.search.latency import steady

    now = [0.0]
    calls = [0]

    def clock() -> float:
        return now[0]

    def call() -> None:
        now[0] += 0.004 if calls[0] % 4 == 0 else 0.002  # every round's first call is cold
        calls[0] += 1

    monkeypatch.setattr(steady.time, "perf_counter", clock)
    # Four calls per round either way: settle=0 pads with a fourth timed call.
    (timing,) = steady.time_steady(
        [call], warmup=0, rounds=5, per_round=4 - settle, retries=0, settle=settle
    )
    assert timing.samples == 5 * (4 - settle)
    assert timing.ms == pytest.approx(median) and timing.min_ms == pytest.approx(2.0)
    assert timing.spread == pytest.approx(spread)
    assert calls[0] == 20


@pytest.mark.parametrize("statistic", ["fastest", "median"])
def test_layers_of_a_fastest_table_are_timed_once_and_networks_retried(
    monkeypatch, statistic: str
) -> None:  # type: ignore[no-untyped-def]
    """A layer's spread is wide by nature (cold first calls), and the fastest call needs no
    retry; whole networks, timed by their median, are still re-timed while they spread."""
    from mnaszoo.models.architectures import MNASNET_SMALL
    from mnaszoo.search.latency import _runners

    asked: list[tuple[int, int]] = []

    def fake_steady(calls, *, retries, **settings):  # type: ignore[no-untyped-def]
        asked.append((len(calls), retries))
        return [SteadyTiming(2.0, 1.0, 3.0, 1.0, 15, min_ms=1.0) for _ in calls]

    monkeypatch.setattr(context_module, "time_steady", fake_steady)
    monkeypatch.setattr(_runners, "layer_call", lambda *args: lambda: None)
    monkeypatch.setattr(_runners, "network_call", lambda *args: lambda: None)
    table = ContextLatencyTable(image_size=32, num_classes=10, retries=2)
    table.entry_statistic = statistic
    layers = len({layer.key for layer in table.layers(MNASNET_SMALL)})  # repeats share one
    assert table.prefill([MNASNET_SMALL]) == layers
    table.measure_timing([MNASNET_SMALL])
    layer_retries = 0 if statistic == "fastest" else 2
    # Each batch also carries the reference network's copies.
    assert asked == [(layers + REFERENCE_COPIES, layer_retries), (1 + REFERENCE_COPIES, 2)]


def _entry(ms: float, fastest: float | None) -> SteadyTiming:
    return SteadyTiming(ms, ms, ms, 0.0, 6, min_ms=fastest)


def test_a_table_sums_fastest_calls_and_older_tables_keep_medians(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from mnaszoo.models.architectures import MNASNET_SMALL

    table = ContextLatencyTable(image_size=32, num_classes=10)
    keys = [layer.key for layer in table.layers(MNASNET_SMALL)]
    table._entries = {key: _entry(2.0, 1.5) for key in keys}
    assert table.entry_statistic == "fastest"
    assert table.predict_raw(MNASNET_SMALL) == pytest.approx(1.5 * len(keys))
    path = table.save(tmp_path / "t.json")
    assert ContextLatencyTable.load(path).predict_raw(MNASNET_SMALL) == pytest.approx(
        1.5 * len(keys)
    )
    # A table saved before the statistic was recorded summed medians, and still does.
    data = json.loads(path.read_text())
    del data["settings"]["entry_statistic"]
    path.write_text(json.dumps(data))
    old = ContextLatencyTable.load(path)
    assert old.entry_statistic == "median"
    assert old.predict_raw(MNASNET_SMALL) == pytest.approx(2.0 * len(keys))
    data["settings"]["entry_statistic"] = "mean"
    path.write_text(json.dumps(data))
    with pytest.raises(SearchStateError, match="entry_statistic 'mean' is not one of"):
        ContextLatencyTable.load(path)


@pytest.mark.parametrize("runner_keeps_fastest", [True, False])
def test_a_device_table_sums_what_its_runner_recorded(tmp_path, runner_keeps_fastest) -> None:  # type: ignore[no-untyped-def]
    from mnaszoo.search.latency._kit_runner import summary

    def timing(seconds: list[float]) -> dict[str, float]:
        record = summary(seconds)
        if not runner_keeps_fastest:  # what runners wrote before they kept the fastest call
            del record["min_ms"]
        return record

    path, specs = _device_table_file(tmp_path, timing)
    loaded = ContextLatencyTable.load(path)
    assert loaded.entry_statistic == ("fastest" if runner_keeps_fastest else "median")
    per_layer = 2.0 if runner_keeps_fastest else 3.0
    raw = loaded.predict_raw(specs[0])
    assert raw == pytest.approx(per_layer * len(loaded.layers(specs[0])))


@pytest.mark.parametrize("n", [0, 1, 5, 48])
def test_a_kit_chunk_is_rescaled_by_its_reference(n: int) -> None:
    """The device runner (no mnaszoo there) spreads and rescales as the tables here do."""
    from mnaszoo.search.latency._kit_runner import rescale_chunk, summary, with_reference

    calls = [f"block{i}" for i in range(n)]
    merged, positions = with_reference(calls, "reference")
    assert positions == interleave_reference(calls, calls, "reference")[2]  # type: ignore[arg-type]
    assert [c for i, c in enumerate(merged) if i not in positions] == calls
    timed = [summary([0.0044 if i in positions else 0.002] * 3) for i in range(len(merged))]
    first, measured = rescale_chunk(timed, positions, None)  # the first chunk sets the unit
    assert measured == pytest.approx(4.4) and [t["ms"] for t in first] == pytest.approx([2.0] * n)
    later, _ = rescale_chunk(timed, positions, 4.0)  # the reference ran 10% slower here
    for key in ("ms", "p25_ms", "p75_ms", "min_ms"):
        assert [t[key] for t in later] == pytest.approx([2.0 / 1.1] * n)
    blocks = [t["ms"] for i, t in enumerate(timed) if i not in positions]
    assert blocks == pytest.approx([2.0] * n)  # the chunk's own records are left as they were


def test_a_device_table_carries_its_reference_drift_into_a_warning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import warnings

    from mnaszoo.search.latency._kit_runner import summary
    from mnaszoo.search.latency.trust import MeasuredUnderLoadWarning

    drift = {"max_reference_drift": 0.3}  # the device slowed down by 30% during the run
    path, _ = _device_table_file(tmp_path, summary, conditions=drift)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = ContextLatencyTable.load(path)
    assert loaded.conditions == {"max_reference_drift": 0.3}
    assert any(
        issubclass(w.category, MeasuredUnderLoadWarning) and "30%" in str(w.message) for w in caught
    )


def _device_table_file(folder, timing, *, conditions: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
    """A device table as a kit's runner writes it, for six TINY networks: every block timed by
    ``timing([0.003, 0.003, 0.002])`` (median 3 ms, fastest 2 ms), each calibration network
    ``timing`` of a time that grows with its layers (so a calibration can be fitted).

    Returns:
        The file, and the six networks.
    """
    import json
    import random

    table = ContextLatencyTable(image_size=32, num_classes=10)
    specs = [TINY.to_spec(TINY.sample(random.Random(i))) for i in range(6)]
    keys = sorted({layer.key for spec in specs for layer in table.layers(spec)})
    calibration = {}
    for number, spec in enumerate(specs):
        layer_keys = [layer.key for layer in table.layers(spec)]
        seconds = (2.0 * len(layer_keys) + number) / 1e3
        calibration[f"n{number}"] = {**timing([seconds] * 3), "keys": layer_keys}
    data = {
        "format": "mnaszoo-device-latency-table",
        "version": 1,
        "kit": {"id": "x", "image_size": 32, "batch_size": 1, "num_classes": 10},
        "runtime": "onnxruntime",
        "runtime_version": "1.0",
        "threads": 1,
        "clock": "wall",
        "max_spread": 0.2,
        "device_cpu": "cpu",
        "system": "Linux",
        "entries": {key: timing([0.003, 0.003, 0.002]) for key in keys},
        "calibration": calibration,
    }
    if conditions is not None:
        data["conditions"] = conditions
    path = folder / "table.json"
    path.write_text(json.dumps(data))
    return path, specs
