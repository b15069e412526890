"""``draw``: an SVG picture of a network, in the style of the MnasNet paper's Figure 7.

The picture comes from the resolved plan (:func:`~mnaszoo.models.summary.describe`), so it shows
what :func:`~mnaszoo.models.factory.build` builds, multipliers applied: one box per stage, left to
right (the stem; every stage with its block kind, kernel, expansion, squeeze-and-excitation and
repeats; the head; pooling and the classifier), each box as tall as its output resolution is
large, with the output size and channels under it. It is SVG text written with the standard
library only, so it works wherever ``mnaszoo`` imports (no torch, no plotting library).
"""

from __future__ import annotations

import math
from html import escape

from .._validate import check_int, renamed_input_size
from .config import ModelConfig
from .specs import BlockKind
from .summary import StageRow, _as_config, describe

__all__ = ["draw"]

# Fills by block type, light enough for black text; squeeze-and-excitation is a thick dark
# outline, so the picture reads without colour too.
_FILL = {
    "conv": "#e0e0e0",
    "ds": "#f6d3a8",
    "mb3": "#b9dcf2",
    "mb6": "#c4e8d5",
    "mb": "#f3e7a6",
    "classifier": "#d8cce8",
}
_FONT = "Helvetica, Arial, sans-serif"
_CHAR = 7.6  # mean advance of a 14 px bold character, px: to size the canvas to the title
_PITCH = 64  # horizontal distance between boxes, px
_BOX = 40  # box width, px
_TOP = 64  # top edge of the tallest box
_TALLEST = 220  # a box at the input resolution
_SHORTEST = 96  # a box at 1x1 (long enough for the label "MBConv6 (k5x5), SE" rotated)
_LEGEND = "xN: N blocks; /2: stride 2; thick outline: squeeze-and-excitation; under each box:"
_LEGEND += " output size and channels"


def _label(row: StageRow, config: ModelConfig) -> tuple[str, str, bool]:
    """The box's text, its fill and whether it has SE, e.g. ``("MBConv6 (k5x5), SE", ...)``."""
    if row.name == "stem":
        return f"Conv{row.kernel}x{row.kernel}", "conv", False
    if row.name == "head":
        return "Conv1x1", "conv", False
    if row.name == "classifier":
        return "Pooling, FC", "classifier", False
    stage = config.spec.stages[int(row.name.split(".")[1])]
    kernel = f"k{row.kernel}x{row.kernel}"
    se = bool(stage.se_ratio)
    tail = ", SE" if se else ""
    if stage.kind is BlockKind.CONV:
        return f"Conv ({kernel}){tail}", "conv", se
    if stage.kind is BlockKind.DS:
        return f"SepConv ({kernel}){tail}", "ds", se
    expansion = f"{stage.expansion:g}"
    fill = f"mb{expansion}" if f"mb{expansion}" in _FILL else "mb"
    return f"MBConv{expansion} ({kernel}){tail}", fill, se


def _height(size: int, input_size: int) -> float:
    # log scale: every halving of the resolution is the same step down
    t = math.log2(max(size, 1)) / math.log2(max(input_size, 2))
    return _SHORTEST + (_TALLEST - _SHORTEST) * min(t, 1.0)


def _text(x: float, y: float, text: str, size: int = 11, extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="middle"{extra}>'
        f"{escape(text)}</text>"
    )


def draw(
    model: object,
    *,
    input_size: int | None = None,
    title: str | None = None,
    image_size: int | None = None,
) -> str:
    """An SVG diagram of a network's stages, in the style of Figure 7 of the MnasNet paper.

    Args:
        model: what :func:`~mnaszoo.models.summary.describe` accepts: a registered name, a
            :class:`~mnaszoo.models.specs.NetworkSpec` (your own, or one a search found), a
            :class:`~mnaszoo.models.config.ModelConfig`, or a model built by mnaszoo.
        input_size: input resolution of the feature-map sizes under the boxes (224).
        title: the line above the picture; by default the model, its multipliers, its
            parameters and its MACs at ``input_size``.
        image_size: deprecated spelling of ``input_size`` (warns; goes in the next release).

    Returns:
        The SVG document as text, with a ``viewBox``, so it scales to its container. Write it
        to a ``.svg`` file, or put it inline in HTML.

    Raises:
        UnknownModelError: a name that is not registered.
        InvalidArgumentError: ``input_size`` is not positive, or both spellings were given.
        ArgumentTypeError: ``model`` or ``title`` is of a type it cannot be.

    Example:
        >>> svg = draw("mnasnet_a1")
        >>> svg.startswith("<svg"), "MBConv3 (k5x5), SE" in svg, "SepConv (k3x3)" in svg
        (True, True, True)
    """
    size = renamed_input_size(input_size, image_size)
    check_int("input_size", size, minimum=1)
    config = _as_config(model, "draw")
    summary = describe(config, input_size=size)
    if title is None:
        title = (
            f"{summary.title} @ {size}x{size}: {summary.params / 1e6:.2f}M"
            f" parameters, {summary.macs / 1e6:.1f}M MACs"
        )
    elif not isinstance(title, str):
        from ..errors import ArgumentTypeError

        raise ArgumentTypeError(f"draw() takes title as a str, got {type(title).__name__}.")
    # XML 1.0 allows no control characters but tab and newline: drop them rather than write a
    # file no viewer opens
    title = "".join(c for c in title if c >= " " or c in "\t\n")
    rows = summary.rows
    width = max(_PITCH * (len(rows) + 1) + 24, round(len(title) * _CHAR) + 24, 740)
    height = _TOP + _TALLEST + 84
    centre = _TOP + _TALLEST / 2
    below = _TOP + _TALLEST + 22
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" font-family="{_FONT}" role="img">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 6 6" refX="5" refY="3" markerWidth="6"'
        ' markerHeight="6" orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#555555"/></marker>'
        "</defs>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    # the input image, dashed
    x = 12.0
    h = _height(size, size)
    parts.append(
        f'<rect x="{x + 8:.1f}" y="{centre - h / 2:.1f}" width="{_BOX - 16}" height="{h:.1f}"'
        ' fill="#ffffff" stroke="#555555" stroke-dasharray="4 3"/>'
    )
    parts.append(_text(x + _BOX / 2, below, f"{size}x{size}"))
    parts.append(_text(x + _BOX / 2, below + 14, f"x{config.in_chans}"))
    parts.append(_text(x + _BOX / 2, below + 28, "input", extra=' fill="#555555"'))
    for row in rows:
        label, fill, se = _label(row, config)
        start = x + _BOX
        x += _PITCH
        h = _height(row.out_size[0], size)
        y = centre - h / 2
        cx = x + _BOX / 2
        parts.append(
            f'<line x1="{start:.1f}" y1="{centre:.1f}" x2="{x - 3:.1f}" y2="{centre:.1f}"'
            ' stroke="#555555" stroke-width="1.5" marker-end="url(#arrow)"/>'
        )
        outline = 'stroke="#222222" stroke-width="3"' if se else 'stroke="#555555"'
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{_BOX}" height="{h:.1f}" rx="4"'
            f' fill="{_FILL[fill]}" {outline}/>'
        )
        parts.append(
            f'<text x="{cx:.1f}" y="{centre:.1f}" font-size="12" text-anchor="middle"'
            f' dominant-baseline="central" transform="rotate(-90 {cx:.1f} {centre:.1f})">'
            f"{escape(label)}</text>"
        )
        if row.repeats > 1:
            parts.append(_text(cx, y - 8, f"x{row.repeats}", 13, ' font-weight="bold"'))
        if row.stride > 1:
            parts.append(_text(cx, _TOP - 26, f"/{row.stride}", 10, ' fill="#666666"'))
        parts.append(_text(cx, below, f"{row.out_size[0]}x{row.out_size[1]}"))
        parts.append(_text(cx, below + 14, f"x{row.out_channels}"))
    parts.append(
        f'<text x="12" y="{height - 10}" font-size="11" fill="#555555">{escape(_LEGEND)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
