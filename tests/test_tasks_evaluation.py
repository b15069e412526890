"""``mnaszoo.evaluate`` on small ImageFolder trees cut from the real test photographs.

Most tests use a model whose answer is known in advance (it ranks classes by the dominant colour
channel of the image), so top-1 / top-5 can be checked exactly; one test checks a real MnasNet
against a hand loop over the same files with ``mnaszoo.predict``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageOps
from torch import nn

import mnaszoo
from mnaszoo.data.labels import imagenet_labels, imagenet_synsets
from mnaszoo.errors import InvalidArgumentError, InvalidImageError
from mnaszoo.tasks.evaluation import EvaluationResult, evaluate
from mnaszoo.tasks.prediction import predict

PHOTOS = sorted((Path(__file__).parent / "fixtures" / "images").glob("*.jpg"))
RED, GREEN, BLUE = 0, 1, 2


class ColourNet(nn.Module):
    """Scores from a fixed table, chosen by the image's dominant (normalised) colour channel."""

    def __init__(self, table: torch.Tensor, weights_info: object = None) -> None:
        super().__init__()
        self.table: torch.Tensor
        self.register_buffer("table", table)
        self.scale = nn.Parameter(torch.ones(()))
        self.num_classes = int(table.shape[1])
        self.weights_info = weights_info

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = x.mean(dim=(2, 3)).argmax(dim=1)
        return self.table[channel] * self.scale


def _ranking_table(num_classes: int, rankings: Sequence[Sequence[int]]) -> torch.Tensor:
    table = torch.zeros(3, num_classes)
    for channel, ranked in enumerate(rankings):
        for rank, index in enumerate(ranked):
            table[channel, index] = 10.0 - rank
    return table


# ImageNet classes 0, 1, 2 (tench, goldfish, great white shark). Red ranks class 0 first; green
# ranks class 1 first and class 2 second; blue ranks none of them in its top 5.
TOP5 = ([0, 10, 11, 12, 13], [1, 2, 20, 21, 22], [30, 31, 32, 33, 34])
# class position -> (colour, file name) of its images
LAYOUT = {
    0: [(RED, "a.jpg"), (RED, "b.PNG"), (GREEN, "c.jpeg")],  # top-1 2, top-5 2
    1: [(GREEN, "a.bmp"), (GREEN, "b.webp"), (RED, "c.JPG")],  # top-1 2, top-5 2
    2: [(GREEN, "a.tif"), (BLUE, "b.png")],  # top-1 0, top-5 1 (green ranks class 2 second)
}


def _tinted_photo(index: int, colour: int) -> Image.Image:
    """A crop (and, for odd indices, a mirror) of a real photo, in one colour channel."""
    photo = Image.open(PHOTOS[index % len(PHOTOS)]).convert("L")
    width, height = photo.size
    box = (index * 7 % 40, index * 11 % 40, width - index * 13 % 40, height - index * 5 % 40)
    grey = photo.crop(box)
    if index % 2:
        grey = ImageOps.mirror(grey)
    black = Image.new("L", grey.size)
    channels = [black, black, black]
    channels[colour] = grey
    return Image.merge("RGB", channels)


def _make_tree(root: Path, names: Sequence[str]) -> Path:
    count = 0
    for position, images in LAYOUT.items():
        folder = root / names[position]
        folder.mkdir(parents=True)
        for colour, filename in images:
            _tinted_photo(count, colour).save(folder / filename)
            count += 1
    return root


@pytest.fixture
def synset_tree(tmp_path: Path) -> Path:
    return _make_tree(tmp_path / "val", imagenet_synsets()[:3])


@pytest.fixture
def colour_net() -> ColourNet:
    return ColourNet(_ranking_table(1000, TOP5))


def _stable(result: EvaluationResult) -> dict[str, object]:
    data = result.to_dict()
    del data["seconds"], data["images_per_second"]
    return data


def test_synset_folders_give_exact_accuracy(synset_tree: Path, colour_net: ColourNet) -> None:
    result = evaluate(colour_net, synset_tree, batch_size=3, progress=False)
    assert (result.top1_correct, result.top5_correct, result.num_images) == (4, 5, 8)
    assert result.top1 == 50.0 and result.top5 == 62.5
    assert result.mapping == "synsets" and result.num_classes_seen == 3 and result.topk == 5
    assert [(c.name, c.index, c.label) for c in result.per_class] == [
        (imagenet_synsets()[i], i, imagenet_labels()[i]) for i in range(3)
    ]
    assert [(c.images, c.top1_correct, c.top5_correct) for c in result.per_class] == [
        (3, 2, 2),
        (3, 2, 2),
        (2, 0, 1),
    ]
    assert result.per_class[2].top5 == 50.0
    assert result.preprocessing["resize"] == 256 and result.preprocessing["input_size"] == 224
    assert json.loads(result.to_json()) == result.to_dict()
    assert result.seconds > 0 and result.images_per_second > 0


def test_label_name_folders(tmp_path: Path, synset_tree: Path) -> None:
    # The model's labels come from its weights record (ImageNet's class names).
    net = ColourNet(_ranking_table(1000, TOP5), weights_info=mnaszoo.get_weights("mnasnet_b1"))
    tree = _make_tree(tmp_path / "named", imagenet_labels()[:3])
    by_name = evaluate(net, tree, progress=False)
    by_synset = evaluate(net, synset_tree, progress=False)
    assert by_name.mapping == "labels"
    assert (by_name.top1_correct, by_name.top5_correct) == (4, 5)
    assert [c.name for c in by_name.per_class] == sorted(imagenet_labels()[:3])  # folder order
    counts = {
        c.index: (c.label, c.images, c.top1_correct, c.top5_correct) for c in by_name.per_class
    }
    assert counts == {
        c.index: (c.label, c.images, c.top1_correct, c.top5_correct) for c in by_synset.per_class
    }
    assert by_name.weights == "mnasnet_b1.rmsp_in1k"


def test_folder_order_is_the_class_index_when_counts_match(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Three classes: red ranks 0 > 1 > 2, green 1 > 2 > 0, blue 2 > 0 > 1.
    net = ColourNet(_ranking_table(3, ([0, 1, 2], [1, 2, 0], [2, 0, 1])))
    tree = _make_tree(tmp_path / "pets", ["cat", "dog", "zebra"])
    with caplog.at_level(logging.INFO, logger="mnaszoo"):
        result = evaluate(net, tree, progress=False)
    assert "sorted order as the class index ('cat' is class 0)" in caplog.text
    assert result.mapping == "order" and result.topk == 3
    # class 2 (zebra): a green image (ranked 2nd) and a blue one (ranked 1st)
    assert (result.top1_correct, result.top5_correct) == (5, 8)


def test_limit_takes_every_class_first(synset_tree: Path, colour_net: ColourNet) -> None:
    result = evaluate(colour_net, synset_tree, limit=3, progress=False)
    assert result.num_images == 3 and result.num_classes_seen == 3
    # the first image of each class: red (hit), green (hit), green (top-5 hit)
    assert (result.top1_correct, result.top5_correct) == (2, 3)


def test_workers_give_the_same_result(synset_tree: Path, colour_net: ColourNet) -> None:
    serial = evaluate(colour_net, synset_tree, batch_size=3, num_workers=0, progress=False)
    parallel = evaluate(colour_net, synset_tree, batch_size=3, num_workers=2, progress=False)
    assert _stable(parallel) == _stable(serial)


def test_a_real_model_agrees_with_predict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small").eval()
    files = []
    for index in range(6):
        path = tmp_path / f"photo{index}.png"
        _tinted_photo(index, index % 3).convert("RGB").save(path)
        files.append(path)
    ranked = [[p.index for p in row] for row in predict(files, model, topk=1000)]
    # Put each image in the folder of its top-1, its 3rd-ranked or its 100th-ranked class.
    rank_of_folder = [0, 2, 99, 0, 4, 500]
    synsets = imagenet_synsets()
    root = tmp_path / "val"
    expected_top1 = expected_top5 = 0
    for path, ranks, rank in zip(files, ranked, rank_of_folder, strict=True):
        folder = root / synsets[ranks[rank]]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
        expected_top1 += rank == 0
        expected_top5 += rank < 5
    result = evaluate(model, root, batch_size=4, progress=False)
    assert result.num_images == 6
    assert (result.top1_correct, result.top5_correct) == (expected_top1, expected_top5) == (2, 4)
    assert result.model == "mnasnet_small" and result.weights is None


def test_a_corrupt_image_is_named(synset_tree: Path, colour_net: ColourNet) -> None:
    bad = synset_tree / imagenet_synsets()[1] / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for workers in (0, 2):
        with pytest.raises(InvalidImageError, match=r"broken\.jpg") as info:
            evaluate(colour_net, synset_tree, num_workers=workers, progress=False)
        assert str(info.value).splitlines()[0].startswith(repr(str(bad)))


def test_truncated_image_is_not_skipped(synset_tree: Path, colour_net: ColourNet) -> None:
    good = synset_tree / imagenet_synsets()[0] / "a.jpg"
    cut = good.with_name("cut.jpg")
    cut.write_bytes(good.read_bytes()[:600])
    with pytest.raises(InvalidImageError, match=r"cut\.jpg"):
        evaluate(colour_net, synset_tree, progress=False)


def test_layouts_that_cannot_be_used(tmp_path: Path, colour_net: ColourNet) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        evaluate(colour_net, tmp_path / "missing", progress=False)
    flat = tmp_path / "flat"
    flat.mkdir()
    _tinted_photo(0, RED).save(flat / "x.jpg")
    with pytest.raises(InvalidArgumentError, match=r"no class subfolders \(it holds 1 images"):
        evaluate(colour_net, flat, progress=False)
    with pytest.raises(InvalidArgumentError, match="is not a directory"):
        evaluate(colour_net, flat / "x.jpg", progress=False)
    empty = tmp_path / "empty"
    (empty / imagenet_synsets()[0]).mkdir(parents=True)
    (empty / imagenet_synsets()[0] / "notes.txt").write_text("no images here")
    with pytest.raises(InvalidArgumentError, match="1 class folders but no images"):
        evaluate(colour_net, empty, progress=False)
    odd = _make_tree(tmp_path / "odd", ["cat", "dog", "gnu"])
    with pytest.raises(InvalidArgumentError, match="Accepted layouts") as info:
        evaluate(colour_net, odd, progress=False)
    assert "to the model's 1000 classes" in str(info.value) and "synset" in str(info.value)
    # 'zebra' is one of the model's class names: the others must be too.
    partial = _make_tree(tmp_path / "partial", ["cat", "dog", "zebra"])
    with pytest.raises(InvalidArgumentError, match="1 of the 3 class folders") as info:
        evaluate(colour_net, partial, progress=False)
    assert "'cat', 'dog'" in str(info.value) and "Rename or remove" in str(info.value)


def test_hidden_and_other_files_are_ignored(synset_tree: Path, colour_net: ColourNet) -> None:
    folder = synset_tree / imagenet_synsets()[2]
    (folder / "._a.jpg").write_bytes(b"AppleDouble metadata")
    (folder / "readme.txt").write_text("not an image")
    (synset_tree / ".ipynb_checkpoints").mkdir()
    nested = folder / "more"
    nested.mkdir()
    _tinted_photo(9, GREEN).save(nested / "d.jpg")  # searched recursively: a top-5 hit
    result = evaluate(colour_net, synset_tree, progress=False)
    assert result.num_images == 9 and result.num_classes_seen == 3
    assert (result.top1_correct, result.top5_correct) == (4, 6)


def test_equal_class_names_are_ambiguous(tmp_path: Path) -> None:
    record = dataclasses.replace(
        mnaszoo.get_weights("mnasnet_b1"), labels=("cat", "cat", "dog"), num_classes=3
    )
    net = ColourNet(_ranking_table(3, ([0, 1, 2], [1, 2, 0], [2, 0, 1])), weights_info=record)
    tree = tmp_path / "pets"
    for name in ("cat", "dog"):
        (tree / name).mkdir(parents=True)
        _tinted_photo(0, RED).save(tree / name / "x.jpg")
    with pytest.raises(InvalidArgumentError, match=r"'cat' matches the model's classes \[0, 1\]"):
        evaluate(net, tree, progress=False)


def test_bad_arguments(synset_tree: Path, colour_net: ColourNet) -> None:
    with pytest.raises(InvalidArgumentError, match="batch_size must be >= 1"):
        evaluate(colour_net, synset_tree, batch_size=0)
    with pytest.raises(InvalidArgumentError, match="apply to a model name"):
        evaluate(colour_net, synset_tree, weights="tv_in1k")
    headless = mnaszoo.create("mnasnet_small", num_classes=0)
    with pytest.raises(InvalidArgumentError, match="no classifier"):
        evaluate(headless, synset_tree)
