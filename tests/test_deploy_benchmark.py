"""The benchmark machinery (``mnaszoo.deploy.benchmark``, ``mnaszoo bench``): structure only, on a
tiny input with one or two calls; no timing is asserted."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from mnaszoo import describe
from mnaszoo.cli.main import main
from mnaszoo.deploy.benchmark import (
    Row,
    measure_matmul_peak,
    plot_accuracy_latency,
    run_benchmark,
    to_json,
    to_markdown,
)
from mnaszoo.errors import InvalidArgumentError


def _tiny(batch_sizes: tuple[int, ...] = (1, 2), **kwargs: Any) -> list[Row]:
    return run_benchmark(
        ["mnasnet_small"],
        batch_sizes=batch_sizes,
        input_size=32,
        repeats=2,
        warmup=1,
        variants=("plain",),
        peak_gflops=10.0,
        **kwargs,
    )


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return _tiny(compare_reference=False, threads=1)


def test_rows_structure(rows: list[Row]) -> None:
    assert [(r.model, r.implementation, r.variant, r.batch) for r in rows] == [
        ("mnasnet_small", "mnaszoo", "torch", 1),
        ("mnasnet_small", "mnaszoo", "torch", 2),
    ]
    summary = describe("mnasnet_small", input_size=32)
    for r in rows:
        assert isinstance(r, Row)
        assert (r.params, r.macs, r.threads, r.repeats) == (summary.params, summary.macs, 1, 2)
        assert 0 < r.median_ms <= r.p90_ms
        assert r.gflops == pytest.approx(2 * r.macs * r.batch / (r.median_ms / 1e3) / 1e9)
        assert r.peak_fraction == pytest.approx(r.gflops / 10.0)
        assert r.ratio is None and r.reference == ""
        assert r.top1 is not None  # mnasnet_small has published weights

    table = to_markdown(rows).splitlines()
    assert len(table) == 2 + len(rows) and table[0].startswith("| model |")
    data = json.loads(to_json(rows, peak_gflops=10.0))
    assert data["peak_gflops"] == 10.0 and data["threads"] == 1
    assert data["rows"] == [dataclasses.asdict(r) for r in rows]


def test_reference_rows_carry_ratios() -> None:
    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed")
    ref = [r for r in _tiny((1,)) if r.implementation == "timm"]
    assert len(ref) == 1 and ref[0].reference == "mnasnet_small"
    assert ref[0].ratio is not None and ref[0].ratio > 0


def test_onnxruntime_and_int8_variants() -> None:
    for module in ("onnxruntime", "onnxscript"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    rows = run_benchmark(
        ["mnasnet_small"],
        batch_sizes=(2,),
        input_size=32,
        repeats=2,
        warmup=1,
        variants=("onnxruntime", "onnxruntime-int8"),
        compare_reference=False,
        peak_gflops=10.0,
    )
    assert [(r.variant, r.batch) for r in rows] == [("onnxruntime", 2), ("onnxruntime-int8", 2)]
    assert all(r.median_ms > 0 and r.ratio is None for r in rows)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="variant"):
        run_benchmark(["mnasnet_small"], variants=("fast",))
    with pytest.raises(InvalidArgumentError):
        run_benchmark(["mnasnet_small"], batch_sizes=(0,))


def test_matmul_peak_is_positive() -> None:
    assert measure_matmul_peak(64, repeats=2) > 0


def test_plot(rows: list[Row], tmp_path: Path) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(ImportError, match="matplotlib"):
            plot_accuracy_latency(rows, tmp_path / "plot.png")
    else:
        assert plot_accuracy_latency(rows, tmp_path / "plot.png").stat().st_size > 0


def test_cli_bench_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = ["bench", "mnasnet_small", "--batch-sizes", "1", "--input-size", "32", "--repeats"]
    argv += ["1", "--warmup", "0", "--variants", "plain", "--no-reference", "--threads", "1"]
    argv += ["--peak-size", "64"]
    assert main([*argv, "--json", "--json-out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert [(r["model"], r["variant"], r["batch"]) for r in printed["rows"]] == [
        ("mnasnet_small", "torch", 1)
    ]
    assert main(argv) == 0
    assert "| mnasnet_small | mnaszoo | torch | 1 |" in capsys.readouterr().out


def test_run_benchmark_image_size_is_the_old_spelling_of_input_size() -> None:
    with pytest.warns(DeprecationWarning, match="use input_size="):
        rows = run_benchmark(
            ["mnasnet_small"],
            batch_sizes=(1,),
            image_size=32,
            repeats=1,
            warmup=0,
            variants=("plain",),
            compare_reference=False,
            peak_gflops=10.0,
        )
    assert [row.image_size for row in rows] == [32]
    assert rows[0].macs == describe("mnasnet_small", input_size=32).macs
    with pytest.raises(InvalidArgumentError, match="give input_size= only"):
        run_benchmark(["mnasnet_small"], input_size=32, image_size=32)


def test_cli_bench_image_size_is_the_old_spelling_of_input_size(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "mnasnet_small", "--batch-sizes", "1", "--repeats", "1", "--warmup", "0"]
    argv += ["--variants", "plain", "--no-reference", "--threads", "1", "--peak-size", "64"]
    with pytest.warns(FutureWarning, match="--image-size is deprecated.*use --input-size"):
        assert main([*argv, "--image-size", "32", "--json"]) == 0
    assert [r["image_size"] for r in json.loads(capsys.readouterr().out)["rows"]] == [32]
    assert main([*argv, "--image-size", "32", "--input-size", "32"]) == 2
    assert "give --input-size only" in capsys.readouterr().err
