"""Images per second and peak memory of predicting over a folder of camera-sized JPEGs.

Compares, on one generated corpus (1920x1080 JPEGs, quality 90):

- ``naive``: one process, a plain loop: decode, preprocess, stack a batch, run the model;
- ``dataloader-2``: a plain torch ``DataLoader`` over the paths with 2 workers (no output);
- ``stream-0`` / ``stream-1`` / ``stream-2``: ``predict_to_file`` (JSON Lines output, parts,
  progress off) with 0, 1 and 2 decoding workers, the model run by torch as batch prediction
  runs a MnasNet on the CPU (BatchNorm folded, channels-last);
- ``stream-2-ort``: the same with ``backend="onnxruntime"`` (the default for a named model when
  onnxruntime is installed);
- ``ray-1`` / ``ray-2``: ``predict_to_file(..., ray="local")`` with 1 and 2 model actors (the
  local cluster is started before the clock starts).

Every configuration runs in a fresh process; the parent samples the resident memory of that
process and all its descendants (decoding workers, Ray's raylet and workers) every 0.1 s and
reports the peak of the sum (RSS counts pages shared between forked workers once per process,
so the sum overstates the true total; it is what the operating system charges). The clock
covers the prediction call only (model creation and the Ray start excluded).

The model is ``mnasnet_a1`` with random weights (``pretrained=False``: throughput does not
depend on the weights, and no download is needed), run by torch on the CPU at batch 32.

Run (``--data`` writes the figures the docs show, with the machine and date)::

    python benchmarks/batch_predict.py --images 2000 --rounds 2 --memory 2000 20000 \
        --data docs/data/batch-predict.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _environment import cpu_features, machine

CONFIGS = (
    "naive", "dataloader-2", "stream-0", "stream-1", "stream-2", "stream-2-ort", "ray-1", "ray-2",
)  # fmt: skip
MODEL = "mnasnet_a1"
BATCH = 32


def make_corpus(folder: Path, count: int, distinct: int = 16) -> None:
    """``count`` camera-sized JPEGs: ``distinct`` generated pictures, hard-linked to the rest
    (decoding a copy costs what decoding the original does; generating 20k would take long)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1080, 0:1920]
    originals = []
    for i in range(min(distinct, count)):
        # Smooth gradients plus noise: JPEG sizes like a photograph's (about 0.5-1 MB).
        base = np.stack([(x * (i + 1) / 15) % 256, (y * (i + 2) / 9) % 256, (x + y) % 256], -1)
        noise = rng.normal(0, 12, base.shape)
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        path = folder / f"img{i:06d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        originals.append(path)
    for i in range(len(originals), count):
        target = folder / f"img{i:06d}.jpg"
        if not target.exists():
            os.link(originals[i % len(originals)], target)


def _model() -> object:
    import torch

    import mnaszoo

    torch.manual_seed(0)
    return mnaszoo.create(MODEL, pretrained=False).eval()


def run_config(config: str, folder: Path, out: Path) -> float:
    """Run one configuration over ``folder``; return its images per second."""
    import torch
    from torch.utils.data import DataLoader

    from mnaszoo.data.transforms import make_transform
    from mnaszoo.tasks.corpus import Corpus

    model = _model()
    paths = list(Corpus.of([folder]).paths())
    transform = make_transform(model)
    if config.startswith("ray"):
        from mnaszoo.tasks.ray_batch import connect

        connect("local", cpus=int(config.split("-")[1]) + 1)
    start = time.perf_counter()
    if config == "naive":
        with torch.inference_mode():
            for first in range(0, len(paths), BATCH):
                batch = torch.stack([transform(p) for p in paths[first : first + BATCH]])
                model(batch).softmax(1).topk(5)  # type: ignore[operator]
    elif config == "dataloader-2":
        loader = DataLoader(
            [p for p in paths],
            batch_size=BATCH,
            num_workers=2,
            collate_fn=lambda items: torch.stack([transform(p) for p in items]),
        )
        with torch.inference_mode():
            for batch in loader:
                model(batch).softmax(1).topk(5)  # type: ignore[operator]
    else:
        from mnaszoo.tasks.streaming import predict_to_file

        workers = int(config.split("-")[1])
        predict_to_file(
            [folder], out, model, batch_size=BATCH, workers=workers, device="cpu",
            progress=False, ray="local" if config.startswith("ray") else None,
            backend="onnxruntime" if config.endswith("-ort") else "torch",
        )  # fmt: skip
    return len(paths) / (time.perf_counter() - start)


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total


def measure(config: str, folder: Path) -> tuple[float, float]:
    """Images/s and peak tree RSS (MiB) of ``config`` run in a fresh process."""
    with tempfile.TemporaryDirectory() as scratch:
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", config, "--folder", str(folder),
             "--out", str(Path(scratch) / "out.jsonl")],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss(child.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        out, _ = child.communicate()
        done.set()
        sampler.join()
        if child.returncode != 0:
            raise SystemExit(f"{config} failed with exit status {child.returncode}")
        return float(out.strip().splitlines()[-1]), peak / 2**20


def data_file(
    images: int,
    rounds: int,
    best: dict[str, float],
    peaks: dict[str, float],
    memory: list[dict[str, float]],
    command: str,
    date: str,
    where: str,
) -> dict[str, object]:
    """The benchmark's figures as a docs data file (``docs/data/NAME.json``)."""
    import torch

    return {
        "title": f"Predicting over {images} camera-sized JPEGs (best of {rounds})",
        "environment": {
            "date": date,
            "machine": where,
            "cpu_features": cpu_features(),
            "threads": os.cpu_count(),
            "software": f"torch {torch.__version__}",
            "weights": "random",
            "command": command,
        },
        "rows": [
            {
                "config": config,
                "images_per_s": round(rate, 2),
                "x_naive": round(rate / best["naive"], 2) if "naive" in best else None,
                "peak_mib": round(peaks[config]),
            }
            for config, rate in best.items()
        ],
        "memory": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="corpus size for images/s")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the configurations round-robin this many times and keep each one's best"
        " (on a shared machine the load drifts; interleaving exposes every configuration to it)",
    )
    parser.add_argument(
        "--memory", type=int, nargs="*", default=[], help="corpus sizes for stream-2's peak memory"
    )
    parser.add_argument("--work", default=None, help="where the corpus goes (default: a temp dir)")
    parser.add_argument("--data", type=Path, default=None, help="write the figures as a data file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(run_config(args.child, Path(args.folder), Path(args.out)))
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="batch-bench-"))
    try:
        now = datetime.datetime.now(datetime.UTC)
        start_machine = machine()
        print(f"{platform.node()} {os.cpu_count()} CPUs, {now:%Y-%m-%d %H:%M} UTC")
        print(f"model {MODEL} (random weights), torch, batch {BATCH}, 1920x1080 JPEGs")
        corpus = work / f"corpus-{args.images}"
        make_corpus(corpus, args.images)
        results: dict[str, list[float]] = {config: [] for config in args.configs}
        peaks: dict[str, float] = dict.fromkeys(args.configs, 0.0)
        for round_ in range(args.rounds):
            for config in args.configs:
                rate, peak = measure(config, corpus)
                results[config].append(rate)
                peaks[config] = max(peaks[config], peak)
                print(f"round {round_ + 1} {config}: {rate:.2f} images/s", flush=True)
        best = {config: max(rates) for config, rates in results.items()}
        print(f"\n| configuration | images/s ({args.images} images, best of {args.rounds}) |"
              " x naive | peak tree RSS (MiB) |")  # fmt: skip
        print("|---|---:|---:|---:|")
        for config in args.configs:
            ratio = best[config] / best["naive"] if "naive" in best else float("nan")
            print(f"| {config} | {best[config]:.2f} | {ratio:.2f} | {peaks[config]:.0f} |")
        memory: list[dict[str, float]] = []
        if args.memory:
            print("\n| stream-2 over | images/s | peak RSS of the tree (MiB) |")
            print("|---|---:|---:|")
            for count in args.memory:
                folder = work / f"corpus-{count}"
                make_corpus(folder, count)
                rate, peak = measure("stream-2", folder)
                memory.append(
                    {"images": count, "images_per_s": round(rate, 1), "peak_mib": round(peak)}
                )
                print(f"| {count} images | {rate:.1f} | {peak:.0f} |", flush=True)
        print(json.dumps({"images": args.images, "rates": results}), flush=True)
        if args.data is not None:
            command = "python benchmarks/batch_predict.py " + " ".join(sys.argv[1:])
            record = data_file(
                args.images,
                args.rounds,
                best,
                peaks,
                memory,
                command,
                f"{now:%Y-%m-%d}",
                start_machine,
            )
            args.data.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
