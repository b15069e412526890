#!/usr/bin/env python3
"""Platform-aware architecture search (MnasNet) on handwritten digits, on a laptop CPU.

Each trial samples a network from MnasNet's factorised search space, predicts its latency on
this machine at ``--input-size`` with a measured per-layer latency table (calibrated on a few
networks timed end to end), trains it for ``--proxy-epochs`` on scikit-learn's handwritten digits
at ``--proxy-size`` pixels, and rewards ``accuracy x (latency / T) ** w`` (the paper's Eq. 2).
Needs ``pip install "mnaszoo[examples]"`` (scikit-learn); ``pip install "mnaszoo[bench]"``
(matplotlib) adds the plot. With the defaults one trial takes about 5 s on one CPU thread.

Everything goes into ``--output`` (default ``runs/search``)::

    config.json, state.json   the settings and the resumable state: rerun the command to continue
    trials.jsonl              one JSON object per trial (tokens, spec, latency, accuracy, reward)
    best_spec.json            the best network: mnaszoo.build(load_spec(path), num_classes=10)
    summary.json              space size, best trial, Pareto front, latency table, timings
    pareto.png                accuracy against latency, the Pareto front and the target
    latency_table.json        the latency lookup table (or --table FILE, shared between runs)

Examples::

    # a 30-trial search with the REINFORCE controller; the target T defaults to the predicted
    # latency of the space's MobileNetV2 skeleton on this machine
    python examples/search_digits.py --budget 30

    # continue it to 60 trials (same command, larger budget)
    python examples/search_digits.py --budget 60

    # a hard latency constraint of 20 ms, measured with onnxruntime
    python examples/search_digits.py --reward hard --target-ms 20 \\
        --latency-backend onnxruntime --output runs/search-hard

    # controller against random search, 3 seeds each, equal budgets and one shared latency table
    python examples/search_digits.py --compare --seeds 0 1 2 --budget 30 --output runs/compare

The same search is available as ``mnaszoo search OUTPUT [options]``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from mnaszoo import build
from mnaszoo.search.latency.calibration import CALIBRATION_NETWORKS
from mnaszoo.search.run.compare import compare_strategies
from mnaszoo.search.run.digits import DEFAULT_BUDGET, REWARDS, load_spec, search_digits

STRATEGIES = ("controller", "ppo", "random")
BACKENDS = ("torch", "torch-optimized", "onnxruntime")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output", type=Path, default=Path("runs/search"), help="output folder")
    parser.add_argument("--strategy", choices=STRATEGIES, default="controller")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="trials per run")
    parser.add_argument("--seed", type=int, default=0, help="search seed")
    parser.add_argument(
        "--target-ms",
        type=float,
        default=None,
        help="latency target T (default: the MobileNetV2 skeleton's predicted latency)",
    )
    parser.add_argument("--reward", choices=REWARDS, default="soft")
    parser.add_argument("--latency-backend", choices=BACKENDS, default="torch")
    parser.add_argument(
        "--input-size",
        type=int,
        default=224,
        help="latency resolution",
    )
    parser.add_argument("--proxy-size", type=int, default=16, help="digits resolution (>= 16)")
    parser.add_argument("--proxy-epochs", type=int, default=2, help="training epochs per trial")
    parser.add_argument(
        "--train-limit", type=int, default=800, help="proxy training images (0: all 1,347)"
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--table", type=Path, default=None, help="shared latency table file")
    parser.add_argument(
        "--calibrate",
        type=int,
        default=CALIBRATION_NETWORKS,
        help="networks timed to calibrate a new table (as mnaszoo search --calibrate)",
    )
    parser.add_argument(
        "--validate-latency",
        type=int,
        default=0,
        help="time this many held-out networks afterwards and report the table's error",
    )
    parser.add_argument(
        "--compare", action="store_true", help="compare --strategies over --seeds instead"
    )
    parser.add_argument(
        "--strategies", nargs="+", choices=STRATEGIES, default=["controller", "random"]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="for --compare")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run a search (or a comparison) and print where the results went."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options: dict[str, Any] = {
        "budget": args.budget,
        "reward": args.reward,
        "latency_backend": args.latency_backend,
        "input_size": args.input_size,
        "proxy_size": args.proxy_size,
        "proxy_epochs": args.proxy_epochs,
        "proxy_train_limit": args.train_limit or None,
        "threads": args.threads,
        "table_path": args.table,
        "calibrate": args.calibrate,
        "validate": args.validate_latency,
        "progress": not args.no_progress,
    }
    if args.compare:
        compare_strategies(
            args.output,
            strategies=args.strategies,
            seeds=args.seeds,
            target_ms=args.target_ms,
            **options,
        )
        print((args.output / "comparison.md").read_text(encoding="utf-8"), end="")
        return
    result = search_digits(
        args.output,
        strategy=args.strategy,
        seed=args.seed,
        target_ms=args.target_ms,
        **options,
    )
    best = result.best
    print(
        f"best of {len(result.trials)} trials: trial {best.index}, proxy accuracy"
        f" {100 * best.accuracy:.1f} %, latency {best.latency_ms:.2f} ms"
        f" (target {result.reward.target_ms:g} ms), reward {best.reward:.4f}"
    )
    # The saved spec rebuilds the network, ready to be trained in earnest (examples/finetune.py).
    model = build(load_spec(args.output / "best_spec.json"), num_classes=10)
    params = sum(p.numel() for p in model.parameters())
    print(f"best network: {params:,} parameters; files in {args.output}")


if __name__ == "__main__":
    main()
