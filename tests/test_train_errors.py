"""Bad input to mnaszoo.train and ``mnaszoo train``: each a clear mnaszoo error (or a documented
skip), before any training, and nothing written that could be mistaken for a run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

import mnaszoo
from mnaszoo.cli.main import main as cli
from mnaszoo.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    InvalidImageError,
    UnknownModelError,
)
from mnaszoo.tasks.training.recipes import RECIPES, Recipe, check_recipe, get_recipe

from .support.train_data import TINY, image_folder


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def no_run(out: Path) -> bool:
    return not (out / "model.safetensors").exists() and not (out / "checkpoints").exists()


def test_one_class(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=1)
    with pytest.raises(InvalidArgumentError, match="at least two classes"):
        mnaszoo.train(data, tmp_path / "out", **TINY)
    assert no_run(tmp_path / "out")


def test_empty_class(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2)
    (data / "zebra").mkdir()
    (data / "zebra" / "notes.txt").write_text("no images here")
    with pytest.raises(InvalidArgumentError, match=r"'zebra'.*hold no images"):
        mnaszoo.train(data, tmp_path / "out", **TINY)
    assert no_run(tmp_path / "out")


def test_no_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        mnaszoo.train(tmp_path / "missing", tmp_path / "out", **TINY)


def test_output_inside_the_data(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2)
    with pytest.raises(InvalidArgumentError, match="inside the image folder"):
        mnaszoo.train(data, data / "run", **TINY)
    assert not (data / "run").exists()


def test_validation_classes_differ(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=3)
    val = image_folder(tmp_path / "val", classes=2)
    (val / "other").mkdir()
    (val / "class1" / "0.png").rename(val / "other" / "0.png")
    with pytest.raises(InvalidArgumentError, match=r"missing \['class2'\], unexpected \['other'\]"):
        mnaszoo.train(data, tmp_path / "out", val=val, **TINY)
    assert no_run(tmp_path / "out")


def test_class_too_small_to_split(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=1)
    with pytest.raises(InvalidArgumentError, match=r"fewer than 2 readable images.*--val"):
        mnaszoo.train(data, tmp_path / "out", **TINY)


def test_unreadable_images_are_skipped_and_listed_or_refused(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=4)
    (data / "class0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (data / "class1" / "empty.jpg").write_bytes(b"")
    with pytest.raises(InvalidImageError, match="2 images cannot be read"):
        mnaszoo.train(data, tmp_path / "refused", corrupt="error", **TINY)
    assert no_run(tmp_path / "refused")
    result = mnaszoo.train(data, tmp_path / "out", recipe="quick", epochs=1, **TINY)
    assert result.epochs == 1
    split = json.loads((tmp_path / "out" / "split.json").read_text())
    assert sorted(Path(s["path"]).name for s in split["skipped"]) == ["broken.png", "empty.jpg"]
    assert len(split["train"]) + len(split["validation"]) == 8


def test_a_class_with_only_unreadable_images(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=3)
    bad = data / "class2"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"not a png")
    (bad / "b.png").write_bytes(b"not a png")
    with pytest.raises(InvalidArgumentError, match="'class2'"):
        mnaszoo.train(data, tmp_path / "out", **TINY)


def test_models_that_cannot_be_trained(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=3)
    settings = {k: v for k, v in TINY.items() if k not in ("model", "pretrained")}
    with pytest.raises(UnknownModelError):
        mnaszoo.train(data, tmp_path / "a", model="mnasnet_z9", pretrained=False, **settings)
    with pytest.raises(ArgumentTypeError, match="model must be"):
        mnaszoo.train(data, tmp_path / "b", model=42, **settings)  # type: ignore[arg-type]
    saved = mnaszoo.save_pretrained(mnaszoo.create("mnasnet_small"), tmp_path / "saved")
    with pytest.raises(InvalidArgumentError, match=r"teacher .* predicts 1000 classes"):
        mnaszoo.train(
            data,
            tmp_path / "d",
            model="mnasnet_small",
            pretrained=False,
            teacher=str(saved),
            **settings,
        )


@pytest.mark.slow
def test_a_head_that_does_not_fit_is_replaced(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=4)
    model = mnaszoo.create("mnasnet_small", num_classes=5)
    settings = {k: v for k, v in TINY.items() if k not in ("model", "pretrained")}
    result = mnaszoo.train(
        data, tmp_path / "out", model=model, recipe="quick", epochs=1, **settings
    )
    assert result.model.num_classes == 2
    record = json.loads((tmp_path / "out" / "training.json").read_text())
    assert record["model"]["head_replaced"] is True


def test_resume_recovers_a_folder_caught_between_two_renames(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "out"
    mnaszoo.train(data, out, recipe="quick", epochs=1, **TINY)
    # A kill between "OUT -> .OUT.old-<id>" and ".OUT.new-<id> -> OUT" of a checkpoint update.
    out.rename(tmp_path / ".out.old-0123abcd")
    result = mnaszoo.train(data, out, resume=True, **TINY)
    assert result.epochs == 1 and (out / "checkpoints" / "last.pt").is_file()
    assert not (tmp_path / ".out.old-0123abcd").exists()


def test_a_second_run_into_the_same_folder(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "out"
    mnaszoo.train(data, out, recipe="quick", epochs=1, **TINY)
    with pytest.raises(InvalidArgumentError, match=r"already holds a run.*--resume.*--overwrite"):
        mnaszoo.train(data, out, recipe="quick", epochs=1, **TINY)
    (out / "mine.txt").write_text("keep me")
    mnaszoo.train(data, out, recipe="quick", epochs=1, overwrite=True, **TINY)
    assert (out / "mine.txt").read_text() == "keep me"  # overwrite removes only a run's files
    with pytest.raises(InvalidArgumentError, match="Cannot resume"):
        mnaszoo.train(data, tmp_path / "fresh", resume=True, **TINY)
    # Resuming with other data is refused.
    other = image_folder(tmp_path / "other", classes=2, per_class=4, seed=3)
    with pytest.raises(InvalidArgumentError, match="not the data the run"):
        mnaszoo.train(other, out, resume=True, **TINY)
    (out / "file").write_text("")
    with pytest.raises(InvalidArgumentError, match="is a file"):
        mnaszoo.train(data, out / "file", **TINY)


@pytest.mark.parametrize(
    "settings",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"lr": -1.0},
        {"label_smoothing": 1.0},
        {"crop_scale": (0.8, 0.2)},
        {"ema_decay": 1.0},
        {"randaugment_magnitude": 12.0},
        {"learning_rate": 0.1},
        {"crop_pct": 0.0},
        {"patience": 0},
        {"crop_ratio": (2.0, 1.0)},
    ],
)
def test_bad_settings_are_refused_before_anything_runs(
    tmp_path: Path, settings: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgumentError):
        mnaszoo.train(tmp_path / "not-even-read", tmp_path / "out", **settings)
    assert not (tmp_path / "out").exists()


def test_presets_are_valid_and_ordered() -> None:
    for recipe in RECIPES.values():
        assert check_recipe(recipe) is recipe
    quick, standard, strong = (get_recipe(n) for n in ("quick", "standard", "strong"))
    assert quick.epochs < standard.epochs < strong.epochs
    assert quick.ema_decay is None and standard.ema_decay and strong.ema_decay
    assert strong.randaugment_magnitude > standard.randaugment_magnitude
    with pytest.raises(InvalidArgumentError, match="Did you mean 'strong'"):
        get_recipe("stronk")
    assert dataclasses.replace(standard, epochs=3) == standard.replace(epochs=3, lr=None)
    assert isinstance(get_recipe(Recipe(epochs=2)), Recipe)


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = image_folder(tmp_path / "data", classes=1)
    code = cli(
        ["train", str(data), str(tmp_path / "out"), "-m", "mnasnet_small", "--no-pretrained"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("mnaszoo: error: ") and "at least two classes" in err
    assert "Traceback" not in err
    assert cli(["train", str(data), str(tmp_path / "out"), "--epochs", "0"]) == 2
    assert cli(["train", str(data), str(tmp_path / "out"), "--recipe", "huge"]) == 2


def _cell(value: object) -> str:
    if value is None:
        return "off"
    if isinstance(value, tuple):
        return "-".join(f"{v:g}" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_the_docs_table_is_the_presets() -> None:
    page = (Path(__file__).parents[1] / "docs" / "train.md").read_text(encoding="utf-8")
    table = page.split("<!-- recipes-table")[1].split("\n\n")[0]
    rows = {
        line.split("|")[1].strip().strip("`"): [c.strip() for c in line.split("|")[2:5]]
        for line in table.splitlines()
        if line.startswith("| `")
    }
    fields = [f.name for f in dataclasses.fields(Recipe) if f.name != "name"]
    assert sorted(rows) == sorted(fields)
    for name in fields:
        expected = [_cell(getattr(RECIPES[r], name)) for r in ("quick", "standard", "strong")]
        assert rows[name] == expected, name


def test_a_folder_with_pretrained_false_trains_its_architecture_from_scratch(
    tmp_path: Path,
) -> None:
    """A searched network has no registry name: ``pretrained=False`` on its folder gives its
    architecture freshly initialised, not its weights (here all 0.5 in the stem, which a run
    of a few steps would leave almost uniform)."""
    data = image_folder(tmp_path / "data", classes=2, per_class=3)
    settings = {k: v for k, v in TINY.items() if k not in ("model", "pretrained")}
    model = mnaszoo.create("mnasnet_small", width_mult=0.5, num_classes=2)
    with torch.no_grad():
        model.stem.conv.weight.fill_(0.5)
    saved = mnaszoo.save_pretrained(model, tmp_path / "saved")
    result = mnaszoo.train(
        data, tmp_path / "out", model=str(saved), pretrained=False, epochs=1, **settings
    )
    trained = mnaszoo.from_pretrained(tmp_path / "out")
    assert trained.config.spec == model.config.spec
    assert trained.config.width_mult == 0.5
    assert float(trained.stem.conv.weight.detach().std()) > 0.05  # fresh, not the uniform 0.5
    record = json.loads((tmp_path / "out" / "training.json").read_text(encoding="utf-8"))
    assert record["model"]["pretrained"] is False
    assert result.epochs == 1


def test_a_run_refused_before_its_first_write_leaves_no_output_folder(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=3)
    settings = {k: v for k, v in TINY.items() if k not in ("model", "pretrained")}
    with pytest.raises(UnknownModelError):
        mnaszoo.train(data, tmp_path / "new", model="mnasnet_z9", pretrained=False, **settings)
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()  # a folder the user made stays, even empty
    with pytest.raises(UnknownModelError):
        mnaszoo.train(data, tmp_path / "mine", model="mnasnet_z9", pretrained=False, **settings)
    assert (tmp_path / "mine").is_dir()
