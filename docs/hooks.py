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
- ``errors-tree``: the exception hierarchy of ``mnaszoo.errors``.

Links from a page to a file of the repository outside ``docs/`` (``../examples/finetune.py``),
which work when the Markdown is read on GitHub, are pointed at the file on ``repo_url`` in the
site; a link to a file that does not exist is left alone, so the strict build still reports it.

After the build, the site must hold an API entry (``id="mnaszoo.NAME"``) for every name of
``mnaszoo.__all__`` and must name every manifest entry on the model zoo page; otherwise the build
fails. ``tests/test_docs.py`` imports this module to check the generated tables too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import mnaszoo
from mnaszoo.models.architectures import MNASNET_A1, MNASNET_B1, MNASNET_SMALL
from mnaszoo.models.registry import MODELS
from mnaszoo.models.specs import BlockKind, NetworkSpec, StageSpec
from mnaszoo.weights.manifest import HubSource, Preprocessing, WeightsRecord, load_manifest

ROOT = Path(__file__).resolve().parents[1]
ZOO_PAGE = "zoo.md"
_MARKER = re.compile(r"<!--\s*mnaszoo:([\w-]+)\s*-->")
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


def zoo_table() -> str:
    """One row per published checkpoint, and one per model that has none."""
    manifest = load_manifest()
    lines = [
        "| model | arch | width | params | MACs @224 | weights | ImageNet top-1 / top-5"
        " | reported by | license | preprocessing |",
        "|---|---|---:|---:|---:|---|---|---|---|---|",
    ]
    for name in mnaszoo.list_models():
        entry = MODELS[name]
        summary = mnaszoo.describe(name)
        model_cells = (
            f"`{name}`",
            _ARCH_NAMES.get(entry.spec.name, entry.spec.name),
            f"{entry.width_mult:.1f}" if entry.width_mult.is_integer() else f"{entry.width_mult:g}",
            f"{summary.params:,}",
            f"{summary.macs / 1e6:.1f} M",
        )
        records = [r for r in manifest.records.values() if r.model == name]
        records.sort(key=lambda r: (manifest.defaults[name] != r.id, r.id))
        if not records:
            lines.append(f"| {' | '.join(model_cells)} | no public PyTorch checkpoint | | | | |")
        for index, record in enumerate(records):
            metric = next((m for m in record.metrics if m.dataset == "imagenet-1k-val"), None)
            result = "-" if metric is None else f"{metric.top1} / {metric.top5 or '-'}"
            default = " (default)" if manifest.defaults[name] == record.id else ""
            cells = (
                *(model_cells if index == 0 else ("",) * len(model_cells)),
                f"[`{record.id}`]({source_url(record)}){default}",
                result,
                _cell(metric.source if metric else "-"),
                record.license,
                preprocessing_text(record.preprocessing),
            )
            lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


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


GENERATORS = {
    "zoo-table": zoo_table,
    "metrics-table": metrics_table,
    "architectures-side-by-side": side_by_side,
    "api-index": api_index,
    "errors-tree": errors_tree,
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
