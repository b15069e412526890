"""``mnaszoo search``: platform-aware architecture search, on handwritten digits or your own image
folder (``--data``), with latency measured here or on a device (``--table`` from a latency kit)."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

from ..deploy.runtimes import LATENCY_BACKENDS
from ..errors import InvalidArgumentError, MnaszooError
from ._options import add_input_size, non_negative_int, number_type, positive_float, positive_int

# Resolutions: a MnasNet's stride of 32 leaves no pixel below 16 (refused here, under the flag's
# own name, rather than deep in the search under a parameter's).
side = number_type(int, lambda v: v >= 16, "an integer >= 16")
fraction = number_type(float, lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)")

NAME = "search"
HELP = "platform-aware architecture search on digits or your own images"
DESCRIPTION = (
    "Search MnasNet's factorised space for networks that are accurate on a"
    " short proxy task and fast on the target: by default scikit-learn's digits (no"
    " download) and this machine (a measured latency table at --input-size); with --data, a"
    " folder of your images (one subfolder per class); with --table FILE from"
    " `mnaszoo latency-kit`, your device. Writes state.json (rerun the same command to"
    " continue), trials.jsonl, best_spec.json, summary.json and pareto.png (with matplotlib)"
    " into OUTPUT; --finalize N trains the N best architectures fully into OUTPUT/final"
    " (a save_pretrained folder). With --compare, runs each strategy for each of --seeds"
    " with equal budgets and writes comparison.md/json."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument("output", metavar="OUTPUT", help="output folder")
    data = sub.add_argument_group("your data (instead of digits)")
    data.add_argument("--data", metavar="DIR", help="training images, one subfolder per class")
    data.add_argument("--val", metavar="DIR", help="validation images, same class subfolders")
    data.add_argument(
        "--val-fraction",
        type=fraction,
        default=0.2,
        metavar="F",
        help="share of each class held out when there is no --val (0.2)",
    )
    data.add_argument(
        "--images-per-class", type=positive_int, metavar="N", help="proxy-train on at most N"
    )
    data.add_argument(
        "--corrupt",
        choices=("skip", "error"),
        default="skip",
        help="unreadable images: skip them (each reported with its path) or refuse (skip)",
    )
    data.add_argument("--augment", action="store_true", help="random flips and shifts in training")
    data.add_argument(
        "--finalize",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="afterwards, train the N best architectures fully into OUTPUT/final... (0)",
    )
    data.add_argument(
        "--finalize-epochs", type=positive_int, default=30, metavar="N", help="their epochs (30)"
    )
    sub.add_argument(
        "--strategy",
        choices=("controller", "ppo", "random"),
        default="controller",
        help="controller: REINFORCE LSTM as in the paper; ppo; random (controller)",
    )
    sub.add_argument("--budget", type=positive_int, default=30, metavar="N", help="trials (30)")
    sub.add_argument(
        "--seed",
        "--seeds",
        dest="seeds",
        type=non_negative_int,
        nargs="+",
        default=[0],
        metavar="N",
        help="search seed; several with --compare (0)",
    )
    sub.add_argument(
        "--target-ms",
        type=positive_float,
        metavar="MS",
        help="latency target T (default: the predicted latency of the space's MobileNetV2"
        " skeleton on this machine)",
    )
    sub.add_argument("--reward", choices=("soft", "hard"), default="soft", help="(soft)")
    sub.add_argument(
        "--latency-backend",
        choices=LATENCY_BACKENDS,
        default="torch",
        help="what latency is measured with (torch)",
    )
    add_input_size(
        sub,
        minimum=16,
        help="input resolution latency is measured at: the deployment resolution (224)",
    )
    sub.add_argument(
        "--proxy-size",
        type=side,
        metavar="N",
        help="proxy-training resolution, >= 16 (16 for digits, 32 for --data)",
    )
    sub.add_argument(
        "--predictor",
        choices=("layers", "context"),
        help="latency predictor: per-layer sums, or blocks timed in context and calibrated per"
        " backend (layers for digits, context for --data; a --table from a kit is context)",
    )
    sub.add_argument(
        "--proxy-epochs", type=positive_int, metavar="N", help="epochs per trial (2; 3 with --data)"
    )
    sub.add_argument(
        "--train-limit",
        type=non_negative_int,
        default=800,
        metavar="N",
        help="proxy training images, 0 for all 1,347 (800)",
    )
    sub.add_argument("--threads", type=positive_int, default=1, metavar="N", help="CPU threads (1)")
    sub.add_argument(
        "--table",
        metavar="FILE",
        help="an existing latency table shared between runs (default: OUTPUT/latency_table.json,"
        " measured when missing), or the table.json a latency kit measured on your device",
    )
    sub.add_argument(
        "--new-table",
        action="store_true",
        help="measure this machine into --table FILE when FILE does not exist yet (without it, a"
        " missing --table is refused: a mistyped path would otherwise measure this machine"
        " instead of your device)",
    )
    sub.add_argument(
        "--calibrate",
        type=non_negative_int,
        # mnaszoo.search.latency.calibration.CALIBRATION_NETWORKS, written out: importing
        # mnaszoo.search loads torch, and building the parser must not (a test keeps the two
        # equal).
        default=32,
        metavar="N",
        help="networks timed end to end to calibrate a new latency table, 0: none (32)",
    )
    sub.add_argument(
        "--validate-latency",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="afterwards, time N held-out networks and report the table's Spearman/MAPE (0)",
    )
    sub.add_argument(
        "--compare", action="store_true", help="compare --strategies over --seeds instead"
    )
    sub.add_argument(
        "--strategies",
        nargs="+",
        choices=("controller", "ppo", "random"),
        metavar="NAME",
        help="strategies for --compare (controller random)",
    )
    sub.add_argument("--no-progress", action="store_true", help="no progress line")
    # Where trials run: the result is the same either way (see docs/search.md, "On a cluster").
    place = sub.add_mutually_exclusive_group()
    place.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="train N trials at once on a local Ray cluster (needs mnaszoo[distributed])",
    )
    place.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="train the trials on the running Ray cluster at ADDR (HOST:PORT of its head, or auto)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    if args.new_table and args.table is None:
        args.subparser.error("--new-table needs --table FILE")
    if args.table is not None and not args.new_table and not Path(args.table).is_file():
        raise InvalidArgumentError(
            f"The latency table {args.table!r} does not exist. Check the path (a kit's table is"
            " OUTPUT/table.json of `mnaszoo latency-kit`), or pass --new-table to measure this"
            " machine into it."
        )
    if args.data is not None:
        return _run_images(args)
    for flag, value in (("--val", args.val), ("--images-per-class", args.images_per_class)):
        if value is not None:
            args.subparser.error(f"{flag} needs --data")
    if args.finalize or args.augment:
        args.subparser.error("--finalize and --augment need --data")
    try:
        importlib.import_module("sklearn.datasets")
    except ImportError as error:
        raise MnaszooError(
            "mnaszoo search trains on scikit-learn's digits: pip install 'mnaszoo[examples]'."
        ) from error
    if len(args.seeds) > 1 and not args.compare:
        args.subparser.error("several --seeds need --compare")
    if args.strategies and not args.compare:
        args.subparser.error("--strategies needs --compare (or pass --strategy)")
    from ..search.run import compare, digits

    config = _config(args)
    if args.compare:
        strategies = args.strategies or ["controller", "random"]
        compare.compare_strategies(
            args.output, strategies=strategies, seeds=args.seeds, config=config
        )
        print((Path(args.output) / "comparison.md").read_text(encoding="utf-8"), end="")
        print(f"runs, comparison.json and comparison.md in {args.output}")
        return 0
    result = digits.search_digits(args.output, config)
    _report(result, args, num_classes=10)
    return 0


def _config(args: argparse.Namespace) -> Any:
    """The flags as a SearchConfig: one flag, one field."""
    from ..search.config import (
        ControllerConfig,
        DataConfig,
        ExecutionConfig,
        LatencyConfig,
        ProxyConfig,
        SearchConfig,
    )

    return SearchConfig(
        data=DataConfig(
            folder=args.data,
            val=args.val,
            val_fraction=args.val_fraction,
            images_per_class=args.images_per_class,
            corrupt=args.corrupt,
            # --train-limit 0 means every image; its default (800) is the digits' only.
            train_limit=args.train_limit if args.data is None else None,
        ),
        proxy=ProxyConfig(
            input_size=args.proxy_size,
            epochs=args.proxy_epochs,
            augment=args.augment,
            finalize=args.finalize,
            finalize_epochs=args.finalize_epochs,
        ),
        latency=LatencyConfig(
            backend=args.latency_backend,
            predictor=args.predictor,
            input_size=args.input_size,
            table=args.table,
            calibrate=args.calibrate,
            validate=args.validate_latency,
        ),
        controller=ControllerConfig(
            strategy=args.strategy,
            budget=args.budget,
            seed=args.seeds[0],
            reward=args.reward,
            target_ms=args.target_ms,
        ),
        execution=ExecutionConfig(
            threads=args.threads,
            workers=args.workers,
            ray_address=args.ray_address,
            progress=not (args.no_progress or getattr(args, "quiet", False)),
        ),
    )


def _run_images(args: argparse.Namespace) -> int:
    if args.compare or len(args.seeds) > 1:
        args.subparser.error("--compare is for the digits demo; run one search per --data")
    from ..search.run.launch import launch

    result, finals = launch(args.output, _config(args))
    summary = json.loads((Path(args.output) / "summary.json").read_text(encoding="utf-8"))
    _report(result, args, num_classes=len(summary["task"]["classes"]))
    for final in finals:
        print(
            f"finalized trial {final.trial}: validation accuracy {100 * final.accuracy:.1f} %,"
            f" latency {final.latency_ms:.2f} ms -> {final.path}"
            f" (mnaszoo predict IMAGE --checkpoint {final.path})"
        )
    return 0


def _report(result: Any, args: argparse.Namespace, *, num_classes: int) -> None:
    from ..models.config import ModelConfig
    from ..models.summary import describe as describe_spec

    best = result.best
    target = result.reward.target_ms
    print(
        f"best of {len(result.trials)} trials: trial {best.index}, proxy accuracy"
        f" {100 * best.accuracy:.1f} %, latency {best.latency_ms:.2f} ms (target {target:g} ms),"
        f" reward {best.reward:.4f}"
    )
    print()
    # The summary of the network as the search built it: its classes, not ImageNet's 1000.
    config = ModelConfig.resolve(best.network_spec(), num_classes=num_classes)
    print(describe_spec(config, input_size=args.input_size))
    print()
    output = Path(args.output)
    files = ", ".join(
        name
        for name in ("best_spec.json", "summary.json", "trials.jsonl", "state.json", "pareto.png")
        if (output / name).exists()
    )
    print(f"{files} in {output}")
    print(
        f"rebuild: mnaszoo.build(load_spec('{output / 'best_spec.json'}'),"
        f" num_classes={num_classes})"
    )
