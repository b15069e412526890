"""``mnaszoo train``: train or fine-tune a classifier on a folder of images (a subfolder per
class)."""

from __future__ import annotations

import argparse

from ._options import non_negative_int, number_type, positive_float, positive_int

NAME = "train"
HELP = "train or fine-tune on your own images"
DESCRIPTION = (
    "Train (or fine-tune) a model on DATA, a folder with one subfolder of images per class, into"
    " OUT: a checkpoint folder that predict, evaluate and export take as it is, with the class"
    " names, preprocessing, settings, metrics (metrics.jsonl, curves.png) and a resumable"
    " training state. Runs under torchrun for several processes (see docs/train.md)."
)

fraction = number_type(float, lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)")
unit = number_type(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
non_negative = number_type(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
magnitude = number_type(float, lambda v: 0 <= v <= 10, "a magnitude in [0, 10]")


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument("data", metavar="DATA", help="training folder, one subfolder per class")
    sub.add_argument("output", metavar="OUT", help="the run's output folder")
    data = sub.add_argument_group("data")
    data.add_argument(
        "--val",
        metavar="FOLDER",
        help="validation folder with the same class subfolders"
        " (default: hold out --val-fraction of every class, recorded in OUT/split.json)",
    )
    data.add_argument(
        "--val-fraction",
        type=fraction,
        default=0.2,
        metavar="F",
        help="share of every class held out without --val (0.2)",
    )
    data.add_argument(
        "--input-size",
        type=positive_int,
        metavar="N",
        help="training and evaluation resolution (default: the weights' recipe)",
    )
    data.add_argument(
        "--crop-pct",
        type=number_type(float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
        metavar="F",
        help="centre crop share of the resized image (1: no crop; default: the weights' recipe)",
    )
    data.add_argument(
        "--corrupt",
        choices=("skip", "error"),
        default="skip",
        help="unreadable images: skip them (listed in OUT/split.json) or stop",
    )
    model = sub.add_argument_group("model")
    model.add_argument(
        "--model",
        "-m",
        default="mnasnet_a1",
        metavar="NAME",
        help="a registered name, a save_pretrained folder or hf-hub:user/name"
        " (default: mnasnet_a1)",
    )
    model.add_argument(
        "--pretrained",
        nargs="?",
        const=True,
        default=None,
        metavar="TAG",
        help="start from published weights, optionally a tag such as tv_in1k"
        " (the default for a registered name)",
    )
    model.add_argument(
        "--no-pretrained",
        dest="pretrained",
        action="store_const",
        const=False,
        help="train from scratch (a folder or hf-hub: model: its architecture, freshly"
        " initialised)",
    )
    model.add_argument(
        "--checkpoint",
        "-c",
        metavar="FILE",
        help="start from a weights file for --model (timm, torchvision, mnaszoo)",
    )
    model.add_argument(
        "--teacher",
        metavar="MODEL",
        help="distil from this trained model of the same classes (a folder)",
    )
    recipe = sub.add_argument_group("recipe (each option replaces the preset's value)")
    recipe.add_argument(
        "--recipe",
        choices=("quick", "standard", "strong"),
        default="standard",
        help="preset (standard); docs/train.md lists their settings",
    )
    recipe.add_argument("--epochs", type=positive_int, metavar="N")
    recipe.add_argument(
        "--batch-size", "-b", type=positive_int, metavar="N", help="images per step and process"
    )
    recipe.add_argument(
        "--lr",
        type=positive_float,
        metavar="LR",
        help="peak learning rate (sets the from-scratch and fine-tuning rates)",
    )
    recipe.add_argument("--weight-decay", type=non_negative, metavar="WD")
    recipe.add_argument("--warmup-epochs", type=non_negative, metavar="E")
    recipe.add_argument(
        "--label-smoothing",
        type=number_type(float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
        metavar="S",
    )
    recipe.add_argument("--mixup", type=non_negative, metavar="ALPHA", dest="mixup_alpha")
    recipe.add_argument("--cutmix", type=non_negative, metavar="ALPHA", dest="cutmix_alpha")
    recipe.add_argument("--mix-prob", type=unit, metavar="P")
    recipe.add_argument(
        "--randaugment",
        type=non_negative_int,
        metavar="OPS",
        dest="randaugment_ops",
        help="operations per image (0: off)",
    )
    recipe.add_argument("--randaugment-magnitude", type=magnitude, metavar="M")
    recipe.add_argument("--ema-decay", type=fraction, metavar="D")
    recipe.add_argument("--no-ema", action="store_true", help="keep no EMA weights")
    recipe.add_argument("--clip-grad", type=positive_float, metavar="NORM")
    recipe.add_argument(
        "--layer-decay",
        type=number_type(float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
        metavar="F",
    )
    recipe.add_argument("--drop-path", type=unit, metavar="P", dest="drop_path_rate")
    recipe.add_argument(
        "--no-hflip",
        dest="hflip",
        action="store_const",
        const=False,
        help="no left-right flips (text, digits, oriented scenes)",
    )
    run = sub.add_argument_group("run")
    run.add_argument("--seed", type=non_negative_int, default=0)
    run.add_argument(
        "--patience",
        type=positive_int,
        metavar="N",
        help="stop when validation accuracy has not improved for N epochs",
    )
    run.add_argument("--resume", action="store_true", help="continue the run saved in OUT")
    run.add_argument("--overwrite", action="store_true", help="replace a previous run in OUT")
    run.add_argument("--device", metavar="D", help="cpu, cuda, cuda:1 (default: cuda if available)")
    run.add_argument("--augment-backend", choices=("auto", "torch", "kornia"), default="auto")
    run.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard events")


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    import dataclasses
    import os

    from ..tasks.training.loop import train
    from ..tasks.training.recipes import get_recipe
    from ._options import check_device

    check_device(args.device)
    preset = get_recipe(args.recipe)
    if args.no_ema:
        preset = dataclasses.replace(preset, ema_decay=None)
    names = (
        "epochs",
        "batch_size",
        "weight_decay",
        "warmup_epochs",
        "label_smoothing",
        "mixup_alpha",
        "cutmix_alpha",
        "mix_prob",
        "randaugment_ops",
        "randaugment_magnitude",
        "ema_decay",
        "clip_grad",
        "layer_decay",
        "drop_path_rate",
        "hflip",
    )
    settings = {name: getattr(args, name) for name in names}
    if args.lr is not None:
        settings["lr"] = settings["lr_finetune"] = args.lr
    result = train(
        args.data,
        args.output,
        model=args.model,
        pretrained=args.pretrained,
        checkpoint=args.checkpoint,
        val=args.val,
        val_fraction=args.val_fraction,
        recipe=preset,
        input_size=args.input_size,
        crop_pct=args.crop_pct,
        seed=args.seed,
        patience=args.patience,
        teacher=args.teacher,
        resume=args.resume,
        overwrite=args.overwrite,
        device=args.device,
        augment_backend=args.augment_backend,
        corrupt=args.corrupt,
        progress=not args.quiet,
        tensorboard=not args.no_tensorboard,
        **settings,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        out = result.output
        print(
            f"best validation accuracy {100 * result.best_val_acc:.2f}% (epoch"
            f" {result.best_epoch} of {result.epochs}), saved in {out}\n"
            f"  mnaszoo predict IMAGE --checkpoint {out}\n"
            f"  mnaszoo evaluate FOLDER --checkpoint {out}\n"
            f"  mnaszoo export {out} model.onnx"
        )
    return 0
