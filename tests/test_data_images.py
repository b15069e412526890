"""Image loading: every input kind, the mode rules, EXIF, and clear errors naming the item."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from mnaszoo.data.images import load_image, load_images
from mnaszoo.errors import ArgumentTypeError, InvalidImageError, MnaszooError

RNG = np.random.default_rng(0)
PICTURE = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)  # HWC: 5 rows, 7 columns
GREY = RNG.integers(0, 256, size=(5, 7), dtype=np.uint8)


def pixels(image: Image.Image) -> npt.NDArray[Any]:
    assert image.mode == "RGB"
    return np.asarray(image)


def encoded(image: Image.Image, fmt: str = "PNG", **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def over_white(colour: int, alpha: int) -> int:
    """Composite one channel on white by hand: c * a + 255 * (1 - a), alpha as a fraction."""
    return round(colour * alpha / 255 + 255 * (1 - alpha / 255))


# --- every input kind gives the same pixels --------------------------------------------------


def test_every_input_kind_gives_the_same_pixels(tmp_path: Path) -> None:
    png = encoded(Image.fromarray(PICTURE))
    path = tmp_path / "picture.png"
    path.write_bytes(png)
    chw = torch.from_numpy(PICTURE).permute(2, 0, 1)
    items: list[Any] = [
        str(path),
        path,
        png,
        Image.fromarray(PICTURE),
        Image.open(io.BytesIO(png)),  # lazily opened, not yet loaded
        PICTURE,
        PICTURE / 255.0,
        (PICTURE / 255.0).astype(np.float32),
        np.dstack([PICTURE, np.full((5, 7), 255, np.uint8)]),  # opaque RGBA
        PICTURE.astype(np.int64),
        chw,
        chw.float() / 255,
        (chw.float() / 255).half(),
        (chw.float() / 255).requires_grad_(),
    ]
    for item in items:
        np.testing.assert_array_equal(pixels(load_image(item)), PICTURE)
    batch = load_images(items)
    assert len(batch) == len(items)
    for image in batch:
        np.testing.assert_array_equal(pixels(image), PICTURE)


def test_batches_and_single_items() -> None:
    nchw = torch.from_numpy(np.stack([PICTURE, PICTURE[::-1]])).permute(0, 3, 1, 2)
    nhwc = np.stack([PICTURE, PICTURE[::-1]])
    for batch in (nchw, nhwc, (PICTURE, PICTURE[::-1])):
        first, second = load_images(batch)
        np.testing.assert_array_equal(pixels(first), PICTURE)
        np.testing.assert_array_equal(pixels(second), PICTURE[::-1])  # non-contiguous view
    (single,) = load_images(PICTURE)
    np.testing.assert_array_equal(pixels(single), PICTURE)


def test_two_dimensional_inputs_are_grey() -> None:
    expected = np.repeat(GREY[..., None], 3, axis=-1)
    for item in (GREY, GREY[..., None], GREY / 255, torch.from_numpy(GREY), Image.fromarray(GREY)):
        np.testing.assert_array_equal(pixels(load_image(item)), expected)
    np.testing.assert_array_equal(pixels(load_image(torch.from_numpy(GREY)[None])), expected)


def test_bool_arrays_are_black_and_white_like_mode_1() -> None:
    mask = GREY > 127
    expected = np.repeat(np.where(mask, 255, 0)[..., None], 3, axis=-1)
    np.testing.assert_array_equal(pixels(load_image(mask)), expected)
    np.testing.assert_array_equal(pixels(load_image(torch.from_numpy(mask))), expected)


def test_float_slack_and_rounding() -> None:
    values = np.array([[-0.001, 0.5 / 255, 1.5 / 255, 0.5, 1.001]])
    assert pixels(load_image(values))[0, :, 0].tolist() == [0, 0, 2, 128, 255]  # ties to even


def test_result_is_a_new_image_and_input_is_untouched() -> None:
    rgba = Image.fromarray(np.dstack([PICTURE, GREY]))
    before = rgba.tobytes()
    rgb = Image.fromarray(PICTURE)
    assert load_image(rgb) is not rgb
    load_image(rgba)
    assert rgba.mode == "RGBA" and rgba.tobytes() == before


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3])),
        elements=st.integers(0, 255),
    )
)
def test_uint8_arrays_round_trip_exactly(array: npt.NDArray[np.uint8]) -> None:
    expected = np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array
    np.testing.assert_array_equal(pixels(load_image(array)), expected)
    chw = torch.from_numpy(array).permute(2, 0, 1)
    np.testing.assert_array_equal(pixels(load_image(chw.float() / 255)), expected)


# --- EXIF orientation ---------------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    wide = Image.new("RGB", (16, 8), (200, 30, 30))
    wide.paste((30, 30, 200), (0, 0, 8, 8))  # left half blue
    jpeg = encoded(wide, "JPEG", exif=exif, quality=95)
    path = tmp_path / "phone.jpg"
    path.write_bytes(jpeg)
    for item in (jpeg, path, Image.open(io.BytesIO(jpeg))):
        image = load_image(item)
        assert image.size == (8, 16)
        top, bottom = pixels(image)[2, 4], pixels(image)[13, 4]
        assert top[2] > 150 and bottom[0] > 150  # the left (blue) half is now on top


# --- modes ----------------------------------------------------------------------------------


def test_mode_l_and_1_replicate() -> None:
    binary = Image.new("1", (2, 1))
    binary.putpixel((1, 0), 1)
    assert pixels(load_image(binary)).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    grey = Image.fromarray(np.array([[0, 77, 255]], np.uint8))
    assert pixels(load_image(grey))[0].tolist() == [[0] * 3, [77] * 3, [255] * 3]


def test_alpha_modes_are_composited_on_white() -> None:
    colour = np.array([[[255, 0, 0], [10, 200, 90], [90, 90, 90], [0, 0, 0]]], np.uint8)
    alpha = np.array([[0, 128, 255, 64]], np.uint8)
    rgba = np.dstack([colour, alpha])
    expected = [
        [
            [over_white(int(c), int(a)) for c in px]
            for px, a in zip(colour[0], alpha[0], strict=True)
        ]
    ]
    assert expected[0][0] == [255, 255, 255]  # hidden red under transparency does not show
    assert pixels(load_image(rgba)).tolist() == expected
    assert pixels(load_image(Image.fromarray(rgba))).tolist() == expected
    assert pixels(load_image(encoded(Image.fromarray(rgba)))).tolist() == expected
    la = Image.fromarray(np.dstack([colour[..., 1], alpha]), "LA")
    grey = [
        [[over_white(int(c), int(a))] * 3 for c, a in zip(colour[0, :, 1], alpha[0], strict=True)]
    ]
    assert pixels(load_image(la)).tolist() == grey
    premultiplied = Image.new("La", (1, 1), (100, 128)).convert("LA")  # round trip works
    assert (
        pixels(load_image(Image.new("La", (1, 1), (100, 128)))).tolist()
        == pixels(load_image(premultiplied)).tolist()
    )


def test_palette_modes() -> None:
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255]
    image = Image.new("P", (3, 1))
    image.putpalette(palette)
    for x in range(3):
        image.putpixel((x, 0), x)
    solid = [[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]
    assert pixels(load_image(image)).tolist() == solid
    image.info["transparency"] = 0  # index 0 (red) is fully transparent
    see_through = [[[255, 255, 255], [0, 255, 0], [0, 0, 255]]]
    assert pixels(load_image(image)).tolist() == see_through
    assert pixels(load_image(encoded(image))).tolist() == see_through  # via a PNG tRNS chunk
    image.info["transparency"] = bytes([255, 128, 0])  # per-entry alpha
    partial = [[[255, 0, 0], [over_white(0, 128), 255, over_white(0, 128)], [255] * 3]]
    assert pixels(load_image(encoded(image))).tolist() == partial
    pa = Image.new("PA", (1, 1))
    pa.putpalette(palette)
    pa.putpixel((0, 0), (2, 64))
    assert pixels(load_image(pa)).tolist() == [[[over_white(0, 64)] * 2 + [255]]]


def test_grey_with_transparency_key() -> None:
    image = Image.fromarray(np.array([[10, 20]], np.uint8))
    image.info["transparency"] = 10
    assert pixels(load_image(image)).tolist() == [[[255] * 3, [20] * 3]]


def test_cmyk() -> None:
    cmyk = [(10, 20, 30, 40), (0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255), (128, 64, 32, 16)]
    image = Image.new("CMYK", (len(cmyk), 1))
    for x, value in enumerate(cmyk):
        image.putpixel((x, 0), value)
    expected = [[[round((255 - c) * (255 - k) / 255) for c in v[:3]] for v in cmyk for k in [v[3]]]]
    assert pixels(load_image(image)).tolist() == expected


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    values = [0, 128, 129, 1000, 32896, 65535]
    expected = [[[round(v / 257)] * 3 for v in values]]
    assert [row[0] for row in expected[0]] == [0, 0, 1, 4, 128, 255]
    little = Image.fromarray(np.array([values], np.uint16))
    assert little.mode == "I;16"
    big = Image.frombytes("I;16B", (len(values), 1), np.array([values], ">u2").tobytes())
    wide = Image.fromarray(np.array([[*values, -5, 70000]], np.int32))
    assert wide.mode == "I"
    for image in (little, big, Image.open(io.BytesIO(encoded(little)))):
        assert pixels(load_image(image)).tolist() == expected
    assert pixels(load_image(wide)).tolist() == [[*expected[0], [0] * 3, [255] * 3]]


def test_float_mode_is_clipped_and_rounded() -> None:
    values = [-5.0, 0.4, 0.6, 127.5, 254.5, 300.0]
    image = Image.fromarray(np.array([values], np.float32))
    assert image.mode == "F"
    expected = [[[min(max(round(v), 0), 255)] * 3 for v in values]]
    assert pixels(load_image(image)).tolist() == expected
    bad = Image.fromarray(np.array([[np.nan]], np.float32))
    with pytest.raises(InvalidImageError, match="NaN"):
        load_image(bad)


@pytest.mark.parametrize("mode", Image.MODES)
def test_every_pil_mode_gives_rgb(mode: str) -> None:
    image = load_image(Image.new(mode, (3, 2)))
    assert image.mode == "RGB" and image.size == (3, 2)


# --- errors ---------------------------------------------------------------------------------


def test_error_types_fit_generic_handlers() -> None:
    assert issubclass(InvalidImageError, ValueError) and issubclass(InvalidImageError, MnaszooError)
    assert issubclass(ArgumentTypeError, TypeError)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_bytes(fmt: str) -> None:
    data = encoded(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), fmt)
    truncated = data[: len(data) // 2]
    with pytest.raises(InvalidImageError, match="image 1: cannot decode"):
        load_images([data, truncated])
    with pytest.raises(InvalidImageError, match="cannot decode"):
        load_image(Image.open(io.BytesIO(truncated)))  # opens lazily, fails on load


def test_bad_files_are_named(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    png = bytearray(encoded(Image.fromarray(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8))))
    png[100:140] = b"\xff" * 40  # inside the compressed pixel data
    corrupt.write_bytes(bytes(png))
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    cases = {
        corrupt: "cannot decode",
        text: "not an image file",
        empty: "empty",
        tmp_path: "directory",
        tmp_path / "missing.jpg": "no such file",
    }
    for path, reason in cases.items():
        for item in (path, str(path)):
            with pytest.raises(InvalidImageError, match=reason) as info:
                load_image(item)
            assert repr(str(path)) in str(info.value)
        with pytest.raises(InvalidImageError, match=reason) as info:
            load_images([PICTURE, PICTURE, path])
        assert str(info.value).startswith(f"image 2 ({str(path)!r}): ")


def test_named_item() -> None:
    with pytest.raises(InvalidImageError, match=r"^upload\.bin: not an image file"):
        load_image(b"hello", name="upload.bin")


@pytest.mark.parametrize(
    ("item", "match"),
    [
        (b"", "empty bytes"),
        (np.zeros(3, np.uint8), r"shape \(3,\); expected HxW or HxWxC"),
        (np.zeros((2, 2, 5), np.uint8), r"shape \(2, 2, 5\)"),
        (np.zeros((2, 2, 2), np.uint8), "C in 1, 3, 4"),
        (np.zeros((3, 4, 5), np.uint8), r"use \.transpose\(1, 2, 0\)"),
        (torch.zeros(5, 6, 3), r"use \.permute\(2, 0, 1\)"),
        (np.zeros((1, 2, 2, 2, 3), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "is empty"),
        (torch.zeros(3, 4, 0), "is empty"),
        (np.full((2, 2), 300, np.int64), r"\[0, 255\], got \[300, 300\]"),
        (np.full((2, 2), -1, np.int16), r"got \[-1, -1\]"),
        (np.full((2, 2), 1000, np.uint16), "65535"),
        (np.zeros((2, 2), np.complex64), "dtype complex64 is not supported"),
        (np.zeros((2, 2), object), "dtype object"),
        (np.zeros((2, 2), "U1"), "not supported"),
        (np.full((2, 2), 255.0), r"\[0, 1\], got \[255, 255\]"),
        (np.full((2, 2), 1.01), r"\[0, 1\]"),
        (np.full((2, 2), -0.1, np.float32), r"\[0, 1\]"),
        (np.array([[0.5, np.nan]]), "NaN"),
        (torch.tensor([[0.5, float("inf")]]), "NaN or infinity"),
        (torch.zeros(2, 2, dtype=torch.complex64), "not supported"),
        (torch.zeros(1, 3, 4, 4), "is a batch"),
        (Image.new("RGB", (0, 3)), "is empty"),
    ],
)
def test_bad_values(item: Any, match: str) -> None:
    with pytest.raises(InvalidImageError, match=match):
        load_image(item)
    with pytest.raises(InvalidImageError, match=f"^image 1: .*{match}"):
        load_images([PICTURE, item, PICTURE])


@pytest.mark.parametrize("item", [None, 5, {"a": 1}, [PICTURE], iter([PICTURE])])
def test_unsupported_types(item: Any) -> None:
    with pytest.raises(ArgumentTypeError):
        load_image(item)
    with pytest.raises(ArgumentTypeError, match=r"^image 1"):
        load_images((PICTURE, item))
    if item is None:
        with pytest.raises(ArgumentTypeError, match="image 0 is None"):
            load_images(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("empty", [[], (), torch.zeros(0, 3, 4, 4), np.zeros((0, 4, 4, 3))])
def test_empty_batches(empty: Any) -> None:
    with pytest.raises(InvalidImageError, match="no images"):
        load_images(empty)


@pytest.mark.parametrize(
    ("limit", "pil_behaviour"), [(60, "warns"), (40, "raises")]
)  # 10x10 = 100 pixels: above the limit, or above twice the limit
def test_decompression_bombs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int, pil_behaviour: str
) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(encoded(Image.new("RGB", (10, 10))))
    filters_before = list(warnings.filters)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning may escape either
        with pytest.raises(InvalidImageError, match=r"PIL\.Image\.MAX_IMAGE_PIXELS") as info:
            load_image(path)
        assert repr(str(path)) in str(info.value)
        with pytest.raises(InvalidImageError, match=r"^image 1: .*decompression bomb"):
            load_images([PICTURE, path.read_bytes()])
    assert list(warnings.filters) == filters_before
    if pil_behaviour == "warns":  # the case PIL itself only warns about
        with pytest.warns(Image.DecompressionBombWarning):
            Image.open(path).close()
    else:
        with pytest.raises(Image.DecompressionBombError):
            Image.open(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # a trusted file: lift the limit
    assert load_image(path).size == (10, 10)
