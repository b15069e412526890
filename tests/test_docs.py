"""The docs show what the code computes, the docstring examples run, and the site is complete."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import io
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import mnaszoo

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"


def _hooks() -> ModuleType:
    """docs/hooks.py, the generator of the site's tables (it imports no MkDocs at module level)."""
    spec = importlib.util.spec_from_file_location("mnaszoo_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- hand-written tables that must match the code --------------------------------------------


@pytest.mark.parametrize("name", sorted(mnaszoo.ARCHITECTURES))
def test_architecture_tables_are_current(name: str) -> None:
    # each at the resolution its diagram shows: D1-320 at 320
    size = 320 if name.endswith("_320") else 224
    assert str(mnaszoo.describe(name, input_size=size)) in (DOCS / "architectures.md").read_text()


def _weights_table() -> str:
    from mnaszoo.weights.manifest import HubSource, load_manifest

    manifest = load_manifest()
    lines = [
        "| weights id | default | source | top-1 / top-5 (ImageNet val) | preprocessing"
        " | license | verified by |",
        "|---|---|---|---|---|---|---|",
    ]
    for weights_id in mnaszoo.list_weights():
        r = mnaszoo.get_weights(weights_id)
        if isinstance(r.source, HubSource):
            source = (
                f"[{r.source.repo_id}](https://huggingface.co/{r.source.repo_id})"
                f" `{r.source.filename}` @ `{r.source.revision[:8]}`"
            )
        else:
            source = f"[torchvision]({r.source})"
        metric = next(m for m in r.metrics if m.dataset == "imagenet-1k-val")
        p = r.preprocessing
        verified = (
            "sha256 (published)"
            if r.sha256
            else f"sha256 prefix {r.sha256_prefix}, then pinned on first use"
            if r.sha256_prefix
            else "Hub LFS sha256, then pinned on first use"
        )
        default = "yes" if manifest.defaults[r.model] == weights_id else ""
        lines.append(
            f"| `{weights_id}` | {default} | {source} | {metric.top1} / {metric.top5} |"
            f" resize {p.resize} {p.interpolation}, crop {p.input_size} | {r.license} |"
            f" {verified} |"
        )
    return "\n".join(lines)


def test_weights_table_is_current() -> None:
    assert _weights_table() in (DOCS / "weights.md").read_text()


# --- generated sections -----------------------------------------------------------------------


def test_zoo_table_covers_every_model_and_manifest_entry() -> None:
    table = _hooks().zoo_table()
    rows = table.splitlines()[2:]
    for name in mnaszoo.list_models():
        summary = mnaszoo.describe(name)
        assert any(
            row.startswith(f"| `{name}` |") and f"| {summary.params:,} |" in row for row in rows
        ), name
    for weights_id in mnaszoo.list_weights():
        record = mnaszoo.get_weights(weights_id)
        metric = next(m for m in record.metrics if m.dataset == "imagenet-1k-val")
        (row,) = [row for row in rows if f"[`{weights_id}`]" in row]
        anchor = "#" + weights_id.replace(".", "")
        assert f"| [{metric.top1}]({anchor}) | [{metric.top5}]({anchor}) |" in row


def test_checkpoint_details_give_the_provenance() -> None:
    details = _hooks().checkpoint_details()
    sections = re.split(r"^### ", details, flags=re.MULTILINE)[1:]
    assert [s.split(" ", 1)[0] for s in sections] == mnaszoo.list_weights()
    for weights_id, section in zip(mnaszoo.list_weights(), sections, strict=True):
        record = mnaszoo.get_weights(weights_id)
        assert f"{{#{weights_id.replace('.', '')}}}" in section
        assert f"**license**: {record.license}" in section
        assert (
            f"resize {record.preprocessing.resize} {record.preprocessing.interpolation}" in section
        )
        for metric in record.metrics:
            assert f"top-1 {metric.top1}" in section and metric.source in section


def test_generated_sections_are_requested_by_the_pages() -> None:
    hooks = _hooks()
    requested = {
        match
        for page in DOCS.rglob("*.md")
        for match in re.findall(r"<!--\s*mnaszoo:([\w-]+)\s*-->", page.read_text())
    }
    # "output" marks a Python example whose output the build appends (hooks.run_python)
    assert requested - {"output"} == set(hooks.GENERATORS)


def test_side_by_side_table_shows_the_spec_tables() -> None:
    table = _hooks().side_by_side()
    assert "| stages.2 | 28x28 | MBConv3 5x5 x3, stride 2 &rarr; 40, SE 0.25 |" in table
    for spec in (mnaszoo.MNASNET_A1, mnaszoo.MNASNET_B1, mnaszoo.MNASNET_SMALL):
        assert f"{mnaszoo.describe(spec).params:,}" in table


def test_errors_tree_lists_every_error() -> None:
    tree = _hooks().errors_tree()
    errors = [n for n in mnaszoo.__all__ if n.endswith("Error")]
    assert all(re.search(rf"\b{name}\b", tree) for name in errors)


# --- docstring examples -----------------------------------------------------------------------

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(mnaszoo.__path__, "mnaszoo.")
    if info.name != "mnaszoo.__main__"
)


@pytest.mark.parametrize("module_name", ["mnaszoo", *MODULES])
def test_docstring_examples_run(module_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``>>>`` example in mnaszoo's docstrings runs (those marked ``+SKIP`` need network)."""
    monkeypatch.chdir(ROOT)  # examples may name docs/images/...
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a cheap example never downloads
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    for test in finder.find(module, module_name):
        runner.run(test, out=report.write)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, report.getvalue()


# Functions that raise no error of their own (a valid spec always encodes).
_RAISE_NOTHING = {"encode_stages"}


def test_public_functions_have_complete_docstrings() -> None:
    for name in mnaszoo.__all__:
        obj = getattr(mnaszoo, name)
        if not inspect.isfunction(obj):
            continue
        doc = inspect.getdoc(obj) or ""
        sections = ["Args:", "Returns:", "Example"]
        if name not in _RAISE_NOTHING:
            sections.append("Raises:")
        missing = [s for s in sections if s not in doc]
        assert not missing, f"mnaszoo.{name} lacks {missing}"


# --- the built site ---------------------------------------------------------------------------


def test_site_builds_and_shows_every_public_name_and_manifest_entry(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    site = tmp_path / "site"
    child = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert child.returncode == 0, child.stderr[-4000:]
    html = {path: path.read_text("utf-8") for path in site.rglob("*.html")}
    ids = {i for text in html.values() for i in re.findall(r'id="(mnaszoo\.[\w.]+)"', text)}
    assert not [n for n in mnaszoo.__all__ if f"mnaszoo.{n}" not in ids]
    zoo = html[site / "zoo.html"]  # use_directory_urls: false, for file://
    assert not [w for w in mnaszoo.list_weights() if w not in zoo]
    assert not [n for n in mnaszoo.list_models() if f"<code>{n}</code>" not in zoo]


# --- pictures and command outputs drawn at build time ------------------------------------------


def _figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mnaszoo_docs_figures", DOCS / "figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_accuracy_chart_places_every_checkpoint_by_its_reported_top1() -> None:
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    root = ET.fromstring(_figures().accuracy_vs_macs())
    centres = {}
    for group in root.iter(f"{ns}g"):
        marker = group[0]
        if marker.tag == f"{ns}circle":
            centres[group.attrib["data-weights"]] = float(marker.attrib["cy"])
        else:  # a square
            centres[group.attrib["data-weights"]] = float(marker.attrib["y"]) + 4.5
    assert sorted(centres) == sorted(mnaszoo.list_weights())
    top1 = {
        w: next(m.top1 for m in mnaszoo.get_weights(w).metrics if m.dataset == "imagenet-1k-val")
        for w in centres
    }
    # y is a decreasing linear function of the reported top-1 (higher accuracy, higher up)
    best, worst = max(top1, key=top1.__getitem__), min(top1, key=top1.__getitem__)
    slope = (centres[best] - centres[worst]) / (top1[best] - top1[worst])
    assert slope < 0
    for w in centres:
        assert abs(centres[worst] + slope * (top1[w] - top1[worst]) - centres[w]) < 0.2, w


def test_run_markers_run_only_mnaszoo_commands() -> None:
    hooks = _hooks()
    block = hooks.run_command("mnaszoo info mnasnet_a2")
    assert block.startswith("```console\n$ mnaszoo info mnasnet_a2\nmnaszoo: error: Unknown model")
    assert block.endswith("$ echo $?\n1\n```")
    with pytest.raises(ValueError, match="only mnaszoo commands"):
        hooks.run_command("rm -rf /tmp/x")
