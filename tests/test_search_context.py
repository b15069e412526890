"""The in-context latency predictor: ONNX block graphs against eager PyTorch, noise checks,
the per-backend calibration, table persistence, and the device kit run without mnaszoo or torch."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mnaszoo.errors import InvalidArgumentError, SearchStateError
from mnaszoo.models.layers import ConvBnAct, make_block
from mnaszoo.models.plan import BlockPlan, resolve_plan
from mnaszoo.models.specs import BlockKind
from mnaszoo.search.latency.calibration import (
    CALIBRATION_NETWORKS,
    device_cpu,
    fit_context_calibration,
)
from mnaszoo.search.latency.context_table import ContextLatencyTable, context_layers
from mnaszoo.search.latency.steady import NoisyMeasurementError, SteadyTiming, time_steady
from mnaszoo.search.space import SearchSpace

TINY = SearchSpace(
    ops=("mb3", "dconv"),
    kernels=(3,),
    se_ratios=(0.0, 0.25),
    skips=(True,),
    filters=(0.5, 1.0),
    layers=(0,),
)


def _randomize_bn(module: torch.nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-1, 1)
            layer.running_var.uniform_(0.5, 2)
            layer.weight.data.uniform_(0.5, 1.5)
            layer.bias.data.uniform_(-0.5, 0.5)


def _folded_weights(module: torch.nn.Module, prefix: str) -> dict[str, object]:
    """The BatchNorm-folded state dict under the names the graph writer uses."""
    from mnaszoo.deploy.optimize import optimize_for_inference

    folded = optimize_for_inference(module.eval(), channels_last=False)
    weights: dict[str, object] = {}
    for key, value in folded.state_dict().items():
        parts = key.split(".")
        if len(parts) >= 2 and parts[-2] == "conv":  # ConvBnAct's conv: <name>.conv.weight
            parts = parts[:-2] + parts[-1:]
        weights[".".join([prefix, *parts]) if parts[0] != "" else prefix] = value.numpy()
    return weights


@pytest.mark.parametrize(
    "plan",
    [
        BlockPlan(0, 0, BlockKind.MB, 16, 48, 16, 5, 1, 4, True, 4),
        BlockPlan(0, 0, BlockKind.CONV, 16, 24, 24, 3, 2, 6, False, 4),
        BlockPlan(0, 0, BlockKind.DS, 16, 16, 24, 3, 1, 0, False, 4),
    ],
    ids=["mb-se-residual", "conv-se-stride2", "ds"],
)
def test_block_graph_matches_eager_pytorch(plan: BlockPlan) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the block graphs run in onnxruntime")
    pytest.importorskip("onnx", reason="the block graphs are written with onnx")
    from mnaszoo.search.latency.onnx_blocks import block_graph

    torch.manual_seed(0)
    module = make_block(plan, drop_path=0.0, bn_eps=1e-5, bn_momentum=0.01)
    _randomize_bn(module)
    module.eval()
    x = torch.randn(1, plan.in_channels, 12, 12)
    graph = block_graph(plan, tuple(x.shape), weights=_folded_weights(module, "block"))
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        expected = module(x).numpy()
    assert got.shape == expected.shape
    assert abs(got - expected).max() < 1e-4 * max(1.0, float(abs(expected).max()))


def test_stem_and_head_graphs_match_eager_pytorch() -> None:
    ort = pytest.importorskip("onnxruntime", reason="the graphs run in onnxruntime")
    pytest.importorskip("onnx", reason="the graphs are written with onnx")
    from mnaszoo.search.latency.onnx_blocks import head_graph, stem_graph

    torch.manual_seed(1)
    stem = ConvBnAct(3, 8, 3, 2)
    _randomize_bn(stem)
    x = torch.randn(1, 3, 17, 17)
    graph = stem_graph(3, 8, tuple(x.shape), weights=_folded_weights(stem, "stem"))
    got = ort.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()}
    )[0]
    with torch.no_grad():
        assert abs(got - stem.eval()(x).numpy()).max() < 1e-4

    conv, linear = ConvBnAct(8, 12, 1), torch.nn.Linear(12, 5)
    _randomize_bn(conv)
    weights = _folded_weights(conv, "head")
    weights["classifier.weight"] = linear.weight.detach().numpy()
    weights["classifier.bias"] = linear.bias.detach().numpy()
    y = torch.randn(1, 8, 4, 4)
    got = ort.InferenceSession(
        head_graph(8, 12, 5, tuple(y.shape), weights=weights), providers=["CPUExecutionProvider"]
    ).run(None, {"input": y.numpy()})[0]
    with torch.no_grad():
        expected = linear(conv.eval()(y).mean((2, 3)))
    assert abs(got - expected.numpy()).max() < 1e-4


def test_time_steady_remeasures_then_refuses_noise() -> None:
    count = [0]

    def jumpy() -> None:  # alternately fast and 20x slower: a busy machine, exaggerated
        count[0] += 1
        time.sleep(0.0002 if count[0] % 2 else 0.004)

    with pytest.raises(NoisyMeasurementError, match="spread more than"):
        time_steady([jumpy], rounds=2, per_round=2, warmup=0, retries=1, refuse_noisy=True)
    marked = time_steady([jumpy], rounds=2, per_round=2, warmup=0, retries=1)[0]
    assert marked.noisy and marked.attempts == 2 and marked.spread > 0.2
    assert marked.samples == 4 and marked.p25_ms <= marked.ms <= marked.p75_ms


def _timing(ms: float, spread: float = 0.01) -> SteadyTiming:
    return SteadyTiming(ms, ms * 0.99, ms * 1.01, spread, 9)


def test_calibration_recovers_scale_per_layer_and_offset() -> None:
    totals = [10.0, 14.0, 25.0, 31.0, 40.0, 52.0]
    layers = [12, 20, 15, 22, 18, 25]
    truth = [1.5 * t - 0.2 * n + 3.0 for t, n in zip(totals, layers, strict=True)]
    fit = fit_context_calibration(totals, layers, [_timing(y) for y in truth], max_spread=0.2)
    assert fit.scale == pytest.approx(1.5) and fit.per_layer_ms == pytest.approx(-0.2)
    assert fit.offset == pytest.approx(3.0) and fit.fit_mape == pytest.approx(0.0, abs=1e-9)
    # A network timed while the machine was busy (wide spread, inflated) is left out of the fit.
    busy = [_timing(y) for y in truth] + [_timing(500.0, spread=0.9)]
    refit = fit_context_calibration([*totals, 45.0], [*layers, 20], busy, max_spread=0.2)
    assert refit.samples == 6 and refit.offset == pytest.approx(3.0)


def test_calibration_prefers_a_plain_scale_when_the_timings_are_proportional() -> None:
    # Eager torch: every network about 1.3x the sum of its layers, whatever its size. A scale
    # alone predicts each network left out exactly; an offset would not, and is not chosen.
    totals = [10.0, 14.0, 25.0, 31.0, 40.0, 52.0]
    layers = [12, 20, 15, 22, 18, 25]
    fit = fit_context_calibration(
        totals, layers, [_timing(1.3 * t) for t in totals], max_spread=0.2
    )
    assert fit.form == "scale" and fit.scale == pytest.approx(1.3)
    assert fit.per_layer_ms == 0.0 and fit.offset == 0.0 and fit.loo_mape == pytest.approx(0.0)


def test_calibration_refuses_a_busy_machine() -> None:
    noisy = [_timing(5.0 + i, spread=0.5) for i in range(5)]
    with pytest.raises(InvalidArgumentError, match="too busy"):
        fit_context_calibration([1, 2, 3, 4, 5], [10, 11, 12, 13, 14], noisy, max_spread=0.2)


def test_command_line_calibrates_on_as_many_networks_as_the_library() -> None:
    # The CLI writes the number out (importing mnaszoo.search would load torch); keep it equal.
    import argparse
    import inspect

    from mnaszoo.cli import latency_kit, search as search_command
    from mnaszoo.search.config import LatencyConfig
    from mnaszoo.search.latency.kit import write_latency_kit

    for command, option in ((search_command, "calibrate"), (latency_kit, "calibration")):
        parser = argparse.ArgumentParser()
        command.add_arguments(parser)
        assert parser.get_default(option) == CALIBRATION_NETWORKS, command.NAME
    assert LatencyConfig().calibrate == CALIBRATION_NETWORKS
    kit_default = inspect.signature(write_latency_kit).parameters["calibration"].default
    assert kit_default == CALIBRATION_NETWORKS


def test_table_predicts_saves_and_loads(tmp_path: Path, one_thread: None) -> None:
    table = ContextLatencyTable(image_size=32, num_classes=10, rounds=2, per_round=1, warmup=1)
    specs = [TINY.to_spec(TINY.sample(random.Random(i))) for i in range(5)]
    raws = [table.predict_raw(spec) for spec in specs]
    for spec, raw in zip(specs, raws, strict=True):
        layers = context_layers(resolve_plan(spec), 32, 1, 10)
        # A table sums each layer's fastest call (steady.ENTRY_STATISTICS).
        assert raw == pytest.approx(sum(table.entries[x.key].min_ms for x in layers))
        assert raw < sum(table.entries[x.key].ms for x in layers)
    counts = [len(table.layers(s)) for s in specs]
    fit = table.fit_calibration(specs, [_timing(2 * r + 1) for r in raws])
    assert fit.scale == pytest.approx(2.0) and fit.offset == pytest.approx(1.0)
    path = table.save(tmp_path / "table.json")
    loaded = ContextLatencyTable.load(path)
    assert loaded.entries == table.entries and loaded.calibration == table.calibration
    assert loaded.entry_statistic == table.entry_statistic == "fastest"
    assert [loaded.predict(s) for s in specs] == pytest.approx([2 * r + 1 for r in raws])
    assert loaded.measurements == 0 and counts[0] == len(
        context_layers(resolve_plan(specs[0]), 32, 1, 10)
    )
    assert loaded.fingerprint["device_cpu"] == device_cpu()
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(SearchStateError, match="not a mnaszoo"):
        ContextLatencyTable.load(tmp_path / "bad.json")


def test_kit_covers_every_layer_of_the_space() -> None:
    from mnaszoo.search.latency.kit import space_layers

    keys = {layer.key for layer in space_layers(TINY, 64, 1, 10)}
    rng = random.Random(0)
    for _ in range(200):
        plan = resolve_plan(TINY.to_spec(TINY.sample(rng)))
        assert {layer.key for layer in context_layers(plan, 64, 1, 10)} <= keys


def _runtime_only_path(folder: Path) -> str:
    """A folder holding onnxruntime and numpy alone (symbolic links), for ``python -S``."""
    import numpy
    import onnxruntime

    for module in (numpy, onnxruntime):
        package = Path(module.__file__).parent  # type: ignore[arg-type]
        (folder / package.name).symlink_to(package)
        libs = package.parent / f"{package.name}.libs"
        if libs.exists():
            (folder / libs.name).symlink_to(libs)
    return str(folder)


def test_kit_runs_with_onnxruntime_alone_and_feeds_a_table(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the kit's runner times with onnxruntime")
    pytest.importorskip("onnx", reason="the kit's models are written with onnx")
    from mnaszoo.search.latency.kit import space_layers, write_latency_kit

    kit = write_latency_kit(
        tmp_path / "kit", space=TINY, input_size=32, num_classes=10, calibration=4
    )
    manifest = json.loads((kit / "manifest.json").read_text())
    assert len(manifest["entries"]) == len(space_layers(TINY, 32, 1, 10))
    (tmp_path / "site").mkdir()
    env = {"PYTHONPATH": _runtime_only_path(tmp_path / "site"), "PATH": os.environ["PATH"]}
    python = [sys.executable, "-S"]  # no site-packages: torch and mnaszoo are out of reach
    probe = subprocess.run([*python, "-c", "import torch"], env=env, capture_output=True)
    assert probe.returncode != 0
    probe = subprocess.run([*python, "-c", "import mnaszoo"], env=env, capture_output=True)
    assert probe.returncode != 0
    done = subprocess.run(
        [
            *python,
            str(kit / "measure.py"),
            "--rounds",
            "2",
            "--calls",
            "2",
            "--clock",
            "thread",
            "--max-spread",
            "100",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    import onnxruntime

    data = json.loads((kit / "table.json").read_text())
    assert data["runtime_version"] == onnxruntime.__version__ and data["threads"] == 1
    # The reference network was timed beside the blocks, and its drift recorded.
    assert (kit / manifest["reference"]["file"]).is_file()
    assert data["conditions"]["max_reference_drift"] >= 0.0
    assert data["device_cpu"] == device_cpu()
    assert all("spread" in entry for entry in data["entries"].values())
    table = ContextLatencyTable.load(kit / "table.json")
    assert table.frozen and table.calibration is not None
    assert table.conditions == data["conditions"]
    spec = TINY.to_spec(TINY.sample(random.Random(3)))
    keys = [x.key for x in table.layers(spec)]
    # The runner keeps each block's fastest call, and the table sums those.
    assert table.entry_statistic == "fastest"
    raw = sum(data["entries"][k]["min_ms"] for k in keys)
    assert table.predict(spec) == pytest.approx(table.calibration.apply(raw, len(keys)))
    other = SearchSpace().to_spec(SearchSpace().base_tokens())
    with pytest.raises(SearchStateError, match="latency-kit"):
        table.predict(other)  # the kit covers the tiny space only: refused, not measured here


@pytest.mark.parametrize("damage", ["garbage", "missing"])
def test_kit_runner_names_a_damaged_model_and_writes_no_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    pytest.importorskip("onnxruntime", reason="the kit's runner times with onnxruntime")
    pytest.importorskip("onnx", reason="the kit's models are written with onnx")
    from mnaszoo.search.latency import _kit_runner
    from mnaszoo.search.latency.kit import write_latency_kit

    kit = write_latency_kit(
        tmp_path / "kit", space=TINY, input_size=32, num_classes=10, calibration=3
    )
    manifest = json.loads((kit / "manifest.json").read_text())
    broken = kit / manifest["entries"][1]["file"]
    if damage == "garbage":
        broken.write_bytes(b"not an onnx model")  # a copy cut short, a disk error
    else:
        broken.unlink()
    code = _kit_runner.main(["--kit", str(kit), "--rounds", "1", "--calls", "1", "--retries", "0"])
    assert code == 2
    message = capsys.readouterr().err
    assert manifest["entries"][1]["file"] in message and "write it again" in message
    assert "Traceback" not in message
    assert not (kit / "table.json").exists()


def _tiny_kit_on_a_device(
    tmp_path: Path, argv: list[str]
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A tiny onnxruntime kit, and its ``measure.py`` run with ``argv`` as on a device:
    ``python -S`` with onnxruntime and numpy alone on the path (no torch, no mnaszoo)."""
    pytest.importorskip("onnxruntime", reason="the kit's runner times with onnxruntime")
    pytest.importorskip("onnx", reason="the kit's models are written with onnx")
    from mnaszoo.search.latency.kit import write_latency_kit

    kit = write_latency_kit(
        tmp_path / "kit", space=TINY, input_size=32, num_classes=10, calibration=3
    )
    (tmp_path / "site").mkdir()
    env = {"PYTHONPATH": _runtime_only_path(tmp_path / "site"), "PATH": os.environ["PATH"]}
    done = subprocess.run(
        [sys.executable, "-S", str(kit / "measure.py"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return kit, done


def test_kit_runner_that_cannot_write_its_table_says_so_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "gone" / "table.json"  # its folder is not there (as a read-only one fails)
    argv = ["--rounds", "1", "--calls", "1", "--retries", "0", "--out", str(out)]
    kit, done = _tiny_kit_on_a_device(tmp_path, argv)
    assert done.returncode == 2, done.stderr
    assert f"could not write {out}" in done.stderr and "--out" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.parent.exists() and not (kit / "table.json").exists()


def test_kit_runner_times_blocks_once_and_retries_calibration_networks(tmp_path: Path) -> None:
    """As the in-process table: blocks (summed by their fastest call) are not re-timed for
    their spread; the calibration networks, timed by their median, are. With a limit of
    practically zero spread everything counts as noisy."""
    argv = ["--rounds", "2", "--calls", "2", "--retries", "2", "--max-spread", "1e-12"]
    kit, done = _tiny_kit_on_a_device(tmp_path, argv)
    assert done.returncode == 0, done.stderr
    assert "noisy blocks" not in done.stdout and "noisy networks" in done.stdout
    table = json.loads((kit / "table.json").read_text())
    assert {entry["attempts"] for entry in table["entries"].values()} == {1}
    assert {entry["attempts"] for entry in table["calibration"].values()} == {3}


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--rounds", "0"), ("--calls", "0"), ("--settle", "-1"), ("--retries", "-2")],
)
def test_kit_runner_refuses_impossible_counts_by_name(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mnaszoo.search.latency import _kit_runner

    with pytest.raises(SystemExit) as stopped:
        _kit_runner.parse([flag, value])
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert f"{flag} must be at least" in message and "Traceback" not in message
