#!/usr/bin/env python3
"""The training recipes on handwritten digits: accuracy and wall time, and resume exactness.

scikit-learn's 1,797 8x8 digit scans (``pip install "mnaszoo[examples]"``) are written as PNG
files into one folder per digit, then ``mnaszoo.train`` runs on that folder from scratch with
each recipe and seed, as ``mnaszoo train DIGITS OUT -m mnasnet_small --no-pretrained
--input-size 64 --crop-pct 1 --no-hflip --recipe R --seed S`` would: the 8x8 scans are upscaled
(bicubic) to ``--input-size`` without cropping (they fill their frame), and left-right flips are
off (a mirrored 2 is no 2). 20% of every digit is held out (seeded by the run's seed).

The full protocol (three recipes, three seeds, their own epoch counts)::

    python benchmarks/train_recipes.py --output benchmarks/results/train_recipes.json

``--data docs/data/train-recipes.json`` also records the runs in the docs' data file: rows of the
same recipe and seed are replaced, others kept, so the protocol can run as several processes
(one per core) that each add their share.

A shorter run, e.g. on a busy machine::

    python benchmarks/train_recipes.py --recipes quick standard --seeds 0 --epochs 10

``--resume-check`` also trains a short run uninterrupted and again killed (SIGKILL) after its
first checkpoint and resumed, and reports the largest difference between the final weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _environment import cpu_features, machine
from PIL import Image

import mnaszoo


def digits_folder(root: Path) -> Path:
    """The digits as 8x8 grey PNGs, ``root/<digit>/<index>.png``."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    for index, (image, label) in enumerate(zip(pixels, digits.target, strict=True)):
        folder = root / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{index:04d}.png")
    return root


def run_one(
    data: Path, out: Path, recipe: str, seed: int, args: argparse.Namespace
) -> dict[str, Any]:
    settings: dict[str, Any] = {"hflip": False}
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    start = time.perf_counter()
    result = mnaszoo.train(
        data,
        out,
        model=args.model,
        pretrained=False,
        recipe=recipe,
        input_size=args.input_size,
        crop_pct=1.0,
        seed=seed,
        progress=False,
        tensorboard=False,
        overwrite=True,
        **settings,
    )
    wall = time.perf_counter() - start
    final = result.history[-1]
    final_acc = final["ema_val_acc"] if final["ema_val_acc"] is not None else final["val_acc"]
    return {
        "recipe": recipe,
        "seed": seed,
        "epochs": result.epochs,
        "best_val_acc": result.best_val_acc,
        "best_epoch": result.best_epoch,
        "final_val_acc": final_acc,
        "wall_seconds": round(wall, 1),
    }


RESUME_RUN = """
import sys, torch
torch.set_num_threads(1)
import mnaszoo
mnaszoo.train(sys.argv[1], sys.argv[2], model=sys.argv[4], pretrained=False, recipe="standard",
              epochs=int(sys.argv[5]), input_size=32, crop_pct=1.0, hflip=False,
              resume=sys.argv[3] == "1", progress=False, tensorboard=False)
"""


def resume_check(data: Path, work: Path, model: str, epochs: int) -> dict[str, Any]:
    """Train uninterrupted, and again killed after the first checkpoint then resumed."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(mnaszoo.__file__).parents[1]),
    }

    def start(out: Path, resume: bool) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", RESUME_RUN, str(data), str(out), "1" if resume else "0"]
        return subprocess.Popen([*command, model, str(epochs)], env=env)

    start(work / "whole", False).wait()
    process = start(work / "killed", False)
    state = work / "killed" / "checkpoints" / "last.pt"
    while not state.exists() and process.poll() is None:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 2.0))
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = int(torch.load(state, weights_only=True)["epoch"])
    start(work / "killed", True).wait()
    whole = torch.load(work / "whole" / "checkpoints" / "last.pt", weights_only=True)
    resumed = torch.load(state, weights_only=True)
    delta = {
        part: max(
            float((whole[part][k].double() - resumed[part][k].double()).abs().max())
            for k in whole[part]
        )
        for part in ("model", "ema")
    }
    return {"epochs": epochs, "killed_after_epoch": killed_after, "max_abs_delta": delta}


def record_data(path: Path, rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Add ``rows`` to the docs data file at ``path`` (under a lock: several processes may share
    it), replacing rows of the same recipe and seed."""
    import datetime
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"rows": []}
        mine = {(r["recipe"], r["seed"]) for r in rows}
        kept = [r for r in data["rows"] if (r["recipe"], r["seed"]) not in mine]
        order = {"quick": 0, "standard": 1, "strong": 2}
        data["rows"] = sorted(
            kept + rows, key=lambda r: (order.get(r["recipe"], 9), r["recipe"], r["seed"])
        )
        data["title"] = "The training recipes on the digits, from scratch"
        data["environment"] = {
            "date": f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d}",
            "machine": machine("one training process per core"),
            "cpu_features": cpu_features(),
            "threads": args.threads,
            "software": f"torch {torch.__version__}",
            "weights": "no pretrained",
            "command": "python benchmarks/train_recipes.py --recipes R --seeds S"
            f" --model {args.model} --input-size {args.input_size} --data {path}",
        }
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="*", default=["quick", "standard", "strong"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs")
    parser.add_argument("--model", default="mnasnet_small")
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    parser.add_argument("--resume-check", action="store_true")
    parser.add_argument("--resume-epochs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--digits", type=Path, default=None, help="also keep the digit folder here")
    parser.add_argument("--data", type=Path, default=None, help="add the runs to a docs data file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    resume = None
    with tempfile.TemporaryDirectory(prefix="mnaszoo-train-bench-") as temp:
        work = Path(temp)
        data = digits_folder(args.digits or work / "digits")
        for recipe in args.recipes:
            for seed in args.seeds:
                row = run_one(data, work / f"{recipe}-{seed}", recipe, seed, args)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.data is not None:
                    record_data(args.data, [row], args)
        if args.resume_check:
            resume = resume_check(data, work / "resume", args.model, args.resume_epochs)
            print(json.dumps({"resume": resume}), flush=True)
    print("\n| recipe | seed | epochs | best val acc | final val acc | wall time |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['recipe']} | {row['seed']} | {row['epochs']} |"
            f" {100 * row['best_val_acc']:.2f}% | {100 * row['final_val_acc']:.2f}% |"
            f" {row['wall_seconds']:.0f} s |"
        )
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(
            json.dumps(
                {
                    "command": sys.argv,
                    "model": args.model,
                    "input_size": args.input_size,
                    "threads": torch.get_num_threads(),
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                    "runs": rows,
                    "resume": resume,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
