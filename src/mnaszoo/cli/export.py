"""``mnaszoo export``: write a model as ONNX, TorchScript, pt2 or an ExecuTorch program."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..deploy.formats import FORMATS
from ..errors import InvalidArgumentError
from ._options import positive_int

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


NAME = "export"
HELP = "write a model as ONNX, TorchScript, pt2 or ExecuTorch (.pte, fp32 or int8)"
DESCRIPTION = (
    "Export a model for deployment (mnaszoo.export). SOURCE is a registered model name (its"
    " default or --weights published weights, or --checkpoint a local file) or a"
    " save_pretrained directory. executorch-int8 calibrates on the images in --calibration"
    " (preprocessed with the weights' own transform)."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""

    sub.add_argument("source", metavar="SOURCE", help="model name or save_pretrained directory")
    sub.add_argument("output", metavar="OUTPUT", help="file to write (its folder must exist)")
    sub.add_argument("--format", "-f", choices=FORMATS, default="onnx", help="output format (onnx)")
    sub.add_argument("--weights", "-w", metavar="TAG", help="published weights tag or id")
    sub.add_argument(
        "--checkpoint", "-c", metavar="PATH", help="a local weights file instead of published"
    )
    sub.add_argument(
        "--input-size",
        type=positive_int,
        metavar="N",
        help="static N x N input (default: 224; ExecuTorch: the weights' recipe)",
    )
    sub.add_argument(
        "--batch",
        type=positive_int,
        metavar="N",
        help="fix the batch size (default: dynamic; ExecuTorch: 1)",
    )
    sub.add_argument("--opset", type=positive_int, metavar="N", help="ONNX opset")
    sub.add_argument(
        "--preprocess",
        action="store_true",
        help="ExecuTorch: take a uint8 HxWx3 RGB image and normalise it inside the program",
    )
    sub.add_argument(
        "--calibration",
        metavar="FOLDER",
        help="executorch-int8: a folder of training images (searched recursively)",
    )
    sub.add_argument(
        "--calibration-count",
        type=positive_int,
        default=256,
        metavar="N",
        help="calibration images used, at most (256)",
    )
    sub.add_argument("--cache-dir", metavar="DIR", help="download cache for published weights")


def _model(args: argparse.Namespace) -> Any:
    from ..factory import create
    from ..weights.hub import from_pretrained

    source = Path(args.source)
    if source.is_dir():
        if args.weights is not None or args.checkpoint is not None:
            raise InvalidArgumentError(
                f"{args.source} is a saved model directory; --weights and --checkpoint apply"
                " to a model name."
            )
        return from_pretrained(source).eval()
    if args.checkpoint is not None:
        if args.weights is not None:
            raise InvalidArgumentError("Pass either --weights or --checkpoint, not both.")
        return create(args.source, checkpoint=args.checkpoint).eval()
    pretrained: bool | str = args.weights if args.weights is not None else True
    return create(args.source, pretrained=pretrained, cache_dir=args.cache_dir).eval()


def _calibration(model: Any, folder: str, count: int, input_size: int | None) -> Any:
    import torch

    from ..data.images import load_image
    from ..data.scan import scan_files
    from ..data.transforms import make_transform

    root = Path(folder)
    if not root.is_dir():
        raise InvalidArgumentError(f"--calibration {folder}: not a folder of images.")
    files = scan_files(root, extensions=_IMAGE_SUFFIXES)[:count]
    if not files:
        raise InvalidArgumentError(
            f"--calibration {folder} holds no images ({', '.join(sorted(_IMAGE_SUFFIXES))})."
        )
    transform = make_transform(model, input_size=input_size)
    return torch.stack([transform(load_image(p)) for p in files])


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    from ..deploy.exporting import export

    if args.format != "executorch-int8" and args.calibration is not None:
        raise InvalidArgumentError("--calibration applies to --format executorch-int8 only.")
    if args.format == "executorch-int8" and args.calibration is None:
        raise InvalidArgumentError(
            "--format executorch-int8 needs --calibration FOLDER: a few hundred training images."
        )
    output = Path(args.output)
    if not output.parent.is_dir():  # fail before loading weights
        raise InvalidArgumentError(f"Cannot write {output}: {output.parent} does not exist.")
    model = _model(args)
    calibration = (
        None
        if args.calibration is None
        else _calibration(model, args.calibration, args.calibration_count, args.input_size)
    )
    path = export(
        model,
        output,
        args.format,
        batch=args.batch,
        input_size=args.input_size,
        opset=args.opset,
        preprocess=args.preprocess,
        calibration=calibration,
    )
    size = path.stat().st_size
    print(f"wrote {path} ({args.format}, {size / 1e6:.1f} MB)")
    return 0
