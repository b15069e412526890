"""``mnaszoo.predict`` end to end against the loopback Hub (synthetic weights, real photos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mnaszoo
from mnaszoo.data.labels import imagenet_labels
from mnaszoo.data.transforms import make_transform
from mnaszoo.errors import InvalidArgumentError, InvalidImageError
from mnaszoo.tasks.prediction import Prediction, clear_model_cache, predict

from .support.served import Served

PHOTOS = sorted((Path(__file__).parent / "fixtures" / "images").glob("*.jpg"))


@pytest.fixture(autouse=True)
def _fresh_models() -> None:
    clear_model_cache()  # each test has its own server and cache


def test_single_and_batched_calls_agree(served: Served) -> None:
    # The torch backend: the batch-size contract is torch's (the onnxruntime tests cover ORT).
    single = [predict(photo, "mnasnet_small", backend="torch") for photo in PHOTOS]
    batched = predict(PHOTOS, "mnasnet_small", backend="torch")
    assert batched == single
    assert all(isinstance(p, Prediction) for p in single[0])
    faster = predict(PHOTOS, "mnasnet_small", batch_size=len(PHOTOS), backend="torch")
    for slow_row, fast_row in zip(single, faster, strict=True):
        assert [p.index for p in slow_row] == [p.index for p in fast_row]
        assert [p.score for p in slow_row] == pytest.approx([p.score for p in fast_row], abs=1e-5)


def test_predictions_are_the_model_on_the_recipe(served: Served) -> None:
    model = mnaszoo.create("mnasnet_b1", pretrained="tv_in1k")
    result = predict(PHOTOS[0], "mnasnet_b1", weights="tv_in1k", topk=3, backend="torch")
    with torch.no_grad():
        probabilities = model(make_transform(model)(PHOTOS[0])[None]).softmax(1)[0]
    scores, indices = probabilities.topk(3)
    assert [p.index for p in result] == indices.tolist()
    assert [p.score for p in result] == pytest.approx(scores.tolist(), abs=1e-6)
    assert [p.label for p in result] == [imagenet_labels()[i] for i in indices.tolist()]
    assert result[0].score >= result[1].score >= result[2].score


def test_every_input_kind_gives_the_same_answer(served: Served) -> None:
    path = PHOTOS[0]
    picture = Image.open(path).convert("RGB")
    array = np.asarray(picture)
    inputs = [
        str(path),
        path,
        path.read_bytes(),
        picture,
        array,
        torch.from_numpy(array.copy()).permute(2, 0, 1),
    ]
    results = predict(inputs, "mnasnet_small")
    assert all(r == results[0] for r in results)


def test_models_are_cached(served: Served) -> None:
    predict(PHOTOS[0], "mnasnet_small")
    served.server.clear_log()
    predict(PHOTOS[1], "mnasnet_small")
    assert served.server.requests == []


def test_bad_item_fails_before_the_model_runs(served: Served, tmp_path: Path) -> None:
    model = mnaszoo.create("mnasnet_small", pretrained=True)
    calls: list[int] = []
    model.register_forward_hook(lambda *args: calls.append(1))
    # Missing, empty and non-image files are found by a cheap check before anything runs.
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(InvalidImageError, match=r"notes\.jpg"):
        predict([PHOTOS[0], text, PHOTOS[1]], model)
    assert calls == []
    # Pixels are decoded one batch at a time (bounded memory): a file damaged inside stops the
    # call at its batch, naming it, and nothing is returned.
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(PHOTOS[0].read_bytes()[:2000])
    with pytest.raises(InvalidImageError, match=r"broken\.jpg"):
        predict([PHOTOS[0], broken, PHOTOS[1]], model)
    assert len(calls) == 1


def test_class_file_and_topk(served: Served, tmp_path: Path) -> None:
    model = mnaszoo.create("mnasnet_small", pretrained=True, num_classes=3)
    names = tmp_path / "classes.txt"
    names.write_text("cat\ndog\n\nfox\n")
    result = predict(PHOTOS[0], model, class_file=names, topk=3)
    assert sorted(p.label for p in result) == ["cat", "dog", "fox"]
    assert sum(p.score for p in result) == pytest.approx(1.0, abs=1e-5)
    names.write_text("cat\ndog\n")
    with pytest.raises(InvalidArgumentError, match="has 2 labels but the model has 3 classes"):
        predict(PHOTOS[0], model, class_file=names)
    with pytest.raises(InvalidArgumentError, match=r"topk must be <= 3"):
        predict(PHOTOS[0], model, topk=4)


def test_checkpoint_directory(served: Served, tmp_path: Path) -> None:
    model = mnaszoo.create("mnasnet_small", pretrained=True, num_classes=2)
    mnaszoo.save_pretrained(model, tmp_path / "run", labels=["no", "yes"])
    result = predict(
        PHOTOS[0], "mnasnet_small", checkpoint=tmp_path / "run", topk=2, backend="torch"
    )
    assert {p.label for p in result} == {"no", "yes"}
