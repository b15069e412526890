"""The options of ``mnaszoo predict --output``: a corpus of any size into a results file."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InvalidArgumentError
from ._options import non_negative_int, positive_int

# Options that only mean something with --output: refused without it, not silently ignored.
_BATCH_ONLY = {
    "embeddings": False,
    "workers": 0,
    "resume": False,
    "on_error": "skip",
    "path_column": "path",
    "part_size": None,
    "ray": False,
    "ray_address": None,
    "progress": False,
    "batch_size": None,
}


def add_batch_options(sub: argparse.ArgumentParser) -> None:
    """Add the ``--output`` group to ``mnaszoo predict``."""
    group = sub.add_argument_group(
        "a large collection",
        "With --output, the images stream through the model in batches and the results go to a"
        " file, written part by part (see docs/batch.md).",
    )
    group.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write the results to FILE.parquet or FILE.jsonl: path, labels, indices, scores,"
        " error (one row per image)",
    )
    group.add_argument(
        "--batch-size", "-b", type=positive_int, default=None, metavar="N", help="(32)"
    )
    group.add_argument(
        "--workers",
        "-j",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="decoding processes beside the model (0: none); with --ray, model actors",
    )
    group.add_argument(
        "--embeddings", action="store_true", help="add the pooled features before the classifier"
    )
    group.add_argument(
        "--on-error",
        choices=("skip", "fail"),
        default="skip",
        help="an image that cannot be read: a row with its error (skip), or stop (fail)",
    )
    group.add_argument(
        "--resume", action="store_true", help="continue an interrupted run of the same job"
    )
    group.add_argument(
        "--path-column",
        default="path",
        metavar="NAME",
        help="the column of image paths in .parquet/.csv inputs (path)",
    )
    group.add_argument(
        "--part-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="images per part file: what a rerun can skip (4096)",
    )
    group.add_argument(
        "--progress",
        action="store_true",
        help="show the progress bar even when stderr is not a terminal",
    )
    group.add_argument("--ray", action="store_true", help="run on a local Ray cluster")
    group.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="run on the Ray cluster at ADDR: auto, or HOST:PORT (needs mnaszoo[distributed])",
    )


def check_batch_options(args: argparse.Namespace) -> None:
    """Refuse the ``--output`` options when ``--output`` is not given."""
    given = [
        "--" + name.replace("_", "-")
        for name, default in _BATCH_ONLY.items()
        if getattr(args, name, default) != default
    ]
    if given:
        raise InvalidArgumentError(
            f"{', '.join(given)} only apply with --output FILE.parquet|FILE.jsonl."
        )


def run_batch(args: argparse.Namespace) -> int:
    """Run ``mnaszoo predict ... --output FILE``; print a one-line summary (or JSON)."""
    from ..tasks.streaming import DEFAULT_PART_SIZE, predict_to_file

    if args.ray and args.ray_address is not None:
        raise InvalidArgumentError("Give --ray (a local cluster) or --ray-address, not both.")
    ray = args.ray_address if args.ray_address is not None else ("local" if args.ray else None)
    summary = predict_to_file(
        list(args.images),
        args.output,
        args.model,
        batch_size=args.batch_size or 32,
        workers=args.workers,
        on_error=args.on_error,
        path_column=args.path_column,
        part_size=args.part_size or DEFAULT_PART_SIZE,
        resume=args.resume,
        progress=True if args.progress else (None if not args.quiet else False),
        ray=ray,
        topk=args.topk,
        embeddings=args.embeddings,
        weights=args.weights,
        checkpoint=args.checkpoint,
        class_file=args.classes,
        input_size=args.input_size,
        device=args.device,
        cache_dir=args.cache_dir,
        backend=args.backend,
    )
    if args.json:
        print(json.dumps(summary.__dict__))
        return 0
    rate = summary.predicted / summary.seconds if summary.seconds > 0 else 0.0
    parts = summary.skipped_parts
    resumed = f", {parts} part{'s' * (parts != 1)} from an earlier run" if parts else ""
    errors = f"{summary.errors} error{'s' * (summary.errors != 1)}"
    print(
        f"{summary.output}: {summary.images} images, {errors}{resumed}"
        f" ({summary.seconds:.1f} s, {rate:.1f} images/s)",
        file=sys.stdout,
    )
    return 0
