"""Pages generated from the registry, the manifest and the benchmark data: one page per model
(``models/NAME.md``) and the "which model?" table. ``docs/hooks.py`` adds them to the site.

Everything on them is read from the code or from ``docs/data/benchmark-1thread.json``; the only
hand-written text is :data:`ADVICE`, when to pick a family.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "benchmark-1thread.json"
RUNTIMES = ("torch", "torch-optimized", "onnxruntime", "onnxruntime-int8")
# When to pick each family (by its spec's name).
ADVICE = {
    "mnasnet_a1": "best accuracy per MAC",
    "mnasnet_b1": "no SE: simplest to quantize and export",
    "mnasnet_small": "cheapest: tiny devices, small images",
    "mnasnet_d1": "detection backbone; train it yourself",
    "mnasnet_d1_320": "detection backbone at 320 px",
}
_SHORT = {"mnasnet_a1": "A1", "mnasnet_b1": "B1"}
# The resolution each model is defined at.
NATIVE_SIZE = {"mnasnet_d1_320": 320}


def native_size(name: str) -> int:
    """The image size a model is designed for (its diagram and table use it)."""
    return NATIVE_SIZE.get(name, 224)


def _benchmark() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


def _latency(name: str, batch: int = 1) -> dict[str, float]:
    return {
        r["runtime"]: r["median_ms"]
        for r in _benchmark()["rows"]
        if r["model"] == name and r["impl"] == "mnaszoo" and r["batch"] == batch
    }


def _default_record(name: str) -> Any:
    from mnaszoo.weights.manifest import load_manifest

    manifest = load_manifest()
    weights_id = manifest.defaults.get(name)
    return None if weights_id is None else manifest.records[weights_id]


def _top1(record: Any) -> str:
    if record is None:
        return "-"
    metric = next((m for m in record.metrics if m.dataset == "imagenet-1k-val"), None)
    return "-" if metric is None else f"{metric.top1}"


def which_model_table() -> str:
    """Every registered model: reported top-1 of its default weights, parameters, MACs,
    measured batch-1 latency in each runtime (where the recorded benchmark timed it), and when
    to pick it."""
    import mnaszoo
    from mnaszoo.models.registry import MODELS

    lines = [
        "| model | top-1 | params (M) | MACs (M) | "
        + " | ".join(f"`{r}`" for r in RUNTIMES)
        + " | pick it for |",
        "|---|---:|---:|---:|" + "---:|" * len(RUNTIMES) + "---|",
    ]
    lines.insert(0, '<div class="mnaszoo-compact" markdown>\n')
    for name in mnaszoo.list_models():
        size = native_size(name)
        summary = mnaszoo.describe(name, input_size=size)
        latency = _latency(name)
        family = MODELS[name].spec.name
        advice = ADVICE.get(family, "")
        width = MODELS[name].width_mult
        if width != 1.0:
            advice = f"{_SHORT[family]}, {'narrower' if width < 1 else 'wider'}"
        macs = f"{summary.macs / 1e6:.0f}" + ("" if size == 224 else f" @{size}")
        cells = [
            f"[`{name}`](models/{name}.md)",
            _top1(_default_record(name)),
            f"{summary.params / 1e6:.2f}",
            macs,
            *(f"{latency[r]:.2f}" if r in latency else "" for r in RUNTIMES),
            advice,
        ]
        lines.append(f"| {' | '.join(cells)} |")
    env = _benchmark()["environment"]
    lines += [
        "",
        "</div>",
        "",
        "The runtime columns are milliseconds per image at batch 1."
        f" top-1: the publisher's reported ImageNet-1k validation top-1 of the model's default"
        f" weights (`pretrained=True`), `-` where none is published. MACs at 224x224 unless"
        f" marked. Latency: median per image at batch 1, {env['threads']} thread, random"
        f" weights, measured {env['date']} on {env['machine']} (CPU: {env['cpu_features']});"
        f" empty where that run did not time the model. Data:"
        f" [benchmark-1thread.json](data/benchmark-1thread.json); the full tables are on"
        f" [Benchmarks](benchmarks.md).",
    ]
    return "\n".join(lines)


def model_page(name: str) -> str:
    """The page of one registered model: diagram, spec table, weights, recipe, latency."""
    import mnaszoo
    from mnaszoo.models.registry import MODELS
    from mnaszoo.weights.manifest import load_manifest

    entry = MODELS[name]
    size = native_size(name)
    summary = mnaszoo.describe(name, input_size=size)
    manifest = load_manifest()
    records = sorted(
        (r for r in manifest.records.values() if r.model == name),
        key=lambda r: (manifest.defaults.get(name) != r.id, r.id),
    )
    out = [
        f"# {name}",
        "",
        f"{entry.description}: {summary.params:,} parameters, {summary.macs / 1e6:.1f} M MACs at"
        f" {size}x{size}. Pick it for: {ADVICE.get(entry.spec.name, '')}"
        + (f" (here at width {entry.width_mult:g})" if entry.width_mult != 1.0 else "")
        + ". Compare it with the others in [Which model?](../which-model.md).",
        "",
        f"![{name} drawn from its spec table by mnaszoo.draw at {size}x{size}]"
        f"(../images/generated/models/{name}.svg){{ .mnaszoo-figure }}",
        "",
        "## Spec table",
        "",
        f'`mnaszoo.describe("{name}", input_size={size})`:',
        "",
        "```text",
        str(summary),
        "```",
        "",
        "## Weights",
        "",
    ]
    if records:
        out += [
            "| weights | default | top-1 | top-5 | license | preprocessing |",
            "|---|---|---:|---:|---|---|",
        ]
        for r in records:
            metric = next((m for m in r.metrics if m.dataset == "imagenet-1k-val"), None)
            top5 = "-" if metric is None or metric.top5 is None else metric.top5
            default = "yes" if manifest.defaults.get(name) == r.id else ""
            prep = r.preprocessing
            out.append(
                f"| [`{r.id}`](../zoo.md#{r.id.replace('.', '')}) | {default} | {_top1(r)}"
                f" | {top5} | {r.license} | resize {prep.resize} {prep.interpolation},"
                f" crop {prep.input_size} |"
            )
        out += [
            "",
            "Top-1/top-5: the publisher's reported ImageNet-1k validation accuracy; the source,"
            " the pinned file and its sha256 are in [the zoo's checkpoint"
            " details](../zoo.md#every-checkpoint).",
        ]
    else:
        out.append(
            "No PyTorch checkpoint is published for this model: `mnaszoo.create"
            f'("{name}")` builds it with fresh weights, for training from scratch or'
            " fine-tuning."
        )
    out += ["", "## Use it", "", "```python", "import mnaszoo", ""]
    if records:
        out += [
            f'model = mnaszoo.create("{name}", pretrained=True)      # its default weights',
            "transform = mnaszoo.make_transform(model)     # the recipe they were measured with",
            f'mnaszoo.predict("docs/images/grace_hopper.jpg", "{name}", topk=3)',
        ]
    else:
        out += [f'model = mnaszoo.create("{name}", num_classes=10)    # fresh weights']
    out += [
        "```",
        "",
        "```bash",
        f"mnaszoo info {name}" + (f" --input-size {size}" if size != 224 else ""),
    ]
    if records:
        out.append(f"mnaszoo predict docs/images/grace_hopper.jpg --model {name} --topk 3")
    out += ["```", ""]
    latency = {b: _latency(name, b) for b in (1, 32)}
    if latency[1]:
        env = _benchmark()["environment"]
        out += [
            "## Measured speed",
            "",
            "| runtime | batch 1 ms | batch 32 ms |",
            "|---|---:|---:|",
        ]
        for runtime in RUNTIMES:
            if runtime in latency[1]:
                b32 = latency[32].get(runtime)
                batch32 = "" if b32 is None else f"{b32:.2f}"
                out.append(f"| `{runtime}` | {latency[1][runtime]:.2f} | {batch32} |")
        out += [
            "",
            f"Median per call, {env['threads']} thread, random weights, measured {env['date']}"
            f" on {env['machine']} (CPU: {env['cpu_features']}); [Benchmarks](../benchmarks.md)"
            " has the command and the comparison with timm and torchvision.",
            "",
        ]
    return "\n".join(out)


def model_pages() -> dict[str, str]:
    """Every model's page (``models/NAME.md``) and diagram (``images/generated/models/``)."""
    import mnaszoo

    pages: dict[str, str] = {}
    for name in mnaszoo.list_models():
        pages[f"models/{name}.md"] = model_page(name)
        pages[f"images/generated/models/{name}.svg"] = mnaszoo.draw(
            name, input_size=native_size(name)
        )
    return pages
