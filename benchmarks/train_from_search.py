#!/usr/bin/env python3
"""Fine-tuning a search's finalized network on held-out images, against training from scratch.

The image folder is the search guide's kind of folder: three classes of synthetic 48x48 shapes
(circle, square, triangle: random size, position and colours on a noisy background), generated
with a fixed seed. A quarter of every class is held out before anything runs. Then:

1. ``mnaszoo.search.search_images`` searches on the other three quarters (its own validation
   split inside them) and finalizes its best network (``OUT/search/final``);
2. that network is evaluated on the held-out quarter as it is (``search final``);
3. ``mnaszoo.train`` fine-tunes it on the three quarters, with the held-out quarter as
   ``--val`` (``fine-tuned from the search``), for each seed (the ``quick`` recipe, 30 epochs);
4. the same architecture, freshly initialised, is trained the same way (``same architecture
   from scratch``), and ``mnasnet_small`` from scratch for reference.

Every row is evaluated on the same held-out images (the training runs' best validation
accuracy is their accuracy on those images). Writes a JSON record (``--output``) and prints a
Markdown table::

    python benchmarks/train_from_search.py --output benchmarks/results/train_from_search.json \
        --data docs/data/train-from-search.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _environment import cpu_features, machine
from PIL import Image, ImageDraw

import mnaszoo
from mnaszoo.models.mnasnet import MnasNet
from mnaszoo.search import search_images

CLASSES = ("circle", "square", "triangle")


def draw_shape(kind: str, rng: np.random.Generator, size: int = 48) -> Image.Image:
    """One picture of ``kind`` on a noisy background."""
    noise = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    draw = ImageDraw.Draw(image)
    side = int(rng.integers(size // 3, size - 6))
    x, y = (int(v) for v in rng.integers(2, size - side - 1, 2))
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    if kind == "circle":
        draw.ellipse((x, y, x + side, y + side), fill=colour)
    elif kind == "square":
        draw.rectangle((x, y, x + side, y + side), fill=colour)
    else:
        draw.polygon([(x + side // 2, y), (x, y + side), (x + side, y + side)], fill=colour)
    return image


def make_folders(root: Path, per_class: int, held_out: float, seed: int) -> tuple[Path, Path]:
    """``root/train/<class>`` and ``root/held_out/<class>`` PNGs; the split is fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    for kind in CLASSES:
        keep = round(per_class * (1 - held_out))
        for index in range(per_class):
            part = "train" if index < keep else "held_out"
            folder = root / part / kind
            folder.mkdir(parents=True, exist_ok=True)
            draw_shape(kind, rng).save(folder / f"{index:03d}.png")
    return root / "train", root / "held_out"


def held_out_accuracy(model: Any, folder: Path) -> float:
    result = mnaszoo.evaluate(model, folder, device="cpu", progress=False)
    return result.top1 / 100.0


def train_row(
    label: str, model: Any, train: Path, held_out: Path, out: Path, seed: int, args: Any
) -> dict[str, Any]:
    started = time.perf_counter()
    result = mnaszoo.train(
        train,
        out,
        model=model,
        pretrained=False if model == "mnasnet_small" else None,
        val=held_out,
        recipe=args.recipe,
        input_size=args.input_size,
        crop_pct=1.0,
        seed=seed,
        progress=False,
        tensorboard=False,
        overwrite=True,
        epochs=args.epochs,
    )
    return {
        "start": label,
        "seed": seed,
        "epochs": result.epochs,
        "held_out_acc": result.best_val_acc,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("train_from_search"))
    parser.add_argument("--per-class", type=int, default=80, help="images per class (80)")
    parser.add_argument("--held-out", type=float, default=0.25)
    parser.add_argument("--budget", type=int, default=8, help="search trials (8)")
    parser.add_argument("--proxy-epochs", type=int, default=3)
    parser.add_argument("--finalize-epochs", type=int, default=15)
    parser.add_argument("--input-size", type=int, default=48)
    parser.add_argument("--recipe", default="quick")
    parser.add_argument(
        "--epochs", type=int, default=30, help="epochs of every training run (30: the recipe's"
        " 10 are 30 steps on a folder this small)",
    )  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=None, help="write the docs data file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, held_out = make_folders(args.work / "shapes", args.per_class, args.held_out, seed=0)
    started = time.perf_counter()
    search, finals = search_images(
        args.work / "search",
        train,
        budget=args.budget,
        input_size=args.input_size,
        proxy_size=args.input_size,
        proxy_epochs=args.proxy_epochs,
        calibrate=0,
        finalize=1,
        finalize_epochs=args.finalize_epochs,
        progress=False,
    )
    search_seconds = time.perf_counter() - started
    final = finals[0]
    searched = mnaszoo.from_pretrained(final.path)
    rows: list[dict[str, Any]] = [
        {
            "start": "search final, as finalized",
            "seed": 0,
            "epochs": args.finalize_epochs,
            "held_out_acc": held_out_accuracy(searched, held_out),
            "wall_seconds": round(search_seconds, 1),
        }
    ]
    for seed in args.seeds:
        rows.append(
            train_row(
                "fine-tuned from the search", str(final.path), train, held_out,
                args.work / f"finetuned-{seed}", seed, args,
            )
        )  # fmt: skip
        torch.manual_seed(seed)
        fresh = MnasNet(searched.config)
        rows.append(
            train_row(
                "same architecture from scratch", fresh, train, held_out,
                args.work / f"scratch-{seed}", seed, args,
            )
        )  # fmt: skip
        rows.append(
            train_row(
                "mnasnet_small from scratch", "mnasnet_small", train, held_out,
                args.work / f"small-{seed}", seed, args,
            )
        )  # fmt: skip
        print(json.dumps(rows[-3:]), flush=True)
    print(
        f"\nsearch: {args.budget} trials, best trial {final.trial}, predicted latency"
        f" {final.latency_ms:.2f} ms; {sum(1 for _ in train.rglob('*.png'))} training and"
        f" {sum(1 for _ in held_out.rglob('*.png'))} held-out images"
    )
    print("\n| start | seed | epochs | held-out accuracy | wall time |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['start']} | {row['seed']} | {row['epochs']} |"
            f" {100 * row['held_out_acc']:.1f}% | {row['wall_seconds']:.0f} s |"
        )
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "command": "python benchmarks/train_from_search.py",
            "settings": {k: str(v) for k, v in vars(args).items()},
            "torch": torch.__version__,
            "machine": platform.machine(),
            "search": {
                "trials": len(search.trials),
                "best_trial": final.trial,
                "latency_ms": final.latency_ms,
                "val_accuracy": final.accuracy,
            },
            "rows": rows,
        }
        args.output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if args.data is not None:
        n_train = sum(1 for _ in train.rglob("*.png"))
        n_held = sum(1 for _ in held_out.rglob("*.png"))
        data = {
            "title": "Fine-tuning a search's network on held-out shapes",
            "environment": {
                "date": f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d}",
                "machine": machine(),
                "cpu_features": cpu_features(),
                "threads": args.threads,
                "software": f"torch {torch.__version__}",
                "weights": "no pretrained",
                "command": "python benchmarks/train_from_search.py --data " + str(args.data),
            },
            "search": {
                "trials": len(search.trials),
                "best_trial": final.trial,
                "latency_ms": round(final.latency_ms, 2),
                "train_images": n_train,
                "held_out_images": n_held,
                "input_size": args.input_size,
                "recipe": args.recipe,
            },
            "rows": rows,
        }
        args.data.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
