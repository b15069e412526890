"""Structure figures of ``src/mnaszoo/search`` at a git revision: files, modules with code, lines,
import arrows between its modules, and public names.

    python benchmarks/search_structure.py [REV]      # default HEAD

An import arrow is one (importing module, imported module) pair of a relative import whose
target lies inside ``mnaszoo.search`` (function-local imports included); each pair counts once.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def measure(rev: str) -> dict[str, int]:
    files = [
        f
        for f in _git("ls-tree", "-r", "--name-only", rev, "src/mnaszoo/search").split()
        if f.endswith(".py")
    ]
    lines, arrows, modules, public = 0, set(), 0, 0
    for name in files:
        text = _git("show", f"{rev}:{name}")
        lines += text.count("\n")
        module = name[len("src/") : -len(".py")].replace("/", ".")
        package = module.endswith(".__init__")
        tree = ast.parse(text)
        if not (package and len(tree.body) <= 1):  # a docstring-only __init__ holds no code
            modules += 1
        here = module[: -len(".__init__")].split(".") if package else module.split(".")[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = here[: len(here) - (node.level - 1)]
                target = ".".join(parts + ([node.module] if node.module else []))
                if target.startswith("mnaszoo.search"):
                    arrows.add((module, target))
        if name == "src/mnaszoo/search/__init__.py":
            for node in tree.body:
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__":
                    public = len(ast.literal_eval(node.value))
    return {
        "files": len(files),
        "modules": modules,
        "lines": lines,
        "arrows": len(arrows),
        "public names": public,
    }


if __name__ == "__main__":
    revision = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    figures = measure(revision)
    print(revision, ", ".join(f"{k}: {v}" for k, v in figures.items()))
