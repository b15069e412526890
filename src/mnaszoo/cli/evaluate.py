"""``mnaszoo evaluate``: top-1/top-5 accuracy on a folder of labelled images."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .._io import check_writable
from ..errors import InvalidArgumentError
from ._format import write_output
from ._options import add_model_options, check_device, non_negative_int, positive_int

if TYPE_CHECKING:
    from ..tasks.evaluation import EvaluationResult


NAME = "evaluate"
HELP = "top-1/top-5 accuracy on a folder of labelled images"
DESCRIPTION = (
    "Measure top-1/top-5 accuracy on FOLDER, which holds one subfolder per"
    " class. Folders are matched to the model's classes by name first: ImageNet synsets"
    " (n01440764, ...) or the model's class names. Only when no folder name is a class name,"
    " and there are exactly as many folders as classes, is sorted folder order the class index."
    " A mix of matching and other names is refused."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument("folder", metavar="FOLDER", help="one subfolder of images per class")
    add_model_options(sub)
    sub.add_argument("--batch-size", "-b", type=positive_int, default=32, metavar="N", help="(32)")
    sub.add_argument(
        "--workers",
        "-j",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="image-decoding worker processes (0: none); with --ray, model actors",
    )
    sub.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="at most N images, taken round-robin over the classes",
    )
    sub.add_argument("--ray", action="store_true", help="run on a local Ray cluster")
    sub.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="run on the Ray cluster at ADDR: auto, or HOST:PORT (needs mnaszoo[distributed])",
    )
    sub.add_argument("--json", action="store_true", help="print the result as JSON")
    sub.add_argument("--json-out", metavar="FILE", help="also write the result as JSON to FILE")


def _print_evaluation(result: EvaluationResult) -> None:
    from ..tasks.evaluation import MAPPING_RULES

    topk = f"top-{result.topk}"
    p = result.preprocessing
    fields = [
        ("model", f"{result.model} ({result.weights or 'no published weights'})"),
        ("folder", result.folder),
        ("classes", f"folders matched to classes {MAPPING_RULES[result.mapping]}"),
        ("images", f"{result.num_images} in {result.num_classes_seen} classes"),
        ("top-1", f"{result.top1:.2f} %  ({result.top1_correct}/{result.num_images})"),
        (topk, f"{result.top5:.2f} %  ({result.top5_correct}/{result.num_images})"),
        ("preprocessing", f"resize {p['resize']} {p['interpolation']}, crop {p['input_size']}"),
        (
            "time",
            f"{result.seconds:.1f} s, {result.images_per_second:.1f} images/s on"
            f" {result.device} (batch {result.batch_size})",
        ),
    ]
    width = max(len(key) for key, _ in fields)
    for key, value in fields:
        print(f"{key.ljust(width)}  {value}")


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from ..tasks.evaluation import evaluate

    check_device(args.device)
    if args.ray and args.ray_address is not None:
        raise InvalidArgumentError("Give --ray (a local cluster) or --ray-address, not both.")
    ray = args.ray_address if args.ray_address is not None else ("local" if args.ray else None)
    if args.json_out is not None:  # before the evaluation, not after it
        check_writable(Path(args.json_out), "--json-out")
    result = evaluate(
        args.model,
        args.folder,
        weights=args.weights,
        checkpoint=args.checkpoint,
        input_size=args.input_size,
        batch_size=args.batch_size,
        num_workers=args.workers,
        device=args.device,
        limit=args.limit,
        progress=not args.quiet,
        cache_dir=args.cache_dir,
        ray=ray,
    )
    # The result is printed first: a write that fails at the end must not lose it.
    if args.json:
        print(result.to_json())
    else:
        _print_evaluation(result)
    if args.json_out is not None:
        write_output(Path(args.json_out), result.to_json() + "\n")
    return 0
