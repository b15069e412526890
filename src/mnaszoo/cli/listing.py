"""``mnaszoo list``: the registered models with parameters, MACs and published weights."""

from __future__ import annotations

import argparse

from ..errors import InvalidArgumentError, close_matches_hint
from ..models.registry import get_entry, list_models
from ..models.summary import describe
from ..weights.manifest import load_manifest
from ._format import metric, print_json, table
from ._options import GLOB

NAME = "list"
HELP = "list the models and their published weights"
DESCRIPTION = (
    "List the registered models with parameters, MACs at 224x224 and published"
    " weights (reported ImageNet-1k top-1/top-5; * marks each model's default)."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument(
        "pattern",
        nargs="?",
        metavar="PATTERN",
        help="shell-style pattern such as 'mnasnet_b1*'; a plain word matches as a substring",
    )
    sub.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    pattern: str | None = args.pattern
    if pattern is not None and not (GLOB & set(pattern)):
        pattern = f"*{pattern}*"
    names = list_models(pattern)
    if not names:
        hint = close_matches_hint(args.pattern, list_models())
        raise InvalidArgumentError(
            f"No model matches {args.pattern!r}.{hint} `mnaszoo list` shows them all."
        )
    manifest = load_manifest()
    entries = []
    for name in names:
        summary = describe(name)
        records = sorted(
            (r for r in manifest.records.values() if r.model == name), key=lambda r: r.id
        )
        entries.append((name, summary, records))
    if args.json:
        print_json(
            [
                {
                    "name": name,
                    "description": get_entry(name).description,
                    "params": summary.params,
                    "macs": summary.macs,
                    "weights": [
                        {
                            "id": r.id,
                            "default": manifest.defaults.get(name) == r.id,
                            "top1": metric(r)[0],
                            "top5": metric(r)[1],
                            "license": r.license,
                        }
                        for r in records
                    ],
                }
                for name, summary, records in entries
            ]
        )
        return 0
    rows: list[tuple[str, ...]] = [("model", "params", "MACs@224", "weights", "top-1", "top-5")]
    for name, summary, records in entries:
        head = (name, f"{summary.params:,}", f"{summary.macs / 1e6:.2f}M")
        if not records:
            rows.append((*head, "-", "", ""))
        for i, r in enumerate(records):
            top1, top5 = metric(r)
            mark = " *" if manifest.defaults.get(name) == r.id else ""
            rows.append(
                (
                    *(head if i == 0 else ("", "", "")),
                    f"{r.id}{mark}",
                    "" if top1 is None else f"{top1:.3f}",
                    "" if top5 is None else f"{top5:.3f}",
                )
            )
    print(table(rows, right=(False, True, True, False, True, True)))
    print("* default weights (best reported ImageNet-1k top-1); `mnaszoo info NAME` for details")
    return 0
