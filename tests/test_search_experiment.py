"""The digits search experiment end to end, at toy sizes: files, resume, comparison, CLI, plot.

Latency is measured at 32 px and the proxy trains for one epoch on 64 images, so every trial takes
well under a second; the figures are meaningless, the plumbing is what is checked.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import mnaszoo
from mnaszoo.cli.main import main
from mnaszoo.errors import MnaszooError, SearchStateError
from mnaszoo.models.specs import NetworkSpec
from mnaszoo.search.plot import plot_pareto
from mnaszoo.search.reward import Reward
from mnaszoo.search.run.compare import compare_strategies
from mnaszoo.search.run.digits import load_spec, search_digits
from mnaszoo.search.run.runner import SearchResult, Trial
from mnaszoo.search.space import SearchSpace

pytest.importorskip("sklearn")

TINY: dict[str, Any] = {
    "image_size": 32,
    "proxy_size": 16,
    "proxy_epochs": 1,
    "proxy_train_limit": 64,
    "threads": 1,
    "calibrate": 0,
    "progress": False,
}
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SearchResult]:
    """A 3-trial controller search; the target defaults to the base network's latency."""
    output = tmp_path_factory.mktemp("search") / "run"
    return output, search_digits(output, budget=3, seed=0, **TINY)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_output_files_are_consistent(first_run: tuple[Path, SearchResult]) -> None:
    output, result = first_run
    for name in ("config.json", "state.json", "trials.jsonl", "best_spec.json", "summary.json"):
        assert (output / name).is_file(), name
    assert (output / "latency_table.json").is_file()  # the default: a table of its own
    assert (output / "pareto.png").exists() == HAS_MATPLOTLIB

    trials = _lines(output / "trials.jsonl")
    assert len(trials) == len(result.trials) == 3
    assert [t["index"] for t in trials] == [0, 1, 2]

    summary = json.loads((output / "summary.json").read_text())
    assert summary["budget"] == summary["trials"] == 3
    assert summary["space"]["size"] == 288**7
    assert 0 < summary["space"]["distinct_size"] <= summary["space"]["size"]
    assert summary["best"]["index"] == result.best.index
    assert summary["best"]["spec"] == result.best.spec
    assert summary["target_ms"] == result.reward.target_ms > 0
    assert "MobileNetV2" in summary["target_source"]
    assert [p["index"] for p in summary["pareto_front"]] == [t.index for t in result.pareto_front()]
    assert summary["trials_meeting_target"] == sum(
        t["latency_ms"] <= summary["target_ms"] for t in trials
    )
    assert summary["timings"]["seconds_per_trial_mean"] > 0
    assert summary["latency_validation"] is None

    # best_spec.json rebuilds the best trial's network.
    data = json.loads((output / "best_spec.json").read_text())
    assert data == result.best.spec == trials[result.best.index]["spec"]
    spec = load_spec(output / "best_spec.json")
    assert spec == NetworkSpec.from_dict(data) == result.best.network_spec()
    model = mnaszoo.build(spec, num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_rerun_with_a_larger_budget_continues(
    first_run: tuple[Path, SearchResult], tmp_path: Path
) -> None:
    source, first = first_run
    output = tmp_path / "run"
    shutil.copytree(source, output)
    before = [
        {k: v for k, v in t.items() if k != "seconds"} for t in _lines(output / "trials.jsonl")
    ]
    result = search_digits(output, budget=5, seed=0, **TINY)
    assert len(result.trials) == 5
    after = [
        {k: v for k, v in t.items() if k != "seconds"} for t in _lines(output / "trials.jsonl")
    ]
    assert len(after) == 5 and after[:3] == before
    assert result.trials[:3] == first.trials
    assert json.loads((output / "summary.json").read_text())["trials"] == 5

    # Other settings in the same folder are refused rather than mixed in.
    with pytest.raises(SearchStateError, match="proxy_epochs"):
        search_digits(output, budget=6, seed=0, **{**TINY, "proxy_epochs": 2})


def test_compare_strategies_equal_budgets_shared_table(tmp_path: Path) -> None:
    data = compare_strategies(
        tmp_path,
        strategies=("controller", "random"),
        seeds=(0, 1),
        budget=2,
        target_ms=5.0,
        **TINY,
    )
    assert set(data["strategies"]) == {"controller", "random"}
    counts = [run["trials"] for row in data["strategies"].values() for run in row["runs"]]
    assert counts == [2, 2, 2, 2]
    for strategy in ("controller", "random"):
        for seed in (0, 1):
            run = tmp_path / f"{strategy}-seed{seed}"
            assert len(_lines(run / "trials.jsonl")) == 2
            summary = json.loads((run / "summary.json").read_text())
            assert summary["latency_table"]["path"] == str(tmp_path / "latency_table.json")
            assert summary["target_ms"] == 5.0
        agg = data["strategies"][strategy]["aggregate"]
        assert set(agg) == {
            "best_reward",
            "best_accuracy",
            "last_half_mean_reward",
            "meeting_target",
        }
    assert json.loads((tmp_path / "comparison.json").read_text()) == data
    table = (tmp_path / "comparison.md").read_text()
    rows = [
        line
        for line in table.splitlines()
        if line.startswith("| controller") or line.startswith("| random")
    ]
    assert len(rows) == 2 and all(" ± " in row and "/ 2 |" in row for row in rows)


def test_cli_search_end_to_end_without_matplotlib(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    output = tmp_path / "cli"
    argv = [
        "search",
        str(output),
        "--budget",
        "2",
        "--strategy",
        "random",
        "--target-ms",
        "5",
        "--input-size",
        "32",
        "--proxy-epochs",
        "1",
        "--train-limit",
        "64",
        "--calibrate",
        "0",
        "--no-progress",
    ]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "best of 2 trials" in out and "best_spec.json" in out and str(output) in out
    assert "pareto.png" in err and "mnaszoo[bench]" in err  # the logged note
    assert not (output / "pareto.png").exists()
    assert len(_lines(output / "trials.jsonl")) == 2
    assert load_spec(output / "best_spec.json").stages

    trials = tuple(Trial.from_dict(t) for t in _lines(output / "trials.jsonl"))
    result = SearchResult(trials, SearchSpace(), Reward.soft(5.0))
    with pytest.raises(MnaszooError, match=r"mnaszoo\[bench\]"):
        plot_pareto(result, tmp_path / "p.png")


def test_cli_search_help_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--help"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--strategy",
        "--budget",
        "--seed",
        "--target-ms",
        "--reward",
        "--latency-backend",
        "--input-size",
        "--proxy-size",
        "--proxy-epochs",
        "--threads",
        "--table",
        "--compare",
        "--seeds",
        "--no-progress",
    ):
        assert option in out, option
    assert main(["search", "out", "--seeds", "0", "1"]) == 2  # several seeds need --compare
    assert "--compare" in capsys.readouterr().err
