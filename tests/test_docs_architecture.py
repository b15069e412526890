"""docs/architecture.md shows the package as it is: its module list names every module of
src/mnaszoo, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"


def _listed() -> set[str]:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("## Every module", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(mnaszoo/[\w/]+\.py)`", section))


def _modules() -> set[str]:
    source = ROOT / "src"
    return {p.relative_to(source).as_posix() for p in (source / "mnaszoo").rglob("*.py")}


def test_every_module_is_listed_and_nothing_else() -> None:
    listed, modules = _listed(), _modules()
    assert not modules - listed, f"add to docs/architecture.md: {sorted(modules - listed)}"
    assert not listed - modules, f"no longer exist: {sorted(listed - modules)}"


def test_every_sub_package_has_a_section_or_a_row() -> None:
    text = PAGE.read_text(encoding="utf-8")
    packages = {
        p.parent.relative_to(ROOT / "src").as_posix().replace("/", ".")
        for p in (ROOT / "src" / "mnaszoo").rglob("__init__.py")
    }
    for package in packages:
        top = ".".join(package.split(".")[:2])
        assert f"### {top}" in text or package == "mnaszoo", package
