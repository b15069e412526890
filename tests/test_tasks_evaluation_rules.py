"""``mnaszoo evaluate``: class folders matched by name first, the model's own name reported, and
one-channel models evaluated like predict feeds them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mnaszoo
from mnaszoo.cli.main import main
from mnaszoo.errors import InvalidArgumentError


def _tree(root: Path, names: list[str]) -> Path:
    for index, name in enumerate(names):
        (root / name).mkdir(parents=True)
        Image.fromarray(np.full((40, 40, 3), 40 * index, dtype=np.uint8)).save(
            root / name / "1.png"
        )
    return root


def _saved(tmp_path: Path, labels: list[str], **kwargs: object) -> Path:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=len(labels), **kwargs)
    return mnaszoo.save_pretrained(model, tmp_path / "ckpt", labels=labels)


def test_folders_partly_named_after_classes_are_refused_not_scored_by_order(
    tmp_path: Path,
) -> None:
    checkpoint = _saved(tmp_path, ["cat", "dog", "bird"])
    # As many folders as classes; 'bird' and 'cat' match by name, 'fish' does not. Sorted order
    # would score 'bird' as class 0 ('cat') and 'cat' as class 1 ('dog').
    folder = _tree(tmp_path / "data", ["bird", "cat", "fish"])
    with pytest.raises(InvalidArgumentError, match="2 of the 3 class folders") as info:
        mnaszoo.evaluate("mnasnet_small", folder, checkpoint=checkpoint, progress=False)
    assert "'fish'" in str(info.value) and "Rename or remove" in str(info.value)


def test_named_folders_are_matched_by_name_and_the_rule_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = _saved(tmp_path, ["cat", "dog", "bird"])
    folder = _tree(tmp_path / "data", ["bird", "cat", "dog"])
    result = mnaszoo.evaluate("mnasnet_small", folder, checkpoint=checkpoint, progress=False)
    assert result.mapping == "labels"
    assert [(c.name, c.index) for c in result.per_class] == [("bird", 2), ("cat", 0), ("dog", 1)]
    assert "matched by name (the model's class names)" in result.summary()
    code = main(["evaluate", str(folder), "-c", str(checkpoint), "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "folders matched to classes by name (the model's class names)" in out
    other = _tree(tmp_path / "other", ["x", "y", "z"])
    assert main(["evaluate", str(other), "-c", str(checkpoint), "-q"]) == 0
    assert "by sorted folder order (no folder is named after a class)" in capsys.readouterr().out


def test_a_checkpoint_directory_is_reported_by_its_own_architecture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_b1_050", num_classes=2)
    checkpoint = mnaszoo.save_pretrained(model, tmp_path / "ckpt", labels=["a", "b"])
    folder = _tree(tmp_path / "data", ["a", "b"])
    # --model keeps its default (mnasnet_a1): the checkpoint is not that model.
    assert main(["evaluate", str(folder), "-c", str(checkpoint), "-q", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"model": "mnasnet_b1_050"' in out and "mnasnet_a1" not in out


def test_a_one_channel_model_is_evaluated_on_grey_images(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=2, in_chans=1).eval()
    folder = _tree(tmp_path / "data", ["a", "b"])
    result = mnaszoo.evaluate(model, folder, progress=False, device="cpu")
    assert result.num_images == 2
    # The same scores predict gives (it feeds a one-channel model the mean of the RGB planes).
    for item in result.per_class:
        first = mnaszoo.predict(str(folder / item.name / "1.png"), model, topk=1)[0]
        assert (first.index == item.index) == bool(item.top1_correct)
