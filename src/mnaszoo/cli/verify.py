"""``mnaszoo verify``: re-hash weights files against their pins, print a table or JSON."""

from __future__ import annotations

import argparse
import json

NAME = "verify"
HELP = "re-check cached, saved or downloaded weights against their sha256 pins"
DESCRIPTION = (
    "Hash every file of a weights id or model name (its cached file), a folder (written by"
    " save_pretrained, or a Hub repository downloaded with local_dir=) or a single file again,"
    " and compare it with its pin: the manifest's full sha256, the trust-on-first-use pin"
    " recorded at the first download, the folder's config.json, or --sha256. Exits 1 on any"
    " mismatch, missing file or unpinned file."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument("target", metavar="NAME|DIR|FILE", help="what to verify")
    sub.add_argument("--sha256", metavar="HEX", help="the sha256 a single FILE must have")
    sub.add_argument("--cache-dir", metavar="DIR", help="cache the weights were downloaded to")
    sub.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from ..weights.verify import FAILING, verify

    checks = verify(args.target, sha256=args.sha256, cache_dir=args.cache_dir)
    failed = [c for c in checks if c.status in FAILING]
    if args.json:
        print(json.dumps({"ok": not failed, "files": [c.to_dict() for c in checks]}, indent=2))
        return 1 if failed else 0
    rows = [("STATUS", "SHA256", "PINNED BY", "WHAT", "FILE")]
    for c in checks:
        rows.append(
            (
                c.status.upper(),
                (c.sha256 or "-")[:16],
                c.pinned_by or "-",
                c.what,
                c.file,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        print("  ".join([*cells, row[4]]))
    for c in checks:
        if c.status == "mismatch":
            print(f"mismatch: {c.file} has sha256 {c.sha256}, pinned {c.expected} ({c.pinned_by})")
        elif c.status == "unpinned":
            print(
                f"unpinned: {c.file} (sha256 {c.sha256}) matches no pin; pass --sha256 to give one"
            )
    tofu = [c for c in checks if c.pinned_by == "trust-on-first-use"]
    if tofu:
        print(
            "trust-on-first-use: no public full sha256 exists for "
            + ", ".join(sorted({c.what for c in tofu}))
            + "; checked against the sha256 recorded at its first download here."
        )
    print(
        f"{len(checks) - len(failed)} of {len(checks)} files verified"
        if not failed
        else f"FAILED: {len(failed)} of {len(checks)} files"
    )
    return 1 if failed else 0
