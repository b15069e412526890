"""One configuration of a search (mnaszoo.search.config): checked when made, one CLI flag per
field, recorded in the output folder and compared on resume, and every setting reaching the
search (``--workers`` with ``--data`` used to be dropped on the way)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mnaszoo.cli.main import build_parser, main
from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError, SearchStateError
from mnaszoo.search.config import (
    KEYWORDS,
    ControllerConfig,
    DataConfig,
    ExecutionConfig,
    LatencyConfig,
    ProxyConfig,
    SearchConfig,
)

TABLE = Path(__file__).parent / "fixtures" / "search_trials" / "images_table.json"


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for label in range(2):
        (root / f"c{label}").mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(
                root / f"c{label}" / f"{i}.png"
            )
    return root


def test_every_flag_sets_its_own_field(tmp_path: Path) -> None:
    from mnaszoo.cli.search import _config

    argv = ["search", "out", "--data", "d", "--val", "v", "--val-fraction", "0.3"]
    argv += ["--images-per-class", "7", "--corrupt", "error", "--augment", "--finalize", "2"]
    argv += ["--finalize-epochs", "4", "--strategy", "ppo", "--budget", "9", "--seed", "5"]
    argv += ["--target-ms", "3.5", "--reward", "hard", "--latency-backend", "onnxruntime"]
    argv += ["--input-size", "64", "--proxy-size", "24", "--predictor", "layers"]
    argv += ["--proxy-epochs", "6", "--threads", "2", "--table", "t.json", "--calibrate", "4"]
    argv += ["--validate-latency", "3", "--no-progress", "--workers", "2"]
    config = _config(build_parser().parse_args(argv))
    assert config == SearchConfig(
        data=DataConfig("d", "v", 0.3, 7, "error", None),
        proxy=ProxyConfig(24, 6, 64, 1e-2, 0, True, 2, 4),
        latency=LatencyConfig("onnxruntime", "layers", 64, "t.json", 4, 3),
        controller=ControllerConfig("ppo", 9, 5, "hard", 3.5),
        execution=ExecutionConfig(2, 2, None, False),
    )


def test_bad_values_are_refused_by_field_name() -> None:
    with pytest.raises(InvalidArgumentError, match="budget"):
        ControllerConfig(budget=0)
    with pytest.raises(InvalidArgumentError, match="proxy batch_size"):
        ProxyConfig(batch_size=1)
    with pytest.raises(InvalidArgumentError, match="exclude each other"):
        ExecutionConfig(workers=2, ray_address="auto")
    with pytest.raises(InvalidArgumentError, match="image folder"):
        SearchConfig(proxy=ProxyConfig(finalize=1))
    with pytest.raises(ArgumentTypeError, match="budget_ms"):
        SearchConfig().replace(budget_ms=3)
    with pytest.raises(ArgumentTypeError, match="LatencyConfig"):
        SearchConfig(latency=ControllerConfig())  # type: ignore[arg-type]


def test_keywords_name_one_field_each() -> None:
    config = SearchConfig().replace(budget=3, proxy_epochs=1, input_size=32, workers=2)
    assert config.controller.budget == 3 and config.proxy.epochs == 1
    assert config.latency.input_size == 32 and config.execution.workers == 2
    for keyword, (section, name) in KEYWORDS.items():
        assert name in {f.name for f in dataclasses.fields(getattr(config, section))}, keyword
    assert SearchConfig().replace(proxy_train_limit=None).resolved().data.train_limit == 0
    assert SearchConfig().resolved().data.train_limit == 800


def test_workers_reach_the_image_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    import mnaszoo.search.run.session as session

    seen: dict[str, Any] = {}

    def capture(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise SearchStateError("stopped by the test")

    monkeypatch.setattr(session, "run_search", capture)
    table = tmp_path / "table.json"
    shutil.copy(TABLE, table)
    argv = ["search", str(tmp_path / "out"), "--data", str(_folder(tmp_path / "d"))]
    argv += ["--table", str(table), "--input-size", "32", "--proxy-size", "16", "--no-progress"]
    assert main([*argv, "--workers", "2"]) == 1
    assert seen["workers"] == 2 and seen["ray_address"] is None
    assert main([*argv, "--ray-address", "10.0.0.5:6379"]) == 1
    assert seen["workers"] is None and seen["ray_address"] == "10.0.0.5:6379"


@pytest.mark.slow
def test_the_folder_records_the_config_and_resume_compares_it(
    tmp_path: Path, one_thread: None
) -> None:
    import json

    from mnaszoo.search import search_images

    table = tmp_path / "table.json"  # the recorded table, free to measure what it lacks
    table.write_text(json.dumps({**json.loads(TABLE.read_text()), "frozen": False}))
    data = _folder(tmp_path / "d")
    out = tmp_path / "out"
    quick: dict[str, Any] = {"budget": 1, "input_size": 32, "proxy_size": 16, "proxy_epochs": 1}
    search_images(out, data, table_path=table, progress=False, **quick)
    saved = SearchConfig.load(out)
    assert saved.controller.budget == 1 and saved.proxy.epochs == 1
    assert saved.data.folder == str(data.resolve())
    with pytest.raises(SearchStateError, match=r"proxy\.epochs \(proxy_epochs=\): saved 1, now 2"):
        search_images(out, data, table_path=table, progress=False, **{**quick, "proxy_epochs": 2})
    # More trials, or other workers, continue the same search.
    result, _ = search_images(out, data, saved.replace(budget=2))
    assert len(result.trials) == 2


def test_image_size_is_the_old_spelling_of_input_size(capsys: pytest.CaptureFixture[str]) -> None:
    from mnaszoo.cli.search import _config

    with pytest.warns(DeprecationWarning, match="use input_size="):
        config = SearchConfig().replace(image_size=64)
    assert config.latency.input_size == 64
    with pytest.warns(FutureWarning, match="use --input-size"):
        args = build_parser().parse_args(["search", "out", "--image-size", "96"])
    assert _config(args).latency.input_size == 96
    assert _config(build_parser().parse_args(["search", "out"])).latency.input_size == 224
    with pytest.raises(SystemExit):
        build_parser().parse_args(["search", "--help"])
    shown = capsys.readouterr().out
    assert "--input-size" in shown and "--image-size" not in shown  # the old spelling is hidden
    with pytest.raises(SystemExit):  # one value, so both spellings is a usage error
        build_parser().parse_args(["search", "out", "--input-size", "96", "--image-size", "96"])
