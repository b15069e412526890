"""``mnaszoo predict``: classify images with a pretrained model and its own preprocessing."""

from __future__ import annotations

import argparse

from ._format import print_json
from ._options import add_model_options, check_device, positive_int

NAME = "predict"
HELP = "classify images"
DESCRIPTION = (
    "Classify images with a pretrained model and its own preprocessing. The"
    " weights are downloaded on first use and cached."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files; with --output also folders (recursive), @LIST files (one path a"
        " line) and .parquet/.csv tables with a path column",
    )
    add_model_options(sub, classes=True)
    sub.add_argument(
        "--topk",
        "-k",
        type=positive_int,
        default=None,
        metavar="K",
        help="classes per image (5, or all of a model with fewer)",
    )
    sub.add_argument(
        "--json", action="store_true", help="print [{image, predictions: [{label, index, score}]}]"
    )
    sub.add_argument(
        "--backend",
        choices=("auto", "torch", "onnxruntime"),
        default="auto",
        help="what runs the model: auto = onnxruntime on the CPU when mnaszoo[onnx] is"
        " installed (the model is exported once and cached), else torch (auto)",
    )

    from .batch import add_batch_options  # the --output options (a large collection)

    add_batch_options(sub)


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from ..tasks.prediction import format_predictions, predict

    check_device(args.device)
    from .batch import check_batch_options, run_batch

    if args.output is not None:
        return run_batch(args)
    check_batch_options(args)
    results = predict(
        list(args.images),
        args.model,
        topk=args.topk,
        weights=args.weights,
        checkpoint=args.checkpoint,
        class_file=args.classes,
        input_size=args.input_size,
        device=args.device,
        cache_dir=args.cache_dir,
        backend=args.backend,
    )
    if args.json:
        print_json(
            [
                {"image": image, "predictions": [p._asdict() for p in predictions]}
                for image, predictions in zip(args.images, results, strict=True)
            ]
        )
        return 0
    for image, predictions in zip(args.images, results, strict=True):
        print(image)
        print(format_predictions(predictions))
    return 0
