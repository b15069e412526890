"""Charts of the documentation site, written as SVG text with no dependency, at build time.

``accuracy_chart(points, axis)`` plots the publishers' reported ImageNet-1k top-1 of published
checkpoints against a cost (MACs, parameters, a measured latency): one colour and marker per
publisher, the width variants of one publisher's family joined by a line, each point labelled
with mnaszoo's weights id and the publisher's own name for it. ``docs/hooks.py`` calls it.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

_PUBLISHER_STYLE = {  # Okabe-Ito colours, and a marker each so colour is not needed to tell them
    "timm": ("#0072B2", "circle"),
    "torchvision": ("#D55E00", "square"),
}
_OTHER_STYLE = ("#009E73", "diamond")
_FONT = "Helvetica, Arial, sans-serif"
_CHAR = 6.1  # mean advance of an 11 px Helvetica character, px: enough to keep labels apart


@dataclass(frozen=True)
class Point:
    """One checkpoint: its id, who published it (``"timm semnasnet_100.rmsp_in1k"``), its
    family (points of one family and publisher are joined), its reported top-1 and its cost."""

    weights_id: str
    publisher: str
    family: str
    top1: float
    x: float


def _nice_step(span: float, ticks: int) -> float:
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" fill="{colour}"/>'
    if shape == "diamond":
        return (
            f'<path d="M{x:.1f},{y - 6:.1f} L{x + 6:.1f},{y:.1f} L{x:.1f},{y + 6:.1f}'
            f' L{x - 6:.1f},{y:.1f} z" fill="{colour}"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}"/>'


_ASCENT, _DESCENT = 10.0, 3.5  # an 11 px label's box above and below its baseline, px
Box = tuple[float, float, float, float]  # left, top, right, bottom


def _hits_segment(box: Box, segment: tuple[float, float, float, float]) -> bool:
    """Whether the line segment passes through ``box`` (sampled every half pixel)."""
    x1, y1, x2, y2 = segment
    steps = max(2, int(math.hypot(x2 - x1, y2 - y1) * 2))
    for k in range(steps + 1):
        x, y = x1 + (x2 - x1) * k / steps, y1 + (y2 - y1) * k / steps
        if box[0] < x < box[2] and box[1] < y < box[3]:
            return True
    return False


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_label(
    gx: float,
    gy: float,
    length: float,
    segments: list[tuple[float, float, float, float]],
    markers: list[Box],
    placed: list[Box],
    bounds: Box,
) -> tuple[float, float, str]:
    """Where a label of ``length`` px goes for the point at (gx, gy): ``(x, baseline, anchor)``,
    the first candidate (right, left, then above and below at growing distances) whose box, with
    a 2 px margin, stays inside ``bounds`` and touches no line, marker or placed label; the
    least crowded candidate if none is free."""
    candidates = [(gx + 10, gy + 4, "start"), (gx - 10, gy + 4, "end")]
    for step in range(4):  # a line of 13 px further away each time
        for baseline in (gy - 13 - 13 * step, gy + 21 + 13 * step):
            candidates += [(gx - 6, baseline, "start"), (gx + 6, baseline, "end")]
        for baseline in (gy + 4 - 13 * (step + 1), gy + 4 + 13 * (step + 1)):
            candidates += [(gx + 16, baseline, "start"), (gx - 16, baseline, "end")]
    best: tuple[int, tuple[float, float, str]] | None = None
    for x, baseline, anchor in candidates:
        x0 = x - length if anchor == "end" else x
        box = (x0 - 2, baseline - _ASCENT - 2, x0 + length + 2, baseline + _DESCENT + 2)
        if box[0] < bounds[0] or box[2] > bounds[2] or box[1] < bounds[1] or box[3] > bounds[3]:
            continue
        clashes = (
            sum(_hits_segment(box, s) for s in segments)
            + sum(_overlaps(box, m) for m in markers)
            + 2 * sum(_overlaps(box, b) for b in placed)
        )
        if clashes == 0:
            return x, baseline, anchor
        if best is None or clashes < best[0]:
            best = (clashes, (x, baseline, anchor))
    if best is None:  # nothing fits inside the plot: right of the point
        return gx + 10, gy + 4, "start"
    return best[1]


def accuracy_chart(points: list[Point], axis: str, *, width: int = 880) -> str:
    """Reported top-1 of ``points`` against their ``x``, titled ``axis``, as SVG text."""
    if not points:
        raise ValueError("no points to plot")
    values = [p.x for p in points]
    height = 420
    left, right, top, bottom = 64, 24, 40, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    x_step = _nice_step(max(values), 6)
    x_max = math.ceil(max(values) * 1.05 / x_step) * x_step
    y_lo = math.floor(min(p.top1 for p in points) - 1)
    y_hi = math.ceil(max(p.top1 for p in points) + 1)

    def px(v: float) -> float:
        return left + plot_w * v / x_max

    def py(v: float) -> float:
        return top + plot_h * (y_hi - v) / (y_hi - y_lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" font-family="{_FONT}" font-size="11" role="img">',
        f"<title>Reported ImageNet-1k top-1 against {axis}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    # grid and axes
    tick = 0.0
    while tick <= x_max + 1e-9:
        gx = px(tick)
        out.append(
            f'<line x1="{gx:.1f}" y1="{top}" x2="{gx:.1f}" y2="{top + plot_h}" stroke="#e6e6e6"/>'
        )
        out.append(
            f'<text x="{gx:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{tick:g}</text>'
        )
        tick += x_step
    for value in range(y_lo, y_hi + 1):
        gy = py(value)
        out.append(
            f'<line x1="{left}" y1="{gy:.1f}" x2="{left + plot_w}" y2="{gy:.1f}" stroke="#e6e6e6"/>'
        )
        out.append(f'<text x="{left - 8}" y="{gy + 4:.1f}" text-anchor="end">{value}</text>')
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none"'
        ' stroke="#888888"/>'
    )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 14}" text-anchor="middle"'
        f' font-size="12">{escape(axis)}</text>'
    )
    out.append(
        f'<text x="16" y="{top + plot_h / 2:.1f}" text-anchor="middle" font-size="12"'
        f' transform="rotate(-90 16 {top + plot_h / 2:.1f})">reported ImageNet-1k top-1 (%)</text>'
    )
    # one line per (publisher, family), through its width variants in order
    segments: list[tuple[float, float, float, float]] = []  # the lines, for label placement
    groups: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(points):
        groups.setdefault((p.publisher.split()[0], p.family), []).append(i)
    for (publisher, _), members in groups.items():
        if len(members) < 2:
            continue
        colour = _PUBLISHER_STYLE.get(publisher, _OTHER_STYLE)[0]
        members.sort(key=lambda i: values[i])
        xy = [(px(values[i]), py(points[i].top1)) for i in members]
        segments += [(*a, *b) for a, b in itertools.pairwise(xy)]
        path = " L".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        out.append(f'<path d="M{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    # labels: each at the first of several places around its point that overlaps no line, no
    # marker and no label placed before it (docs/check_layout.py checks the rendered result)
    markers = [
        (px(values[i]) - 7, py(p.top1) - 7, px(values[i]) + 7, py(p.top1) + 7)
        for i, p in enumerate(points)
    ]
    placed: list[tuple[float, float, float, float]] = []
    bounds = (left + 2, top + 2, left + plot_w - 2, top + plot_h - 2)
    order = sorted(range(len(points)), key=lambda i: -points[i].top1)
    for i in order:
        p = points[i]
        name = p.publisher.split(" (")[0]
        text = f"{p.weights_id}  ({name.split('.')[0]})"
        gx, gy = px(values[i]), py(p.top1)
        lx, ly, anchor = _place_label(gx, gy, len(text) * _CHAR, segments, markers, placed, bounds)
        x0 = lx - len(text) * _CHAR if anchor == "end" else lx
        placed.append((x0, ly - _ASCENT, x0 + len(text) * _CHAR, ly + _DESCENT))
        colour, shape = _PUBLISHER_STYLE.get(p.publisher.split()[0], _OTHER_STYLE)
        out.append(f'<g class="point" data-weights="{escape(p.weights_id)}">')
        out.append(_marker(shape, gx, gy, colour))
        if abs(ly - 4 - gy) > 12 and abs(lx - gx) > 12:  # set off to the side: a leader line
            tx = x0 if anchor == "start" else x0 + len(text) * _CHAR
            out.append(
                f'<line x1="{gx:.1f}" y1="{gy:.1f}" x2="{tx:.1f}" y2="{ly - 4:.1f}"'
                f' stroke="{colour}" stroke-width="0.8" stroke-dasharray="2 2"/>'
            )
        out.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" fill="#222222">'
            f"<title>{escape(p.publisher)}: {p.top1}% top-1</title>{escape(text)}</text>"
        )
        out.append("</g>")
    # legend
    lx = left + 8
    for publisher, (colour, shape) in _PUBLISHER_STYLE.items():
        if not any(p.publisher.startswith(publisher) for p in points):
            continue
        out.append(_marker(shape, lx + 5, top - 18, colour))
        out.append(f'<text x="{lx + 16}" y="{top - 14}">{publisher} weights</text>')
        lx += 16 + len(f"{publisher} weights") * _CHAR + 24
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- the site's pictures ----------------------------------------------------------------------

DIAGRAMS = ("mnasnet_a1", "mnasnet_b1", "mnasnet_small", "mnasnet_d1")
BENCHMARK_DATA = Path(__file__).resolve().parent / "data" / "benchmark-1thread.json"
# One colour per runtime (the command line's names), in every chart of the site; none is a
# publisher's colour above.
RUNTIME_COLOURS = {
    "torch": "#E69F00",
    "torch-optimized": "#56B4E9",
    "onnxruntime": "#CC79A7",
    "onnxruntime-int8": "#882255",
    "executorch": "#999999",
    "executorch-int8": "#444444",
}


def _published_points(cost: Callable[[str], float]) -> list[Point]:
    import mnaszoo

    points = []
    for weights_id in mnaszoo.list_weights():
        record = mnaszoo.get_weights(weights_id)
        metric = next((m for m in record.metrics if m.dataset == "imagenet-1k-val"), None)
        if metric is None:
            continue
        family = record.model.split("_")[1]  # a1, b1, small: width variants share a line
        points.append(Point(weights_id, record.publisher, family, metric.top1, cost(record.model)))
    return points


def accuracy_vs_macs() -> str:
    """Reported top-1 of every published checkpoint against its MACs at 224x224."""
    import mnaszoo

    points = _published_points(lambda model: mnaszoo.describe(model).macs / 1e6)
    return accuracy_chart(points, "MACs at 224x224 (millions)")


def accuracy_vs_params() -> str:
    """Reported top-1 of every published checkpoint against its parameters."""
    import mnaszoo

    points = _published_points(lambda model: mnaszoo.describe(model).params / 1e6)
    return accuracy_chart(points, "parameters (millions)")


def _benchmark_rows(path: Path = BENCHMARK_DATA) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))["rows"]
    return rows


def accuracy_vs_latency(path: Path = BENCHMARK_DATA) -> str:
    """Reported top-1 against mnaszoo's onnxruntime (fp32) median latency at batch 1 in the
    recorded benchmark (``docs/data/benchmark-1thread.json``), for the checkpoints of the models
    it timed."""
    latency = {
        str(r["model"]): float(str(r["median_ms"]))
        for r in _benchmark_rows(path)
        if r["impl"] == "mnaszoo" and r["batch"] == 1 and r["runtime"] == "onnxruntime"
    }
    points = [
        p
        for p in _published_points(lambda model: latency.get(model, math.nan))
        if not math.isnan(p.x)
    ]
    return accuracy_chart(points, "onnxruntime latency at batch 1, 1 thread (ms)")


def latency_by_runtime(path: Path = BENCHMARK_DATA, *, width: int = 880) -> str:
    """mnaszoo's median latency at batch 1 of each model in each runtime of the recorded
    benchmark, as grouped horizontal bars: one colour per runtime (``RUNTIME_COLOURS``)."""
    rows = [r for r in _benchmark_rows(path) if r["impl"] == "mnaszoo" and r["batch"] == 1]
    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    runtimes = [rt for rt in RUNTIME_COLOURS if any(r["runtime"] == rt for r in rows)]
    ms = {(str(r["model"]), str(r["runtime"])): float(str(r["median_ms"])) for r in rows}
    bar, gap = 16, 18
    left, right, top, bottom = 120, 70, 44, 50
    group = bar * len(runtimes) + gap
    height = top + bottom + group * len(models)
    plot_w = width - left - right
    step = _nice_step(max(ms.values()), 6)
    x_max = math.ceil(max(ms.values()) / step) * step

    def px(v: float) -> float:
        return left + plot_w * v / x_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" font-family="{_FONT}" font-size="11" role="img">',
        "<title>Latency of each model in each runtime, batch 1, one thread</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    tick = 0.0
    while tick <= x_max + 1e-9:
        out.append(
            f'<line x1="{px(tick):.1f}" y1="{top}" x2="{px(tick):.1f}"'
            f' y2="{height - bottom}" stroke="#e6e6e6"/>'
        )
        out.append(
            f'<text x="{px(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
            f"{tick:g}</text>"
        )
        tick += step
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 12}" text-anchor="middle"'
        ' font-size="12">median latency per image at batch 1, 1 thread (ms)</text>'
    )
    for g, model in enumerate(models):
        y0 = top + g * group
        out.append(
            f'<text x="{left - 8}" y="{y0 + bar * len(runtimes) / 2 + 4:.1f}"'
            f' text-anchor="end">{escape(model)}</text>'
        )
        for k, runtime in enumerate(runtimes):
            value = ms.get((model, runtime))
            if value is None:
                continue
            y = y0 + k * bar
            out.append(
                f'<rect x="{left}" y="{y + 1}" width="{px(value) - left:.1f}" height="{bar - 2}"'
                f' fill="{RUNTIME_COLOURS[runtime]}"><title>{runtime}: {value} ms</title></rect>'
            )
            out.append(f'<text x="{px(value) + 4:.1f}" y="{y + bar - 4}">{value:g}</text>')
    lx = left
    for runtime in runtimes:
        out.append(
            f'<rect x="{lx}" y="{top - 26}" width="12" height="12"'
            f' fill="{RUNTIME_COLOURS[runtime]}"/>'
        )
        out.append(f'<text x="{lx + 16}" y="{top - 16}">{runtime}</text>')
        lx += 16 + len(runtime) * _CHAR + 22
    out.append("</svg>")
    return "\n".join(out) + "\n"


def site_figures() -> dict[str, str]:
    """Every generated picture of the site: its path under ``docs/`` and its SVG text."""
    import mnaszoo

    figures = {f"images/generated/{name}.svg": mnaszoo.draw(name) for name in DIAGRAMS}
    figures["images/generated/mnasnet_d1_320.svg"] = mnaszoo.draw("mnasnet_d1_320", input_size=320)
    figures["images/generated/accuracy_macs.svg"] = accuracy_vs_macs()
    figures["images/generated/accuracy_params.svg"] = accuracy_vs_params()
    figures["images/generated/accuracy_latency.svg"] = accuracy_vs_latency()
    figures["images/generated/latency_runtimes.svg"] = latency_by_runtime()
    return figures
