"""The package's import graph: no cycles between modules, and the layering the docs describe.

Every import counts, function-local ones included (they hide cycles rather than remove them);
only imports under ``if TYPE_CHECKING:`` are skipped, since they never run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "mnaszoo"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the mnaszoo modules it imports (a package's ``__init__`` stands for it)."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import sub` imports the module pkg.sub when there is one.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base
                    for alias in node.names
                ]
            graph[name].update(t for t in targets if t in paths and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "mnaszoo.factory" in graph["mnaszoo.tasks.prediction"] or any(
        t.startswith("mnaszoo.models") for t in graph["mnaszoo.tasks.prediction"]
    )
    assert "mnaszoo.errors" in graph["mnaszoo.weights.hub_download"]


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


LOWER_PARTS = {
    # part -> the parts it may import (errors, _validate, _io and _lazy are open to all)
    "models": set(),
    "weights": {"models"},
    "data": {"weights"},
    "tasks": {"models", "weights", "data", "deploy"},
    "deploy": {"models", "weights", "data"},
    "search": {"models", "weights", "data", "tasks", "deploy"},
}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LOWER_PARTS else None


# create(name, pretrained=True) loads weights: mnaszoo.factory sits above both models and weights.
ALSO_ALLOWED: dict[str, set[str]] = {}


def test_parts_import_only_lower_parts() -> None:
    wrong = []
    for module, targets in import_graph().items():
        part = _part(module)
        if part is None:
            continue
        allowed = LOWER_PARTS[part] | ALSO_ALLOWED.get(module, set())
        for target in targets:
            other = _part(target)
            if other not in (None, part) and other not in allowed:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_model_modules_do_no_file_io() -> None:
    graph = import_graph()
    for module in ("mnaszoo.models.mnasnet", "mnaszoo.models.layers", "mnaszoo.models.plan"):
        assert not {t for t in graph[module] if t.startswith(("mnaszoo.weights", "mnaszoo._io"))}


@pytest.mark.parametrize(
    "part", ["mnaszoo", "mnaszoo.models", "mnaszoo.weights", "mnaszoo.data", "mnaszoo.cli.main"]
)
def test_importing_a_part_loads_no_torch(part: str) -> None:
    code = f"import sys, {part}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("part", ["models", "weights", "data", "tasks", "deploy"])
def test_lazy_table_matches_the_typed_imports(part: str) -> None:
    """Each sub-package lists its names twice (for type checkers, and lazily): the lists agree."""
    import importlib

    tree = ast.parse((PACKAGE / part / "__init__.py").read_text("utf-8"))
    typed = {
        (f".{node.module}", alias.asname or alias.name)
        for block in tree.body
        if isinstance(block, ast.If) and _is_type_checking(block)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    package = importlib.import_module(f"mnaszoo.{part}")
    assert {name for _, name in typed} == set(package.__all__)
    for module, name in typed:
        assert getattr(package, name) is getattr(
            importlib.import_module(module, package.__name__), name
        )


def test_top_level_names_are_the_sub_packages_objects() -> None:
    import mnaszoo

    tree = ast.parse((PACKAGE / "__init__.py").read_text("utf-8"))
    typed = {
        alias.asname or alias.name
        for block in tree.body
        if isinstance(block, ast.If) and _is_type_checking(block)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    import mnaszoo.factory

    parts = (
        mnaszoo.models,
        mnaszoo.weights,
        mnaszoo.data,
        mnaszoo.tasks,
        mnaszoo.deploy,
        mnaszoo.factory,
    )
    assert typed == {name for part in parts for name in part.__all__}
    for part in parts:
        for name in part.__all__:
            assert getattr(mnaszoo, name) is getattr(part, name), name


def test_the_version_is_stated_once() -> None:
    import mnaszoo
    from mnaszoo._version import __version__

    assert mnaszoo.__version__ is __version__
    stated = [p for p in PACKAGE.rglob("*.py") if "__version__ = " in p.read_text("utf-8")]
    assert stated == [PACKAGE / "_version.py"]
    imports_the_package_version = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if "from .. import __version__" in p.read_text("utf-8")
        or "from . import __version__" in p.read_text("utf-8")
    ]
    assert imports_the_package_version == []


def test_listing_models_from_the_command_line_loads_no_torch() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from mnaszoo.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['list']) == 0\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
