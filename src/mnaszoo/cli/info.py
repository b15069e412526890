"""``mnaszoo info``: a model's per-stage table and each published checkpoint's provenance."""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

from .._io import write_text_atomic
from ..errors import InvalidArgumentError
from ..models.diagram import draw
from ..models.registry import get_entry, list_models
from ..models.summary import describe
from ..weights.manifest import get_weights, load_manifest
from ._format import preprocessing_text, print_json, record_dict, source_text, verified_by
from ._options import add_input_size

logger = logging.getLogger(__name__)

NAME = "info"
HELP = "per-stage table of a model and its weights' provenance"
DESCRIPTION = (
    "Show a model's resolved per-stage table (channels, SE, parameters, MACs)"
    " and each published checkpoint: source, how it is verified, license, metrics,"
    " preprocessing."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument("name", metavar="NAME", help="a model name or a weights id")
    add_input_size(sub, help="input resolution for output sizes and MACs (224)")
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub.add_argument(
        "--svg",
        metavar="FILE",
        type=Path,
        help="also write the architecture diagram (mnaszoo.draw) to FILE",
    )


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    manifest = load_manifest()
    name: str = args.name
    if "." in name and name.split(".", 1)[0] in list_models():
        records = [get_weights(name)]
        name = records[0].model
    else:
        records = sorted(
            (r for r in manifest.records.values() if r.model == name), key=lambda r: r.id
        )
    entry = get_entry(name)
    summary = describe(name, input_size=args.input_size)
    if args.svg is not None:
        if args.svg.is_dir():
            raise InvalidArgumentError(
                f"--svg {args.svg} is a directory; give a file name, such as"
                f" {args.svg / (name + '.svg')}."
            )
        write_text_atomic(args.svg, draw(name, input_size=args.input_size))
        logger.info("wrote the diagram of %s to %s", name, args.svg)
    if args.json:
        print_json(
            {
                "name": name,
                "description": entry.description,
                "width_mult": entry.width_mult,
                "image_size": args.input_size,  # the key --json has always printed
                "params": summary.params,
                "macs": summary.macs,
                "stages": [asdict(row) for row in summary.rows],
                "weights": [record_dict(r, manifest.defaults.get(name) == r.id) for r in records],
            }
        )
        return 0
    print(f"{name}: {entry.description}")
    print()
    print(summary)
    if not records:
        print()
        print(f"No published weights for {name}: create({name!r}) is randomly initialised.")
        return 0
    for r in records:
        default = " (default)" if manifest.defaults.get(name) == r.id else ""
        fields = [
            ("source", source_text(r)),
            ("verified by", verified_by(r)),
            ("layout", f"{r.layout} (converted to mnaszoo's on loading)"),
            ("publisher", r.publisher),
            ("license", r.license),
            ("parameters", f"{r.num_params:,}"),
            ("classes", f"{r.num_classes} ({r.labels if isinstance(r.labels, str) else 'own'})"),
            ("preprocessing", preprocessing_text(r)),
        ]
        for m in r.metrics:
            top5 = "" if m.top5 is None else f", top-5 {m.top5}"
            fields.append(("metric", f"{m.dataset}: top-1 {m.top1}{top5} ({m.source})"))
        if r.notes:
            fields.append(("notes", r.notes))
        width = max(len(key) for key, _ in fields)
        print()
        print(f"weights {r.id}{default}")
        for key, value in fields:
            print(f"  {key.ljust(width)}  {value}")
    return 0
