"""``mnaszoo download``: fetch and verify published weights into the cache for offline use."""

from __future__ import annotations

import argparse

from ..models.registry import get_entry
from ..weights.aliases import peer_name
from ..weights.manifest import WeightsRecord, get_weights, load_manifest

NAME = "download"
HELP = "fetch weights into the cache for offline use"
DESCRIPTION = (
    "Download and verify published weights into the cache, for offline use"
    " (HF_HUB_OFFLINE=1) here or on a machine you copy the cache to. A model name fetches its"
    " default weights; a weights id those weights; a timm or torchvision name the file that"
    " library publishes for it."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument("names", nargs="*", metavar="NAME|WEIGHTS_ID", help="what to download")
    sub.add_argument("--all", action="store_true", help="every published checkpoint")
    sub.add_argument("--cache-dir", metavar="DIR", help="cache directory (default: see --help)")
    sub.add_argument(
        "--force", action="store_true", help="download again even if a verified copy is cached"
    )


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from ..weights.resolve import fetch_weights

    if not args.names and not args.all:
        args.subparser.error("give model names or weights ids to download, or --all")
    records: dict[str, WeightsRecord] = {}
    for name in load_manifest().records if args.all else ():
        records[name] = get_weights(name)
    for name in args.names:
        peer = peer_name(name)  # timm's / torchvision's names fetch that publisher's file
        if peer is not None and peer.weights is not None:
            name = peer.weights
        elif "." not in name:
            get_entry(name)  # an unknown model name: suggest close matches
        record = get_weights(name)
        records.setdefault(record.id, record)
    for record in records.values():
        path = fetch_weights(
            record,
            cache_dir=args.cache_dir,
            local_files_only=False,
            force_download=args.force,
            token=None,
        )
        print(f"{record.id}  {path}")
    return 0
