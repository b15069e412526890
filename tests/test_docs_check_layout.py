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


def test_reports_each_fault_and_nothing_on_a_clean_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _page(site, CLEAN)
    (site / "ok.svg").write_text(SVG, encoding="utf-8")
    _page(site / "faulty", FAULTY.format("x = 1  # " + "a long comment " * 20))
    _page(site / "empty", "<h1>Nothing</h1>")
    problems = _checker().check(site, [1280], CHROMIUM, None)
    kinds = sorted(
        {p.split(": ", 2)[0].split(" ", 1)[1] + ": " + p.split(": ", 2)[1] for p in problems}
    )
    assert kinds == [
        "/empty/: empty page",
        "/faulty/: broken image",
        "/faulty/: code cut off",
        "/faulty/: code wrapped in a table cell",
        "/faulty/: table cut off",
    ]
