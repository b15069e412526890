"""docs/check_layout.py finds what a reader cannot see, on a small site with known faults.

Needs Debian's ``chromium`` (or ``$CHROMIUM``); skipped without it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

CHROMIUM = shutil.which(os.environ.get("CHROMIUM", "chromium"))
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary")

ARTICLE = "<article class='md-content__inner md-typeset' style='width:600px'>{}</article>"
CLEAN = """<h1>Clean</h1><p>Short text that fits, long enough not to count as an empty page at
all.</p><table><tr><td><code>mnasnet_a1</code></td><td>1</td></tr></table>
<pre><code>print("short")</code></pre><img src="ok.svg" alt="ok">"""
FAULTY = """<h1>Faulty</h1><p>A page with every fault the check looks for, and enough words.</p>
<div style="overflow:auto;width:300px"><table style="width:900px"><tr><td>wide</td></tr></table>
</div><table style="width:200px"><tr><td style="width:60px"><code
style="white-space:normal">mnasnet_a1_075.rmsp_in1k some more</code></td></tr></table>
<pre><code style="display:block;overflow:auto;white-space:pre">{}</code></pre>
<img src="missing.png" alt="gone">"""
SVG = (
    "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'>"
    "<rect width='10' height='10'/></svg>"
)


def _checker() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "docs" / "check_layout.py"
    spec = importlib.util.spec_from_file_location("mnaszoo_check_layout", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _page(folder: Path, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(
        f"<!doctype html><html><body>{ARTICLE.format(body)}</body></html>", encoding="utf-8"
    )


def _kinds(problems: list[str]) -> list[str]:
    """``/faulty/index.html: table cut off`` for ``http 1280px /faulty/index.html: table cut off:
    ...``."""
    return sorted(
        {p.split(" ", 2)[2].split(": ", 2)[0] + ": " + p.split(": ", 2)[1] for p in problems}
    )


def test_reports_each_fault_and_nothing_on_a_clean_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _page(site, CLEAN)
    (site / "ok.svg").write_text(SVG, encoding="utf-8")
    _page(site / "faulty", FAULTY.format("x = 1  # " + "a long comment " * 20))
    _page(site / "empty", "<h1>Nothing</h1>")
    problems = _checker().check(site, [1280], CHROMIUM, None)
    assert _kinds(problems) == [
        "/empty/index.html: empty page",
        "/faulty/index.html: broken image",
        "/faulty/index.html: code cut off",
        "/faulty/index.html: code wrapped in a table cell",
        "/faulty/index.html: table cut off",
    ]


WIDE = "<h1>Wide</h1><p>{}</p>" + "<p>A paragraph of ordinary words, long enough to count.</p>"
SCROLLING = (
    "<div style='overflow-x:auto'><table style='width:900px'><tr><td>x</td></tr></table></div>"
)
CUT = (
    "<div style='overflow:hidden;width:300px'>"
    "<table style='width:900px'><tr><td>x</td></tr></table></div>"
)


def test_a_phone_may_scroll_a_table_in_its_own_box_a_desktop_may_not(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _page(site / "scrolling", WIDE.format(SCROLLING).replace("width:600px", "max-width:100%"))
    _page(site / "cut", WIDE.format(CUT).replace("width:600px", "max-width:100%"))
    output = "<pre><code style='display:block;overflow-x:auto;white-space:pre'>{}</code></pre>"
    _page(site / "output", WIDE.format(output.format("column " * 80)))
    phone = _checker().check(site, [390], CHROMIUM, None)
    assert _kinds(phone) == ["/cut/index.html: table cut off"]
    desktop = _checker().check(site, [1280], CHROMIUM, None)
    assert _kinds(desktop) == [
        "/cut/index.html: table cut off",
        "/output/index.html: code cut off",
        "/scrolling/index.html: table cut off",
    ]


def test_from_disk_reports_folder_links_and_requests_that_leave_the_machine(tmp_path: Path) -> None:
    site = tmp_path / "site"
    body = CLEAN.replace(
        "<h1>Clean</h1>",
        "<h1>Clean</h1><a href='other/'>a folder</a><a href='other/index.html'>a page</a>",
    )
    _page(site, body)
    (site / "ok.svg").write_text(SVG, encoding="utf-8")
    (site / "index.html").write_text(
        (site / "index.html")
        .read_text()
        .replace(
            "<body>",
            "<link rel='stylesheet' href='https://fonts.googleapis.com/css?family=Roboto'><body>",
        )
    )
    from_disk = _checker().check(site, [1280], CHROMIUM, None, schemes=("file",))
    assert [p.split(": ", 2)[1] for p in from_disk] == [
        "link to a folder (a directory listing from disk)",
        "request leaves the machine",
    ]
    assert "https://fonts.googleapis.com/css?family=Roboto" in from_disk[1]
    served = _checker().check(site, [1280], CHROMIUM, None, schemes=("http",))
    assert [p.split(": ", 2)[1] for p in served] == ["request leaves the machine"]


CHART = """<svg xmlns='http://www.w3.org/2000/svg' width='400' height='200' font-size='11'
font-family='sans-serif'><path d='M10,100 L390,100' fill='none' stroke='black'/>
<text x='20' y='104'>on the line</text><text x='200' y='40'>first label</text>
<text x='210' y='42'>second label</text><text x='20' y='180'>alone<title>a tooltip</title></text>
</svg>"""


def test_chart_labels_that_touch_a_line_or_each_other_are_reported(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "images" / "generated").mkdir(parents=True)
    (site / "images" / "generated" / "chart.svg").write_text(CHART, encoding="utf-8")
    problems = _checker().check_charts(site, CHROMIUM)
    assert sorted(p.split(": ", 1)[1] for p in problems) == [
        "label on a line: on the line",
        "labels overlap: first label / second label",
    ]


@pytest.mark.slow
def test_the_site_reads_on_a_phone_and_a_desktop_served_and_from_disk(tmp_path: Path) -> None:
    """The docs build's layout check: every page at 390 and 1280 px, over http:// and file://,
    no request off the machine, search working from disk, chart labels clear of their lines."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    checker = _checker()
    site = tmp_path / "site"
    checker.build(site)
    problems = checker.check(site, [390, 1280], CHROMIUM, None, schemes=("http", "file"))
    assert problems == []
