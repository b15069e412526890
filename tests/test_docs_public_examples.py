"""Every public name has an example a reader can run: a ``>>>`` example in its docstring (run by
tests/test_docs.py::test_docstring_examples_run) or a use in a ``python`` block of a docs page
(run at build time or by tests/test_docs_examples.py, or recorded by a docs/record_*.py script).

The public names are those of ``mnaszoo.__all__`` and ``mnaszoo.search.__all__``.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import mnaszoo
import mnaszoo.search

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"

# Names without an example of their own, each with the reason. Keep it empty if you can.
NO_EXAMPLE: dict[str, str] = {}


def _public() -> dict[str, object]:
    names = {f"mnaszoo.{n}": getattr(mnaszoo, n) for n in mnaszoo.__all__}
    names |= {f"mnaszoo.search.{n}": getattr(mnaszoo.search, n) for n in mnaszoo.search.__all__}
    return names


def _page_code() -> str:
    blocks = [
        block
        for page in sorted(DOCS.glob("*.md"))
        for block in re.findall(r"```python\n(.*?)```", page.read_text("utf-8"), re.DOTALL)
    ]
    return "\n".join(blocks)


def _has_doctest(obj: object) -> bool:
    if not (inspect.isclass(obj) or inspect.isroutine(obj)):
        return False  # constants have no docstring of their own at run time
    return ">>>" in (obj.__doc__ or "")


def without_example() -> list[str]:
    code = _page_code()
    missing = []
    for qualified, obj in sorted(_public().items()):
        name = qualified.rsplit(".", 1)[1]
        used = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", code)
        if not (_has_doctest(obj) or used):
            missing.append(qualified)
    return missing


def test_every_public_name_has_an_example() -> None:
    missing = [n for n in without_example() if n not in NO_EXAMPLE]
    assert not missing, f"add a docstring example or a page example for: {missing}"


def test_the_exceptions_are_still_public_and_still_without_example() -> None:
    public = _public()
    missing = set(without_example())
    for name, reason in NO_EXAMPLE.items():
        assert name in public, f"{name} is no longer public: drop it from NO_EXAMPLE"
        assert name in missing, f"{name} has an example now: drop it from NO_EXAMPLE"
        assert reason


def test_the_check_sees_both_kinds_of_example() -> None:
    assert _has_doctest(mnaszoo.errors.MnaszooError)  # a docstring example
    assert not _has_doctest(mnaszoo.MNASNET_A1)
    assert re.search(r"(?<!\w)search_images(?!\w)", _page_code())  # a page example
    assert len(_public()) > 80
