"""The documentation pages: product words only, one name per runtime, every figure from its data
file."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mnaszoo.deploy.runtimes import RUNTIMES

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.rglob("*.md"), ROOT / "README.md", ROOT / "CHANGELOG.md"])
DATA_FILES = sorted((DOCS / "data").glob("*.json"))


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mnaszoo_docs_hooks_pages", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# Words about how the project was made, which a user's page has no business with.
HISTORY = re.compile(
    r"\b(issues?|sessions?|lent|helpers? session|coordinator|the GPU machine|this project's"
    r"|development round|round \d+ of)\b",
    re.IGNORECASE,
)


@pytest.mark.parametrize("page", [p for p in PAGES if p.exists()], ids=_id)
def test_pages_describe_the_product_not_how_it_was_made(page: Path) -> None:
    # prose only: code (onnxruntime's InferenceSession, a command's output) may say "session"
    text = re.sub(
        r"```.*?```",
        lambda m: "\n" * m.group(0).count("\n"),
        page.read_text("utf-8"),
        flags=re.DOTALL,
    )
    found = [
        f"line {n}: {line.strip()}"
        for n, line in enumerate(text.splitlines(), 1)
        if HISTORY.search(re.sub(r"`[^`]*`", "", line))
    ]
    assert not found, "\n".join(found)


def test_the_history_check_catches_what_it_should() -> None:
    for text in (
        "The issue's old per-layer table",
        "the GPU machine lent to this project",
        "measured in this session",
        "on this project's 2-core build machine",
    ):
        assert HISTORY.search(text), text
    for text in ("round-robin", "the fine-tuning helpers", "a silent failure", "calibration"):
        assert not HISTORY.search(text), text


# The old names of two runtimes, as a runtime: `plain`, **optimized**, "/ plain".
OLD_NAMES = re.compile(r"(`|\*\*|/ )(plain|optimi[sz]ed)(`|\*\*|\b)")


@pytest.mark.parametrize("page", [p for p in PAGES if p.exists()], ids=_id)
def test_runtimes_have_the_command_lines_names(page: Path) -> None:
    found = [
        f"line {n}: {line.strip()}"
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        # the changelog and the FAQ name the old names as such
        if OLD_NAMES.search(line) and not re.search(r"earlier|alias|are now", line)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", DATA_FILES, ids=lambda p: p.name)
def test_each_data_file_says_where_when_and_how_it_was_measured(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    env = data["environment"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", env["date"])
    assert env["machine"] and env["software"] and env["command"]
    assert re.search(r"AVX|NEON|VNNI|AMX", env["cpu_features"])
    assert isinstance(env["threads"], int) and env["threads"] >= 1
    runtimes = {r["runtime"] for r in data["rows"] if "runtime" in r}
    runtimes |= {k for r in data["rows"] for k in r if k in RUNTIMES}
    assert runtimes <= set(RUNTIMES), runtimes - set(RUNTIMES)


def test_every_data_file_is_shown_and_every_table_has_its_file() -> None:
    hooks = _hooks()
    shown = {
        name
        for page in DOCS.rglob("*.md")
        for name in re.findall(r"<!--\s*mnaszoo:data\s+([\w-]+)\s*-->", page.read_text())
    }
    assert shown == set(hooks.DATA_TABLES)
    used = {
        name
        for page in DOCS.rglob("*.md")
        for name in re.findall(
            r"<!--\s*mnaszoo:(?:data|value|recorded)\s+([\w-]+)", page.read_text()
        )
    }
    files = {p.stem for p in DATA_FILES}
    assert (used - {"optimize-speed"}) <= files
    assert files <= used | {"benchmark-1thread"}


def test_inline_figures_are_read_from_the_data_file() -> None:
    hooks = _hooks()
    rows = json.loads((DOCS / "data" / "benchmark-1thread.json").read_text())["rows"]
    a1 = {
        (r["runtime"], r["batch"]): r["median_ms"]
        for r in rows
        if r["model"] == "mnasnet_a1" and r["impl"] == "mnaszoo"
    }
    filters = "model=mnasnet_a1 impl=mnaszoo runtime=onnxruntime-int8 batch=1 / runtime=onnxruntime"
    expected = a1[("onnxruntime-int8", 1)] / a1[("onnxruntime", 1)]
    assert hooks.data_value("benchmark-1thread", "median_ms", filters.split()) == f"{expected:.2f}"
    value = hooks.data_value(
        "benchmark-1thread",
        "median_ms",
        ["model=mnasnet_a1", "impl=mnaszoo", "runtime=torch", "batch=32"],
    )
    assert value == str(a1[("torch", 32)])
    with pytest.raises(ValueError, match="rows match"):
        hooks.data_value("benchmark-1thread", "median_ms", ["model=mnasnet_a1"])
    with pytest.raises(ValueError, match="no data file"):
        hooks.data_value("nothing-here", "median_ms", [])


def test_no_speed_ratio_is_typed_into_the_benchmark_pages() -> None:
    """A speed-up ratio in prose (``0.57`` and a multiplication sign) must come from a value
    marker: after removing markers and code blocks, the benchmark pages carry no typed ratio."""
    for name in ("benchmarks.md", "deploy.md", "export.md"):
        text = (DOCS / name).read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
        text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
        typed = re.findall(r"\b\d\.\d\d?(?:\u00d7|x\b)", text)
        assert not typed, f"{name}: {typed}"


def _sibling(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"mnaszoo_docs_{name}_pages", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_model_has_a_page_and_a_row_in_which_model() -> None:
    import mnaszoo

    pages = _sibling("model_pages").model_pages()
    table = _sibling("model_pages").which_model_table()
    for name in mnaszoo.list_models():
        page = pages[f"models/{name}.md"]
        assert page.startswith(f"# {name}\n")
        size = 320 if name == "mnasnet_d1_320" else 224
        assert str(mnaszoo.describe(name, input_size=size)) in page
        assert f"[`{name}`](models/{name}.md)" in table
        assert pages[f"images/generated/models/{name}.svg"].startswith("<svg")
    # measured latencies are the data file's
    rows = json.loads((DOCS / "data" / "benchmark-1thread.json").read_text())["rows"]
    a1 = next(
        r
        for r in rows
        if (r["model"], r["impl"], r["runtime"], r["batch"])
        == ("mnasnet_a1", "mnaszoo", "onnxruntime-int8", 1)
    )
    (line,) = [row for row in table.splitlines() if row.startswith("| [`mnasnet_a1`]")]
    assert f"| {a1['median_ms']:.2f} |" in line


def test_every_runtime_has_one_colour_in_the_charts() -> None:
    colours = _sibling("figures").RUNTIME_COLOURS
    assert tuple(colours) == RUNTIMES
    assert len(set(colours.values())) == len(colours)
