"""``mnaszoo search``: platform-aware architecture search (on handwritten digits)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from ..errors import MnaszooError
from ._options import non_negative_int, positive_float, positive_int

NAME = "search"
HELP = "platform-aware architecture search on handwritten digits"
DESCRIPTION = (
    "Search MnasNet's factorised space for networks that are accurate on a"
    " short digits proxy task (scikit-learn, no download) and fast on this machine (a"
    " measured per-layer latency table at --image-size). Writes state.json (rerun the same"
    " command to continue), trials.jsonl, best_spec.json, summary.json and pareto.png (with"
    " matplotlib) into OUTPUT. With --compare, runs each strategy for each of --seeds with"
    " equal budgets and writes comparison.md/json."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument("output", metavar="OUTPUT", help="output folder")
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
        choices=("torch", "torch-optimized", "onnxruntime"),
        default="torch",
        help="what latency is measured with (torch)",
    )
    sub.add_argument(
        "--image-size",
        type=positive_int,
        default=224,
        metavar="N",
        help="resolution latency is measured at (224)",
    )
    sub.add_argument(
        "--proxy-size",
        type=positive_int,
        default=16,
        metavar="N",
        help="digits resolution for proxy training, >= 16 (16)",
    )
    sub.add_argument(
        "--proxy-epochs", type=positive_int, default=2, metavar="N", help="epochs per trial (2)"
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
        help="latency table shared between runs (default: OUTPUT/latency_table.json)",
    )
    sub.add_argument(
        "--calibrate",
        type=non_negative_int,
        default=8,
        metavar="N",
        help="networks timed end to end to calibrate a new latency table, 0: none (8)",
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
    from ..models.summary import describe as describe_spec
    from ..search import compare, experiment

    options: dict[str, Any] = {
        "budget": args.budget,
        "target_ms": args.target_ms,
        "reward": args.reward,
        "latency_backend": args.latency_backend,
        "image_size": args.image_size,
        "proxy_size": args.proxy_size,
        "proxy_epochs": args.proxy_epochs,
        "proxy_train_limit": args.train_limit or None,
        "threads": args.threads,
        "table_path": args.table,
        "calibrate": args.calibrate,
        "validate": args.validate_latency,
        "progress": not (args.no_progress or args.quiet),
        "workers": args.workers,
        "ray_address": args.ray_address,
    }
    if args.compare:
        strategies = args.strategies or ["controller", "random"]
        compare.compare_strategies(args.output, strategies=strategies, seeds=args.seeds, **options)
        print((Path(args.output) / "comparison.md").read_text(encoding="utf-8"), end="")
        print(f"runs, comparison.json and comparison.md in {args.output}")
        return 0
    result = experiment.search_digits(
        args.output, strategy=args.strategy, seed=args.seeds[0], **options
    )
    best = result.best
    target = result.reward.target_ms
    print(
        f"best of {len(result.trials)} trials: trial {best.index}, proxy accuracy"
        f" {100 * best.accuracy:.1f} %, latency {best.latency_ms:.2f} ms (target {target:g} ms),"
        f" reward {best.reward:.4f}"
    )
    print()
    print(describe_spec(best.network_spec(), image_size=args.image_size))
    print()
    output = Path(args.output)
    files = ", ".join(
        name
        for name in ("best_spec.json", "summary.json", "trials.jsonl", "state.json", "pareto.png")
        if (output / name).exists()
    )
    print(f"{files} in {output}")
    print(f"rebuild: mnaszoo.build(load_spec('{output / 'best_spec.json'}'), num_classes=10)")
    return 0
