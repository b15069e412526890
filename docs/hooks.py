"""MkDocs hooks: generate the data-driven parts of the site and check that nothing is missing.

A page asks for generated Markdown with a comment, ``<!-- mnaszoo:NAME -->``, replaced at build
time by ``GENERATORS[NAME]()``:

- ``zoo-table``: every registered model with its parameters and MACs (``mnaszoo.describe``) and
  every entry of ``weights_manifest.json`` with its reported ImageNet top-1/top-5, who reported
  it, its license and its preprocessing;
- ``metrics-table``: every metric the manifest records, with its source;
- ``architectures-side-by-side``: the stage tables of MnasNet-A1, B1 and small side by side,
  from ``mnaszoo.models.architectures``;
- ``api-index``: every name of ``mnaszoo.__all__`` with the first line of its docstring, linked
  to its entry in the API reference;
- ``errors-tree``: the exception hierarchy of ``mnaszoo.errors``;
- ``which-model``: the "which model?" table (docs/model_pages.py).

Other markers:

- ``<!-- mnaszoo:run [VAR=value] mnaszoo ARGS -->``: the command, run at build time, with its
  real output;
- ``<!-- mnaszoo:output -->`` right before a ``python`` block: the block is run at build time
  and its output shown under it;
- ``<!-- mnaszoo:recorded NAME -->`` right before a ``python`` block: the block's output as
  ``docs/record_NAME.py`` recorded it in ``docs/data/NAME.json`` (for runs too long for the
  build: a search, a training); the build fails when the block's code is not the recorded code.
  ``<!-- mnaszoo:recorded-environment NAME -->``: when, where and with what it was recorded;
- ``<!-- mnaszoo:data NAME -->``: the table of ``docs/data/NAME.json`` (one data file per
  benchmark) with the machine, CPU features, threads, software and date it was measured on;
- ``<!-- mnaszoo:value NAME FIELD key=value ... [/ key=value ...] -->``: one figure of that data
  file inline, or the ratio of two rows' figures, so no page types a measured number.

Generated files: the charts and diagrams of docs/figures.py, a page per model
(``models/NAME.md``, docs/model_pages.py) and ``changelog.md`` (the repository's CHANGELOG.md).

Links from a page to a file of the repository outside ``docs/`` (``../examples/finetune.py``),
which work when the Markdown is read on GitHub, are pointed at the file on ``repo_url`` in the
site; a link to a file that does not exist is left alone, so the strict build still reports it.

After the build, the site must hold an API entry (``id="mnaszoo.NAME"``) for every name of
``mnaszoo.__all__`` and must name every manifest entry on the model zoo page; otherwise the build
fails. ``tests/test_docs.py`` imports this module to check the generated tables too.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import mnaszoo
from mnaszoo.models.architectures import MNASNET_A1, MNASNET_B1, MNASNET_SMALL
from mnaszoo.models.registry import MODELS
from mnaszoo.models.specs import BlockKind, NetworkSpec, StageSpec
from mnaszoo.weights.manifest import (
    HubSource,
    Metric,
    Preprocessing,
    WeightsRecord,
    load_manifest,
)

ROOT = Path(__file__).resolve().parents[1]
ZOO_PAGE = "zoo.md"
_MARKER = re.compile(r"<!--\s*mnaszoo:([\w-]+)\s*-->")
_RUN = re.compile(r"<!--\s*mnaszoo:run\s+(.+?)\s*-->")
_ROLE = re.compile(r":(?:py:)?\w+:`~?([\w.]+)`")
_API_ID = re.compile(r'id="(mnaszoo\.[\w.]+)"')
_LINK = re.compile(r"(\]\()(\.\./[^)\s#]+)(#[^)\s]*)?(\))")
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_ARCH_NAMES = {
    "mnasnet_a1": "A1",
    "mnasnet_b1": "B1",
    "mnasnet_small": "small",
    "mnasnet_d1": "D1",
    "mnasnet_d1_320": "D1-320",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def preprocessing_text(p: Preprocessing) -> str:
    """``resize 256 bicubic, crop 224, ImageNet mean/std`` (the numbers if they differ)."""
    stats = (
        "ImageNet mean/std"
        if (p.mean, p.std) == _IMAGENET
        else f"mean {list(p.mean)}, std {list(p.std)}"
    )
    return f"resize {p.resize} {p.interpolation}, crop {p.input_size}, {stats}"


def source_url(record: WeightsRecord) -> str:
    """Where the file is: the Hub repository at its pinned commit, or the URL."""
    if isinstance(record.source, HubSource):
        s = record.source
        return f"https://huggingface.co/{s.repo_id}/blob/{s.revision}/{s.filename}"
    return str(record.source)


def _anchor(weights_id: str) -> str:
    """The id of a checkpoint's section on the zoo page (its heading's slug)."""
    return re.sub(r"[^\w-]", "", weights_id.lower())


def _imagenet(record: WeightsRecord) -> Metric | None:
    return next((m for m in record.metrics if m.dataset == "imagenet-1k-val"), None)


def zoo_table() -> str:
    """One row per published checkpoint, and one per model that has none: the model, its
    weights id, reported top-1/top-5 (linked to the checkpoint's details and source), params
    and MACs."""
    manifest = load_manifest()
    lines = [
        "| model | arch | weights | top-1 | top-5 | params | MACs @224 |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for name in mnaszoo.list_models():
        entry = MODELS[name]
        summary = mnaszoo.describe(name)
        width = f"{entry.width_mult:g}"
        model_cells = (
            f"`{name}`",
            f"{_ARCH_NAMES.get(entry.spec.name, entry.spec.name)} &times;{width}",
        )
        counts = (f"{summary.params:,}", f"{summary.macs / 1e6:.1f} M")
        records = [r for r in manifest.records.values() if r.model == name]
        records.sort(key=lambda r: (manifest.defaults[name] != r.id, r.id))
        if not records:
            lines.append(
                f"| {' | '.join(model_cells)} | none published | | | {' | '.join(counts)} |"
            )
        for index, record in enumerate(records):
            metric = _imagenet(record)
            link = f"#{_anchor(record.id)}"
            top1 = "-" if metric is None else f"[{metric.top1}]({link})"
            top5 = "-" if metric is None or metric.top5 is None else f"[{metric.top5}]({link})"
            default = " *" if manifest.defaults[name] == record.id else ""
            first = index == 0
            cells = (
                *(model_cells if first else ("", "")),
                f"[`{record.id}`]({link}){default}",
                top1,
                top5,
                *(counts if first else ("", "")),
            )
            lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def checkpoint_details() -> str:
    """A section per published checkpoint: publisher, license, preprocessing, the pinned file,
    how it is verified, every reported metric and its source."""
    manifest = load_manifest()
    out: list[str] = []
    for weights_id in mnaszoo.list_weights():
        record = manifest.records[weights_id]
        default = manifest.defaults[record.model] == weights_id
        if isinstance(record.source, HubSource):
            s = record.source
            where = f"{s.repo_id} @ {s.revision[:7]}, {s.filename}"
        else:
            where = str(record.source).rsplit("/", 1)[-1]
        if record.sha256:
            verified = f"sha256 `{record.sha256}`"
        elif record.sha256_prefix:
            verified = (
                f"a sha256 prefix, `{record.sha256_prefix}`, from the file name as torch.hub checks"
            )
        else:
            verified = "the Git-LFS sha256 the Hub reports for the pinned commit"
        out += [
            f"### {weights_id} {{#{_anchor(weights_id)}}}",
            "",
            f"- **model**: `{record.model}`"
            + (" (its default weights: `pretrained=True`)" if default else ""),
            f"- **publisher**: {record.publisher}; **license**: {record.license}",
            f"- **preprocessing**: {preprocessing_text(record.preprocessing)}",
            f"- **file**: [{where}]({source_url(record)}), verified by {verified}",
        ]
        for m in record.metrics:
            top5 = "" if m.top5 is None else f" / top-5 {m.top5}"
            out.append(f"- **{m.dataset}**: top-1 {m.top1}{top5}, from {m.source}")
        if record.notes:
            out.append(f"- **notes**: {record.notes}")
        out.append("")
    return "\n".join(out)


def metrics_table() -> str:
    """Every metric of every manifest entry, with where it was reported."""
    lines = [
        "| weights | dataset | top-1 | top-5 | source |",
        "|---|---|---:|---:|---|",
    ]
    for weights_id in mnaszoo.list_weights():
        record = mnaszoo.get_weights(weights_id)
        for m in record.metrics:
            top5 = "-" if m.top5 is None else m.top5
            lines.append(
                f"| `{weights_id}` | {m.dataset} | {m.top1} | {top5} | {_cell(m.source)} |"
            )
    return "\n".join(lines)


def _stage_text(stage: StageSpec) -> str:
    k = f"{stage.kernel}x{stage.kernel}"
    op = {
        BlockKind.DS: f"SepConv {k}",
        BlockKind.CONV: f"Conv {k}",
        BlockKind.MB: f"MBConv{stage.expansion:g} {k}",
    }[stage.kind]
    extras = [f"SE {stage.se_ratio:g}"] if stage.se_ratio else []
    if not stage.skip:
        extras.append("no skip")
    repeats = f" x{stage.repeats}" if stage.repeats > 1 else ""
    stride = f", stride {stage.stride}" if stage.stride > 1 else ""
    tail = f", {', '.join(extras)}" if extras else ""
    return f"{op}{repeats}{stride} &rarr; {stage.out_channels}{tail}"


def side_by_side(specs: tuple[NetworkSpec, ...] = (MNASNET_A1, MNASNET_B1, MNASNET_SMALL)) -> str:
    """The stage rows of several spec tables in parallel columns, as in the paper's figures."""
    names = [_ARCH_NAMES.get(spec.name, spec.name) for spec in specs]
    lines = [
        f"| row | output @224 | {' | '.join(f'MnasNet-{n}' for n in names)} |",
        f"|---|---|{'---|' * len(specs)}",
    ]
    resolution = 224
    stems = [f"Conv 3x3, stride 2 &rarr; {spec.stem_channels}" for spec in specs]
    resolution //= 2
    lines.append(f"| stem | {resolution}x{resolution} | {' | '.join(stems)} |")
    for index in range(max(len(spec.stages) for spec in specs)):
        strides = {spec.stages[index].stride for spec in specs if index < len(spec.stages)}
        cells = [
            _stage_text(spec.stages[index]) if index < len(spec.stages) else "" for spec in specs
        ]
        size = f"{resolution // max(strides)}x{resolution // max(strides)}"
        if len(strides) > 1:  # resolutions differ: say so rather than print one
            size = "differs"
        resolution //= max(strides)
        lines.append(f"| stages.{index} | {size} | {' | '.join(cells)} |")
    heads = [f"Conv 1x1 &rarr; {spec.head_channels}" for spec in specs]
    lines.append(f"| head | {resolution}x{resolution} | {' | '.join(heads)} |")
    classifiers = [f"avg pool, dropout {spec.dropout:g}, FC &rarr; 1000" for spec in specs]
    lines.append(f"| classifier | 1x1 | {' | '.join(classifiers)} |")
    summaries = [mnaszoo.describe(spec) for spec in specs]
    lines.append(f"| parameters | | {' | '.join(f'{s.params:,}' for s in summaries)} |")
    lines.append(f"| MACs @224 | | {' | '.join(f'{s.macs / 1e6:.2f} M' for s in summaries)} |")
    settings = [
        f"eps {spec.bn_eps:g}, momentum {spec.bn_momentum:g}; SE width {spec.se_rounding}"
        for spec in specs
    ]
    lines.append(f"| BatchNorm, SE | | {' | '.join(settings)} |")
    return "\n".join(lines)


def _summary_line(doc: str) -> str:
    first = doc.strip().split("\n\n", 1)[0].replace("\n", " ")
    return _cell(_ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", first))


def api_index() -> str:
    """Every public name of ``mnaszoo`` with its summary, linked to its API entry."""
    import griffe

    package = griffe.load("mnaszoo", search_paths=[str(ROOT / "src")], resolve_aliases=True)
    lines = ["| name | kind | summary |", "|---|---|---|"]
    for name in sorted(mnaszoo.__all__, key=lambda n: (n.startswith("_"), n.lower())):
        obj = package[name]
        target = obj.final_target if isinstance(obj, griffe.Alias) else obj
        doc = target.docstring.value if target.docstring else ""
        kind = "constant" if target.kind.value == "attribute" else target.kind.value
        if kind == "class" and any(
            base in {"Exception", "MnaszooError", "WeightsError"} or base.endswith("Error")
            for base in (str(b) for b in target.bases)
        ):
            kind = "exception"
        lines.append(f"| [`mnaszoo.{name}`][mnaszoo.{name}] | {kind} | {_summary_line(doc)} |")
    return "\n".join(lines)


def errors_tree() -> str:
    """The exception hierarchy of ``mnaszoo.errors``, with each error's built-in base."""
    from mnaszoo import errors

    classes = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]

    def lines(parent: type, prefix: str) -> list[str]:
        children = [c for c in classes if c.__bases__[0] is parent]
        out: list[str] = []
        for index, child in enumerate(children):
            last = index == len(children) - 1
            builtin = [b.__name__ for b in child.__bases__[1:]]
            label = f"{child.__name__} ({', '.join(builtin)})" if builtin else child.__name__
            out.append(f"{prefix}{'└── ' if last else '├── '}{label}")
            out += lines(child, prefix + ("    " if last else "│   "))
        return out

    root = errors.MnaszooError
    return "\n".join(["```text", root.__name__, *lines(root, ""), "```"])


# --- measured figures: one data file per benchmark (docs/data/*.json) -------------------------

DATA = ROOT / "docs" / "data"
_DATA_MARKER = re.compile(r"<!--\s*mnaszoo:data\s+([\w-]+)\s*-->")
_VALUE_MARKER = re.compile(r"<!--\s*mnaszoo:value\s+([\w-]+)\s+(\w+)((?:\s+[^\s>]+)*?)\s*-->")
# The runtimes' names, as the command line spells them (mnaszoo.deploy.runtimes.RUNTIMES), and
# how a table heads them.
RUNTIME_TITLES = {
    "torch": "torch (eager)",
    "torch-optimized": "torch-optimized (BatchNorm folded)",
    "onnxruntime": "onnxruntime",
    "onnxruntime-int8": "onnxruntime-int8",
    "executorch": "executorch (XNNPACK)",
    "executorch-int8": "executorch-int8 (XNNPACK)",
}


def load_data(name: str) -> dict[str, Any]:
    """``docs/data/NAME.json``: a benchmark's rows and the environment they were measured in."""
    import json

    path = DATA / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in DATA.glob("*.json")))
        raise ValueError(f"no data file docs/data/{name}.json; known: {known}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def environment_line(name: str) -> str:
    """Where, when and how a data file's figures were measured, for under its table."""
    env = load_data(name)["environment"]
    threads = f"{env['threads']} thread" + ("s" if env["threads"] != 1 else "")
    return (
        f"*Measured {env['date']} on {env['machine']} (CPU: {env['cpu_features']}),"
        f" {threads}; {env['software']}; {env['weights']} weights."
        f" Command: `{env['command']}`. Data: [{name}.json](data/{name}.json).*"
    )


def _rows(name: str, **match: object) -> list[dict[str, Any]]:
    return [
        r for r in load_data(name)["rows"] if all(str(r.get(k)) == str(v) for k, v in match.items())
    ]


def _one(name: str, **match: object) -> dict[str, Any]:
    found = _rows(name, **match)
    if len(found) != 1:
        raise ValueError(f"docs/data/{name}.json: {len(found)} rows match {match}, not 1")
    return found[0]


def data_value(name: str, field: str, filters: list[str]) -> str:
    """An inline figure: ``FIELD`` of the one row matching ``key=value`` filters, or, with a
    ``/`` among the filters, the ratio of that row's field to the row matched after replacing
    the filters given after the ``/`` (``runtime=onnxruntime-int8 batch=1 / runtime=onnxruntime``
    gives int8's time over fp32's), to two decimals."""
    if "/" in filters:
        cut = filters.index("/")
        top = dict(f.split("=", 1) for f in filters[:cut])
        bottom = {**top, **dict(f.split("=", 1) for f in filters[cut + 1 :])}
        ratio = float(_one(name, **top)[field]) / float(_one(name, **bottom)[field])
        return f"{ratio:.2f}"
    return str(_one(name, **dict(f.split("=", 1) for f in filters))[field])


def _ms(value: object) -> str:
    return "" if value is None else f"{value}"


def benchmark_tables() -> str:
    """One table per model of the recorded benchmark: median ms, images/s and the ratio to the
    reference, at batch 1 and 32 side by side, each row named by its runtime."""
    rows = load_data("benchmark-1thread")["rows"]
    out: list[str] = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        out += [
            f"#### {model} ({mine[0]['params']} parameters, {mine[0]['macs']} MACs)",
            "",
            "| implementation | runtime | batch 1: median ms | img/s | mnaszoo/ref"
            " | batch 32: median ms | img/s | mnaszoo/ref |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for impl, runtime in dict.fromkeys((r["impl"], r["runtime"]) for r in mine):
            cells = [impl, f"`{runtime}`"]
            for batch in (1, 32):
                row = next(
                    (
                        r
                        for r in mine
                        if (r["impl"], r["runtime"], r["batch"]) == (impl, runtime, batch)
                    ),
                    None,
                )
                if row is None:
                    cells += ["", "", ""]
                else:
                    ratio = row.get("mnaszoo_over_ref")
                    cells += [
                        f"{row['median_ms']:.2f}",
                        f"{row['images_per_s']:.1f}",
                        "" if ratio is None else f"{ratio:.2f}",
                    ]
            out.append(f"| {' | '.join(cells)} |")
        out.append("")
    out.append(environment_line("benchmark-1thread"))
    return "\n".join(out)


def optimize_speed_table() -> str:
    """torch against torch-optimized for each model of the recorded benchmark."""
    lines = [
        "| model | batch | torch ms | torch-optimized ms | torch-optimized / torch |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in _rows("benchmark-1thread", impl="mnaszoo", runtime="torch"):
        fast = _one(
            "benchmark-1thread",
            impl="mnaszoo",
            runtime="torch-optimized",
            model=row["model"],
            batch=row["batch"],
        )
        ratio = fast["median_ms"] / row["median_ms"]
        lines.append(
            f"| `{row['model']}` | {row['batch']} | {row['median_ms']:.2f}"
            f" | {fast['median_ms']:.2f} | {ratio:.2f} |"
        )
    return "\n".join([*lines, "", environment_line("benchmark-1thread")])


def executorch_a1_table() -> str:
    """``mnasnet_a1`` in each runtime, with each time over onnxruntime's and over torch's."""
    rows = load_data("executorch-a1")["rows"]
    ort = _one("executorch-a1", runtime="onnxruntime")["median_ms"]
    eager = _one("executorch-a1", runtime="torch")["median_ms"]
    lines = [
        "| runtime | median ms | / onnxruntime | / torch |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['runtime']}` | {r['median_ms']:.2f} | {r['median_ms'] / ort:.2f}"
            f" | {r['median_ms'] / eager:.2f} |"
        )
    return "\n".join([*lines, "", environment_line("executorch-a1")])


def int8_layers_table() -> str:
    """Single layers, fp32 against int8 in ExecuTorch."""
    lines = ["| layer | executorch ms | executorch-int8 ms | int8 / fp32 |", "|---|---:|---:|---:|"]
    for r in load_data("executorch-int8-layers")["rows"]:
        lines.append(
            f"| {r['layer']} | {r['fp32_ms']:.3f} | {r['int8_ms']:.3f}"
            f" | {r['int8_ms'] / r['fp32_ms']:.2f} |"
        )
    return "\n".join([*lines, "", environment_line("executorch-int8-layers")])


def int8_digits_avx2_table() -> str:
    """The digits model's accuracy and batch-1 latency in each runtime (AVX2 machine)."""
    lines = [
        "| runtime | top-1 on 359 validation digits | top-1 agrees with fp32"
        " | batch 1 ms (64&times;64) |",
        "|---|---:|---:|---:|",
    ]
    for r in load_data("int8-digits-avx2")["rows"]:
        agrees = "" if r["agrees"] is None else f"{r['agrees']:.2f}%"
        lines.append(f"| `{r['runtime']}` | {r['top1']:.2f}% | {agrees} | {r['batch1_ms']:.2f} |")
    return "\n".join([*lines, "", environment_line("int8-digits-avx2")])


def int8_digits_vnni_table() -> str:
    """The digits model's milliseconds per call in each runtime (AVX-512 VNNI machine)."""
    runtimes = ("torch", "torch-optimized", "onnxruntime", "onnxruntime-int8")
    lines = [
        f"| input | batch | {' | '.join(runtimes)} | int8 / fp32 |",
        f"|---|---:|{'---:|' * len(runtimes)}---:|",
    ]
    for r in load_data("int8-digits-vnni")["rows"]:
        cells = [f"{r['input']}&times;{r['input']}", str(r["batch"])]
        cells += [_ms(r[k]) for k in runtimes]
        cells.append(f"{r['onnxruntime-int8'] / r['onnxruntime']:.2f}")
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join([*lines, "", environment_line("int8-digits-vnni")])


BATCH_CONFIGS = {
    "naive": "one process: decode, preprocess, run the model (torch, as loaded)",
    "dataloader-2": "a plain torch DataLoader with 2 workers, model as loaded",
    "stream-0": "`predict --output`, decoding in the model's process",
    "stream-1": "`predict --output --workers 1`",
    "stream-2": "`predict --output --workers 2`",
    "stream-2-ort": "`predict --output --workers 2 --backend onnxruntime`",
    "ray-1": "`predict --output --ray --workers 1` (1 model actor)",
    "ray-2": "`predict --output --ray --workers 2` (2 model actors)",
}


def batch_predict_table() -> str:
    """Images per second and peak memory of each batch-prediction configuration, then peak
    memory against the corpus size."""
    data = load_data("batch-predict")
    lines = [
        "| configuration | what runs | images/s | &times; naive | peak memory (MiB) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| `{r['config']}` | {BATCH_CONFIGS.get(r['config'], '')} | {r['images_per_s']:.1f}"
            f" | {r['x_naive']:.2f} | {r['peak_mib']} |"
        )
    if data.get("memory"):
        lines += ["", "| `stream-2` over | peak memory (MiB) |", "|---:|---:|"]
        for m in data["memory"]:
            lines.append(f"| {m['images']:,} images | {m['peak_mib']} |")
    return "\n".join([*lines, "", environment_line("batch-predict")])


def _minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{whole} s"


def _seeds_table(
    name: str, group: str, heading: str, score: str, score_title: str, digits: int
) -> str:
    """One row per value of ``group`` in ``docs/data/NAME.json``: its epochs, the ``score`` of
    each seed (a fraction, shown in percent), their mean and the mean wall time."""
    rows = load_data(name)["rows"]
    lines = [
        f"| {heading} | epochs | {score_title} per seed | mean | mean wall time |",
        "|---|---:|---|---:|---:|",
    ]
    for value in dict.fromkeys(r[group] for r in rows):
        runs = [r for r in rows if r[group] == value]
        scores = [100 * r[score] for r in runs]
        per_seed = ", ".join(
            f"{a:.{digits}f}% (seed {r['seed']})" for a, r in zip(scores, runs, strict=True)
        )
        wall = sum(r["wall_seconds"] for r in runs) / len(runs)
        mean = sum(scores) / len(scores)
        label = f"`{value}`" if group == "recipe" else value
        lines.append(
            f"| {label} | {runs[0]['epochs']} | {per_seed} | {mean:.{digits}f}%"
            f" | {_minutes(wall)} |"
        )
    return "\n".join([*lines, "", environment_line(name)])


def train_recipes_table() -> str:
    """Per recipe: its epochs, the accuracy of each seed, their mean, and the mean wall time."""
    return _seeds_table(
        "train-recipes", "recipe", "recipe", "best_val_acc", "best validation accuracy", 2
    )


def train_from_search_table() -> str:
    """Held-out accuracy of a search's network fine-tuned, against training from scratch."""
    return _seeds_table(
        "train-from-search", "start", "start", "held_out_acc", "held-out accuracy", 1
    )


DATA_TABLES = {
    "train-recipes": train_recipes_table,
    "train-from-search": train_from_search_table,
    "batch-predict": batch_predict_table,
    "benchmark-1thread": benchmark_tables,
    "optimize-speed": optimize_speed_table,
    "executorch-a1": executorch_a1_table,
    "executorch-int8-layers": int8_layers_table,
    "int8-digits-avx2": int8_digits_avx2_table,
    "int8-digits-vnni": int8_digits_vnni_table,
}


_RUNS: dict[str, str] = {}


def run_command(command: str) -> str:
    """A console block: ``command`` (``[VAR=value ...] mnaszoo ARGS``) run now, in a fresh
    home folder with no weights cached and no network use (``HF_HUB_OFFLINE=1``), from the
    repository root; its stdout and stderr as they came, and its exit status if not 0."""
    if command in _RUNS:
        return _RUNS[command]
    words = shlex.split(command)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MNASZOO_"))}
    while words and "=" in words[0]:
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    if not words or words[0] != "mnaszoo":
        raise ValueError(f"only mnaszoo commands run at build time, not {command!r}")
    with tempfile.TemporaryDirectory(prefix="mnaszoo-docs-home-") as home:
        env.update(HOME=home, HF_HUB_OFFLINE="1", COLUMNS="100", NO_COLOR="1")
        done = subprocess.run(
            [sys.executable, "-m", "mnaszoo", *words[1:]],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
    # the fresh home folder stands for the reader's: show it as ~, as a shell would
    output = done.stdout.replace(home, "~").rstrip("\n")
    lines = ["```console", f"$ {command}", output]
    if done.returncode != 0:
        lines += ["$ echo $?", str(done.returncode)]
    lines.append("```")
    _RUNS[command] = "\n".join(lines)
    return _RUNS[command]


_OUTPUT = re.compile(r"<!--\s*mnaszoo:output\s*-->\s*\n(```python\n(.*?)\n```)", re.DOTALL)


def run_python(code: str) -> str:
    """A Python example run now, as a reader would run it from a clone's root: a fresh home
    folder with no weights cached, no network use (``HF_HUB_OFFLINE=1``), files it writes kept
    out of the repository (a temporary working folder that links ``docs/``). Returns its output
    as a ``text`` block; an example that fails stops the build."""
    if code in _RUNS:
        return _RUNS[code]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MNASZOO_"))}
    with tempfile.TemporaryDirectory(prefix="mnaszoo-docs-example-") as work:
        (Path(work) / "docs").symlink_to(ROOT / "docs")
        env.update(HOME=work, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"))
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"a documented example failed:\n{code}\n{done.stderr[-2000:]}")
    _RUNS[code] = "\n".join(["```text", done.stdout.rstrip("\n"), "```"])
    return _RUNS[code]


_RECORDED = re.compile(
    r"<!--\s*mnaszoo:recorded\s+([\w-]+)\s*-->\s*\n(```python\n(.*?)\n```)", re.DOTALL
)
_RECORDED_ENV = re.compile(r"<!--\s*mnaszoo:recorded-environment\s+([\w-]+)\s*-->")


def recorded_output(name: str, code: str) -> str:
    """The recorded output of a long example (``docs/data/NAME.json``, written by
    ``docs/record_NAME.py``) for the block whose code is ``code``, as a ``text`` block. A block
    that was not recorded (the page changed since) is an error: rerun the recorder."""
    for row in load_data(name)["rows"]:
        if row["code"] == code:
            return "\n".join(["```text", row["output"], "```"])
    raise ValueError(
        f"docs/data/{name}.json holds no recording of this block; rerun"
        f" `python docs/record_{name}.py`:\n{code}"
    )


def recorded_environment(name: str) -> str:
    """Where, when and with what a recorded example ran, for under its last block."""
    env = load_data(name)["environment"]
    threads = f"{env['threads']} thread" + ("s" if env["threads"] != 1 else "")
    return (
        f"*Recorded {env['date']} on {env['machine']} (CPU: {env['cpu_features']}), torch using"
        f" {threads}; {env['software']}; {env['seconds']:.0f} s in all. Command:"
        f" `{env['command']}`. Data: [{name}.json](data/{name}.json).*"
    )


def which_model() -> str:
    """The "which model?" table (docs/model_pages.py)."""
    table: str = _sibling("model_pages").which_model_table()
    return table


GENERATORS = {
    "zoo-table": zoo_table,
    "checkpoint-details": checkpoint_details,
    "metrics-table": metrics_table,
    "architectures-side-by-side": side_by_side,
    "api-index": api_index,
    "errors-tree": errors_tree,
    "which-model": which_model,
}


def missing_from_site(api_ids: set[str], zoo_html: str) -> list[str]:
    """What the built site lacks: public names without an API entry, manifest entries absent
    from the model zoo page."""
    missing = [f"API entry mnaszoo.{n}" for n in mnaszoo.__all__ if f"mnaszoo.{n}" not in api_ids]
    missing += [f"weights {w} on {ZOO_PAGE}" for w in mnaszoo.list_weights() if w not in zoo_html]
    missing += [f"model {n} on {ZOO_PAGE}" for n in mnaszoo.list_models() if n not in zoo_html]
    return missing


# --- MkDocs events --------------------------------------------------------------------------

_seen: dict[str, Any] = {"ids": set(), "zoo": ""}


def on_pre_build(config: Any) -> None:
    _seen["ids"] = set()
    _seen["zoo"] = ""


def _sibling(name: str) -> Any:
    """docs/NAME.py, loaded by path (MkDocs loads this file as a lone module)."""
    spec = importlib.util.spec_from_file_location(
        f"mnaszoo_docs_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def on_files(files: Any, config: Any) -> Any:
    """Add the pictures drawn from the code (docs/figures.py) and the model pages
    (docs/model_pages.py) to the site, so pages can show and link them as ordinary files and
    the strict build checks the links to them."""
    from mkdocs.structure.files import File

    generated = {**_sibling("figures").site_figures(), **_sibling("model_pages").model_pages()}
    # CHANGELOG.md lives at the repository's root (where readers of a clone look for it)
    generated["changelog.md"] = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for path, text in generated.items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=text))
    return files


def repository_links(markdown: str, page_uri: str, docs_dir: Path, repo_url: str) -> str:
    """Point relative links that leave ``docs_dir`` at the files on ``repo_url`` (branch main)."""
    page_dir = (docs_dir / page_uri).parent

    def rewrite(match: re.Match[str]) -> str:
        target = (page_dir / match.group(2)).resolve()
        inside_docs = target.is_relative_to(docs_dir.resolve())
        if inside_docs or not target.is_relative_to(ROOT) or not target.exists():
            return match.group(0)
        kind = "tree" if target.is_dir() else "blob"
        url = f"{repo_url.rstrip('/')}/{kind}/main/{target.relative_to(ROOT).as_posix()}"
        return f"{match.group(1)}{url}{match.group(3) or ''}{match.group(4)}"

    return _LINK.sub(rewrite, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    from mkdocs.exceptions import PluginError

    if config.get("repo_url"):
        markdown = repository_links(
            markdown, page.file.src_uri, Path(config["docs_dir"]), config["repo_url"]
        )

    def generate(match: re.Match[str]) -> str:
        generator = GENERATORS.get(match.group(1))
        if generator is None:
            raise PluginError(
                f"{page.file.src_uri}: unknown generated section {match.group(0)!r}; known:"
                f" {', '.join(GENERATORS)}."
            )
        return generator()

    def table(match: re.Match[str]) -> str:
        generator = DATA_TABLES.get(match.group(1))
        if generator is None:
            raise PluginError(
                f"{page.file.src_uri}: unknown data table {match.group(0)!r}; known:"
                f" {', '.join(DATA_TABLES)}."
            )
        return generator()

    def value(match: re.Match[str]) -> str:
        try:
            return data_value(match.group(1), match.group(2), match.group(3).split())
        except (ValueError, KeyError) as error:
            raise PluginError(f"{page.file.src_uri}: {match.group(0)}: {error}") from error

    def output(match: re.Match[str]) -> str:
        try:
            return f"{match.group(1)}\n\n{run_python(match.group(2))}"
        except RuntimeError as error:
            raise PluginError(f"{page.file.src_uri}: {error}") from error

    def recorded(match: re.Match[str]) -> str:
        try:
            return f"{match.group(2)}\n\n{recorded_output(match.group(1), match.group(3))}"
        except (ValueError, KeyError) as error:
            raise PluginError(f"{page.file.src_uri}: {error}") from error

    def recorded_env(match: re.Match[str]) -> str:
        try:
            return recorded_environment(match.group(1))
        except (ValueError, KeyError) as error:
            raise PluginError(f"{page.file.src_uri}: {match.group(0)}: {error}") from error

    markdown = _RUN.sub(lambda match: run_command(match.group(1)), markdown)
    markdown = _OUTPUT.sub(output, markdown)
    markdown = _RECORDED.sub(recorded, markdown)
    markdown = _RECORDED_ENV.sub(recorded_env, markdown)
    markdown = _DATA_MARKER.sub(table, markdown)
    markdown = _VALUE_MARKER.sub(value, markdown)
    return _MARKER.sub(generate, markdown)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    _seen["ids"].update(_API_ID.findall(html))
    if page.file.src_uri == ZOO_PAGE:
        _seen["zoo"] = html
    return html


def on_post_build(config: Any) -> None:
    from mkdocs.exceptions import PluginError

    missing = missing_from_site(_seen["ids"], _seen["zoo"])
    if missing:
        raise PluginError("The site is incomplete; missing: " + "; ".join(missing))
