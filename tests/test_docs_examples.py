"""A Python example that a page shows with its output (a ``python`` block, then a ``text``
block) still prints that output: the test runs it as a reader would, from a clone's root.

Examples whose output the build itself appends (``<!-- mnaszoo:output -->``, docs/hooks.py)
are current by construction and are not repeated here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
# a python block right before a text block; neither contains a fence
PAIR = re.compile(
    r"(?<!-->\n)```python\n((?:(?!```).)*?)\n```[ \t]*\n\s*```text\n((?:(?!```).)*?)\n```",
    re.DOTALL,
)


def _examples() -> list[tuple[str, int, str, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in PAIR.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((page.name, line, match.group(1), match.group(2)))
    return found


EXAMPLES = _examples()


def test_the_pages_show_examples_with_their_output() -> None:
    assert any(page == "deploy.md" for page, *_ in EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "line", "code", "shown"), EXAMPLES, ids=[f"{p}:{n}" for p, n, *_ in EXAMPLES]
)
def test_a_shown_output_is_what_the_example_prints(
    page: str, line: int, code: str, shown: str, tmp_path: Path
) -> None:
    if "executorch" in code and importlib.util.find_spec("executorch") is None:
        pytest.skip("needs mnaszoo[edge]")
    (tmp_path / "docs").symlink_to(DOCS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MNASZOO_"))}
    env.update(HOME=str(tmp_path), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.rstrip("\n") == shown, f"{page} line {line} shows another output"
