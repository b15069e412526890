"""Record the walkthrough: run the code blocks of docs/walkthrough.md and keep what they print.

Every ``python`` block right after a ``<!-- mnaszoo:recorded walkthrough -->`` marker is run, in
page order, in one Python namespace (as a reader runs them one after another), in an empty
temporary folder, with a fresh home folder and no network use. What each block prints (stdout
and stderr, warnings included, each warning as ``Category: message`` without the source line
that Python adds) is written with the block's code to ``docs/data/walkthrough.json``,
together with the date, the machine, its CPU, the thread count and the software versions.

The site shows the recorded output under each block (docs/hooks.py) and refuses to build when a
block's code is not the recorded code, so the page and the file cannot drift apart; rerun this
script after changing the page::

    python docs/record_walkthrough.py            # a few minutes on one CPU core

``--check`` only compares the page with the file (what tests/test_docs_walkthrough.py does).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
PAGE = DOCS / "walkthrough.md"
OUTPUT = DOCS / "data" / "walkthrough.json"
COMMAND = "python docs/record_walkthrough.py"
# the marker, then the block: the same pattern docs/hooks.py replaces
BLOCK = re.compile(r"<!--\s*mnaszoo:recorded\s+([\w-]+)\s*-->\s*\n```python\n(.*?)\n```", re.DOTALL)


def page_blocks(text: str, name: str = "walkthrough") -> list[str]:
    """The code of every block the page marks as recorded into ``docs/data/NAME.json``."""
    return [m.group(2) for m in BLOCK.finditer(text) if m.group(1) == name]


def cpu_name() -> str:
    """The CPU's model name (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_features() -> str:
    """The vector extensions that decide the speed of the kernels: AVX2, AVX-512, VNNI, AMX."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        flags = set(re.search(r"^flags\s*:(.*)$", text, re.MULTILINE).group(1).split())  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return "unknown (no /proc/cpuinfo)"
    names = {
        "avx2": "AVX2",
        "avx512f": "AVX-512",
        "avx512_vnni": "AVX-512 VNNI",
        "avx_vnni": "AVX-VNNI",
        "amx_tile": "AMX",
    }
    return ", ".join(v if k in flags else f"no {v}" for k, v in names.items())


def software() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}"]
    for package in ("torch", "onnx", "onnxruntime", "mnaszoo"):
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{package} {version(package)}")
    return ", ".join(parts)


def _short_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """``Category: message``, as ``mnaszoo`` commands print a warning (no source path)."""
    return f"{category.__name__}: {message}\n"


def run_blocks(blocks: list[str], work: Path) -> list[dict[str, Any]]:
    """Run the blocks one after another in ``work``, in one namespace; each one's output."""
    import warnings

    warnings.formatwarning = _short_warning
    rows: list[dict[str, Any]] = []
    namespace: dict[str, Any] = {"__name__": "__main__"}
    previous = Path.cwd()
    os.chdir(work)
    try:
        for step, code in enumerate(blocks, 1):
            out = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                exec(compile(code, f"<walkthrough block {step}>", "exec"), namespace)
            seconds = time.perf_counter() - start
            print(f"block {step}: {seconds:.1f} s", file=sys.stderr)
            rows.append(
                {
                    "step": step,
                    "code": code,
                    "output": out.getvalue().rstrip("\n"),
                    "seconds": round(seconds, 1),
                }
            )
    finally:
        os.chdir(previous)
    return rows


def record() -> dict[str, Any]:
    blocks = page_blocks(PAGE.read_text(encoding="utf-8"))
    if not blocks:
        raise SystemExit(f"{PAGE} marks no block to record")
    with tempfile.TemporaryDirectory(prefix="mnaszoo-walkthrough-") as work:
        # a reader's fresh machine: nothing cached, nothing downloaded
        for key in [k for k in os.environ if k.startswith(("HF_", "MNASZOO_"))]:
            del os.environ[key]
        os.environ.update(HOME=work, HF_HUB_OFFLINE="1")
        sys.path.insert(0, str(ROOT / "src"))
        start = time.perf_counter()
        rows = run_blocks(blocks, Path(work))
        total = time.perf_counter() - start
    import torch

    return {
        "environment": {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} CPU cores, {cpu_name()}, {platform.system()}"
            f" {platform.machine()}",
            "cpu_features": cpu_features(),
            "threads": torch.get_num_threads(),
            "software": software(),
            "command": COMMAND,
            "seconds": round(total, 1),
        },
        "rows": rows,
    }


def check(path: Path = OUTPUT, page: Path = PAGE) -> list[str]:
    """What is wrong with the recorded file: the page's blocks and the recorded code differ, a
    field is missing. Empty when the file is current."""
    problems: list[str] = []
    data = json.loads(path.read_text(encoding="utf-8"))
    blocks = page_blocks(page.read_text(encoding="utf-8"))
    recorded = [row["code"] for row in data["rows"]]
    if recorded != blocks:
        changed = [
            i + 1
            for i in range(max(len(blocks), len(recorded)))
            if blocks[i : i + 1] != recorded[i : i + 1]
        ]
        problems.append(f"blocks {changed} of {page.name} differ from the recording")
    env = data["environment"]
    for key in ("date", "machine", "cpu_features", "threads", "software", "command"):
        if not env.get(key):
            problems.append(f"environment.{key} is missing")
    problems += [f"block {r['step']} printed nothing" for r in data["rows"] if not r["output"]]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="compare the page with the file")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(f"{OUTPUT.relative_to(ROOT)}: {problem}", file=sys.stderr)
        return 1 if problems else 0
    data = record()
    OUTPUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({data['environment']['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
