"""A checkpoint's config.json is validated field by field at load, before anything is built
from it; save_pretrained refuses labels that could not be loaded back or used."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import mnaszoo
from mnaszoo._validate import check_labels
from mnaszoo.errors import ArgumentTypeError, CorruptCheckpointError, InvalidArgumentError


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=3)
    folder = tmp_path_factory.mktemp("ckpt") / "run"
    return mnaszoo.save_pretrained(model, folder, labels=["ant", "bee", "cat"])


def _edited(saved: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    folder = tmp_path / "edited"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    config = json.loads((saved / "config.json").read_text())
    config["preprocessing"] = {
        "input_size": 64,
        "crop_pct": 0.875,
        "resize_size": None,
        "interpolation": "bicubic",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _set(*keys: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        target = config
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def test_num_classes_of_ten_million_is_refused_before_any_allocation(
    saved: Path, tmp_path: Path
) -> None:
    folder = _edited(saved, tmp_path, _set("architecture", "num_classes", value=10**7))
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(CorruptCheckpointError, match=r"num_classes must be <= 100000"):
        mnaszoo.from_pretrained(folder)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - start < 5 and peak < 50e6
    with pytest.raises(InvalidArgumentError, match="num_classes must be <= 100000"):
        mnaszoo.create("mnasnet_small", num_classes=10**7)
    with pytest.raises(InvalidArgumentError, match="in_chans must be <= 1024"):
        mnaszoo.create("mnasnet_small", in_chans=10**6)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("input_size", -224, "'input_size' must be 1 to 2048 pixels, got -224"),
        ("input_size", 10**9, "'input_size' must be 1 to 2048 pixels"),
        ("input_size", 0, "'input_size' must be 1 to 2048"),
        ("input_size", 22.5, "must be int"),
        ("std", [0.229, 0, 0.225], "'std' must be > 0 for every channel"),
        ("std", [0.2, -0.1, 0.2], "'std' must be > 0"),
        ("mean", [0.5, float("nan"), 0.5], "'mean' must be 3 finite numbers"),
        ("mean", [0.5, 0.5], "'mean' must be 3 numbers"),
        ("crop_pct", 0.0, "'crop_pct' must be a number > 0"),
        ("crop_pct", -1, "'crop_pct' must be a number > 0"),
        ("crop_pct", float("inf"), "'crop_pct' must be a number > 0"),
        ("crop_pct", 0.0001, "resizes to 640000 pixels"),
        ("interpolation", "nearest-ish", "'interpolation' must be one of"),
    ],
)
def test_every_preprocessing_field_is_checked_at_load(
    saved: Path, tmp_path: Path, key: str, value: object, message: str
) -> None:
    folder = _edited(saved, tmp_path, _set("preprocessing", key, value=value))
    with pytest.raises(CorruptCheckpointError, match=message) as info:
        mnaszoo.from_pretrained(folder)
    assert "config.json" in str(info.value) and "non-finite" not in str(info.value)


def test_a_zero_and_a_huge_resize_are_refused(saved: Path, tmp_path: Path) -> None:
    for resize, message in ((0, "must be 1 to 8192 pixels, got 0"), (10**6, "8192")):

        def edit(config: dict[str, Any], resize: int = resize) -> None:
            config["preprocessing"].update(crop_pct=None, resize_size=resize)

        folder = _edited(saved, tmp_path / str(resize), edit)
        with pytest.raises(CorruptCheckpointError, match=message):
            mnaszoo.from_pretrained(folder)


def test_std_zero_in_a_recipe_gets_its_own_message() -> None:
    with pytest.raises(InvalidArgumentError, match=r"'std' must be > 0 .* infinity"):
        mnaszoo.Preprocessing(
            input_size=224, interpolation="bilinear", mean=(0, 0, 0), std=(0, 1, 1), crop_pct=1
        )


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (["ant", 7, "cat"], InvalidArgumentError, "label 1 is int 7"),
        (["ant", None, "cat"], InvalidArgumentError, "label 1 is NoneType"),
        (["ant", "", "cat"], InvalidArgumentError, "label 1 is ''"),
        (["ant", "   ", "cat"], InvalidArgumentError, "non-empty"),
        (["ant", "b\nee", "cat"], InvalidArgumentError, "on one line"),
        (["ant", "ant", "cat"], InvalidArgumentError, "labels 0 and 1 are both 'ant'"),
        (["ant", "bee"], InvalidArgumentError, "has 2 names but the model has 3"),
        ("ant bee cat", ArgumentTypeError, "must be a list of class names"),
    ],
)
def test_save_pretrained_refuses_labels_it_could_not_use(
    tmp_path: Path, labels: object, error: type[Exception], message: str
) -> None:
    model = mnaszoo.create("mnasnet_small", num_classes=3)
    with pytest.raises(error, match=message):
        mnaszoo.save_pretrained(model, tmp_path / "run", labels=labels)  # type: ignore[arg-type]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["ant", 7, "cat"], "label 1 is int 7"),
        (["ant", "ant", "cat"], "labels 0 and 1 are both 'ant'"),
        (["ant", "", "cat"], "label 1 is ''"),
        ({"0": "ant"}, "expected a list of class names"),
    ],
)
def test_bad_labels_in_a_config_are_refused_at_load(
    saved: Path, tmp_path: Path, labels: object, message: str
) -> None:
    folder = _edited(saved, tmp_path, _set("labels", value=labels))
    with pytest.raises(CorruptCheckpointError, match=message):
        mnaszoo.from_pretrained(folder)


def test_check_labels_accepts_sound_labels() -> None:
    assert check_labels(("a", "b b", "ç"), 3) == ("a", "b b", "ç")
    assert check_labels([], 0) == ()
