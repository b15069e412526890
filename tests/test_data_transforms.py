"""Preprocessing parity: mnaszoo's transforms against tensors made by timm's and torchvision's own
eval pipelines on real photographs (tests/fixtures/preprocess, written by
tests/fixtures/reference/make_preprocess_fixtures.py with timm 1.0.31 / torchvision 0.29.1).

Tolerance: exact. Both sides resize with PIL and normalise in float32 in the same order, so any
difference is a bug; for scale, one grey level is 0.0175 after normalisation and the timm and
torchvision pipelines differ from each other by up to 0.63 on the same photo.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mnaszoo
from mnaszoo.data.transforms import make_transform
from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError

FIXTURES = Path(__file__).parent / "fixtures"
INDEX = json.loads((FIXTURES / "preprocess" / "index.json").read_text())
# Which manifest entry each recorded publisher pipeline belongs to (and the input_size used).
PIPELINES = {
    "timm_224": ("mnasnet_a1.rmsp_in1k", None),
    "tv_256_224": ("mnasnet_b1.tv_in1k", None),
    "tv_232_224": ("mnasnet_b1_130.tv_in1k", None),
    "timm_160": ("mnasnet_a1.rmsp_in1k", 160),
}
CASES = [(photo, pipeline) for photo in INDEX["photos"] for pipeline in PIPELINES]


@pytest.mark.parametrize(("photo", "pipeline"), CASES)
def test_matches_the_publisher_pipeline(photo: str, pipeline: str) -> None:
    meta = INDEX["photos"][photo]
    expected = np.load(FIXTURES / "preprocess" / meta["npz"], allow_pickle=False)[pipeline]
    weights_id, input_size = PIPELINES[pipeline]
    transform = make_transform(weights_id, input_size=input_size)
    actual = transform(Path(__file__).parents[1] / meta["file"])
    assert actual.dtype == torch.float32
    assert actual.shape == expected.shape
    assert torch.equal(actual, torch.from_numpy(expected)), (
        f"max |diff| {float((actual - torch.from_numpy(expected)).abs().max()):.3g}"
    )


def test_model_and_record_give_the_same_transform() -> None:
    record = mnaszoo.get_weights("mnasnet_b1_075.tv_in1k")
    model = mnaszoo.create("mnasnet_b1_075")
    model.weights_info = record
    assert make_transform(model) == make_transform(record) == make_transform(record.id)
    assert make_transform(model).preprocessing.resize == 232
    # Without weights: the MnasNet convention (ImageNet statistics, bicubic, crop 0.875).
    assert make_transform(mnaszoo.create("mnasnet_small")).preprocessing.resize == 256


def test_input_size_keeps_the_crop_ratio() -> None:
    assert make_transform("mnasnet_b1_130.tv_in1k", input_size=224).preprocessing.resize == 232
    assert make_transform("mnasnet_b1_130.tv_in1k", input_size=320).preprocessing.resize == 331
    transform = make_transform("mnasnet_a1", input_size=96)
    assert transform(np.zeros((50, 80, 3), np.uint8)).shape == (3, 96, 96)


def test_small_images_are_padded_like_torchvision() -> None:
    # Shorter side 256 after the resize, so no padding occurs in eval; force it with input_size
    # larger than the resize via a custom recipe.
    recipe = mnaszoo.Preprocessing(
        input_size=8,
        interpolation="bilinear",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        resize_size=4,
    )
    out = make_transform(recipe)(np.full((4, 4, 3), 255, np.uint8))
    # torchvision pads (8 - 4) // 2 = 2 black pixels before, 2 after.
    assert out[0, 2:6, 2:6].eq(1).all() and out[0, :2].eq(0).all() and out[0, 6:].eq(0).all()


def test_train_transform_is_random_and_seeded() -> None:
    transform = make_transform("mnasnet_a1", train=True)
    photo = Image.open(FIXTURES / "images" / "chelsea.jpg")
    random.seed(0)
    first = transform(photo)
    random.seed(0)
    assert torch.equal(transform(photo), first)
    assert first.shape == (3, 224, 224)
    assert not torch.equal(transform(photo), first)
    assert "RandomResizedCrop(224" in repr(transform)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="input_size must be >= 16"):
        make_transform("mnasnet_a1", input_size=8)
    with pytest.raises(ArgumentTypeError, match="make_transform takes a model"):
        make_transform(3.5)
    with pytest.raises(mnaszoo.UnknownWeightsError):
        make_transform("mnasnet_d1")
