"""mnaszoo.draw, checked against the paper's Figure 7 and timm's widths."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import mnaszoo
from mnaszoo.cli.main import main

SVG = "{http://www.w3.org/2000/svg}"

# Figure 7(a) of the MnasNet paper (arXiv 1807.11626v3), read left to right: each box's label,
# its repeats and the feature map after it.
FIGURE_7A = [
    ("Conv3x3", 1, "112x112", "x32"),
    ("SepConv (k3x3)", 1, "112x112", "x16"),
    ("MBConv6 (k3x3)", 2, "56x56", "x24"),
    ("MBConv3 (k5x5), SE", 3, "28x28", "x40"),
    ("MBConv6 (k3x3)", 4, "14x14", "x80"),
    ("MBConv6 (k3x3), SE", 2, "14x14", "x112"),
    ("MBConv6 (k5x5), SE", 3, "7x7", "x160"),
    ("MBConv6 (k3x3)", 1, "7x7", "x320"),
]


def _boxes(svg: str) -> list[tuple[str, int, str, str]]:
    """(label, repeats, size, channels) of every box, read back from the SVG's text."""
    root = ET.fromstring(svg)
    texts = [(t.text or "", t.attrib) for t in root.iter(f"{SVG}text")]
    labels = [(text, float(a["x"])) for text, a in texts if "transform" in a]
    out = []
    for label, x in labels:
        near = [(t, a) for t, a in texts if "transform" not in a and abs(float(a["x"]) - x) < 1]
        bold = [t for t, a in near if a.get("font-weight") == "bold"]
        size = next(t for t, a in near if t[:1].isdigit())
        channels = max((float(a["y"]), t) for t, a in near)[1]
        out.append((label, int(bold[0][1:]) if bold else 1, size, channels))
    return out


def test_a1_is_figure_7a() -> None:
    boxes = _boxes(mnaszoo.draw("mnasnet_a1"))
    assert boxes[: len(FIGURE_7A)] == FIGURE_7A
    assert boxes[len(FIGURE_7A) :] == [
        ("Conv1x1", 1, "7x7", "x1280"),
        ("Pooling, FC", 1, "1x1", "x1000"),
    ]


def test_width_multiplier_gives_timms_widths() -> None:
    # timm semnasnet_075: stem 24, stage outputs [16, 24, 32, 64, 88, 120, 240], head 1280
    boxes = _boxes(mnaszoo.draw("mnasnet_a1_075"))
    assert [b[3] for b in boxes] == [
        f"x{c}" for c in (24, 16, 24, 32, 64, 88, 120, 240, 1280, 1000)
    ]


def test_resolution_and_title() -> None:
    svg = mnaszoo.draw("mnasnet_small", input_size=160, title="small <at> 160 & more")
    root = ET.fromstring(svg)  # still well-formed with markup characters in the title
    assert root.find(f"{SVG}title").text == "small <at> 160 & more"
    assert (
        ET.fromstring(mnaszoo.draw("mnasnet_small", title="a\x00b\x1bc")).find(f"{SVG}title").text
        == "abc"
    )  # control characters would make the file unreadable
    sizes = [b[2] for b in _boxes(svg)]
    assert sizes[0] == "80x80" and sizes[-2] == "5x5" and sizes[-1] == "1x1"


def test_a_searched_spec_from_json(tmp_path: Path) -> None:
    spec = mnaszoo.NetworkSpec(
        "searched",
        stem_channels=16,
        stages=(
            mnaszoo.StageSpec(
                "conv", repeats=1, kernel=7, stride=2, expansion=1, out_channels=24, se_ratio=0.25
            ),
            mnaszoo.StageSpec("mb", repeats=3, kernel=5, stride=2, expansion=4.5, out_channels=40),
        ),
        head_channels=640,
    )
    spec = mnaszoo.NetworkSpec.from_dict(spec.to_dict())
    boxes = _boxes(mnaszoo.draw(spec, input_size=64))
    assert boxes == [
        ("Conv3x3", 1, "32x32", "x16"),
        ("Conv (k7x7), SE", 1, "16x16", "x24"),
        ("MBConv4.5 (k5x5)", 3, "8x8", "x40"),
        ("Conv1x1", 1, "8x8", "x640"),
        ("Pooling, FC", 1, "1x1", "x1000"),
    ]


@pytest.mark.parametrize(
    ("model", "kwargs", "error"),
    [
        (3, {}, mnaszoo.ArgumentTypeError),
        ("mnasnet_a2", {}, mnaszoo.UnknownModelError),
        ("mnasnet_a1", {"input_size": 0}, mnaszoo.InvalidArgumentError),
        ("mnasnet_a1", {"input_size": True}, mnaszoo.ArgumentTypeError),
        ("mnasnet_a1", {"title": 5}, mnaszoo.ArgumentTypeError),
    ],
)
def test_bad_input(model: object, kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        mnaszoo.draw(model, **kwargs)  # type: ignore[arg-type]


def test_cli_writes_the_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "b1.svg"
    assert main(["info", "mnasnet_b1", "--svg", str(target)]) == 0
    assert "stages.6" in capsys.readouterr().out  # the table is still printed
    assert target.read_text(encoding="utf-8") == mnaszoo.draw("mnasnet_b1")
    assert main(["info", "mnasnet_b1", "--svg", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
    assert main(["info", "mnasnet_b1", "--svg", str(tmp_path / "no" / "b1.svg")]) == 1
    assert list(tmp_path.iterdir()) == [target]  # nothing half-written


def test_draw_image_size_is_the_old_spelling_of_input_size() -> None:
    with pytest.warns(DeprecationWarning, match="use input_size="):
        old = mnaszoo.draw("mnasnet_small", image_size=160)
    assert old == mnaszoo.draw("mnasnet_small", input_size=160) and "80x80" in old
    with pytest.raises(mnaszoo.InvalidArgumentError, match="give input_size= only"):
        mnaszoo.draw("mnasnet_small", input_size=160, image_size=160)


def test_info_image_size_is_the_old_spelling_of_input_size(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.warns(FutureWarning, match="--image-size is deprecated.*use --input-size"):
        assert main(["info", "mnasnet_small", "--image-size", "160"]) == 0
    assert str(mnaszoo.describe("mnasnet_small", input_size=160)) in capsys.readouterr().out
    assert main(["info", "mnasnet_small", "--input-size", "160", "--image-size", "160"]) == 2
    assert "give --input-size only" in capsys.readouterr().err
