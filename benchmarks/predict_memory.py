"""Peak memory of ``mnaszoo predict`` over 1 and over N copies of one large photograph.

``predict`` decodes, resizes and runs one batch at a time, so its peak resident memory should
not grow with the number of images. Each run is a fresh ``mnaszoo predict`` process; its peak
RSS is read with ``resource.getrusage(RUSAGE_CHILDREN)`` in a wrapper process of its own.

Run (about a minute on two cores)::

    python benchmarks/predict_memory.py --side 6000 --counts 1 100

The model is a randomly initialised ``mnasnet_small`` saved with ``save_pretrained`` (scores do
not matter here, and no download is needed); ``--backend torch`` keeps onnxruntime out of it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

_WRAPPER = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode;"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mib(argv: list[str]) -> float:
    """Peak resident memory of the command ``argv`` in MiB (Linux reports KiB)."""
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], check=True, capture_output=True, text=True
    ).stdout.split()
    if out[0] != "0":
        raise SystemExit(f"{' '.join(argv[:6])} ... exited with {out[0]}")
    return int(out[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=6000, help="image width (height: 2/3)")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 100])
    args = parser.parse_args()
    import torch

    import mnaszoo

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        checkpoint = mnaszoo.save_pretrained(
            mnaszoo.create("mnasnet_small", num_classes=10), Path(tmp) / "model"
        )
        rng = np.random.default_rng(0)
        height = args.side * 2 // 3
        pixels = rng.integers(0, 256, (height, args.side, 3), dtype=np.uint8)
        photo = Path(tmp) / "large.jpg"
        Image.fromarray(pixels).save(photo, quality=90)
        decoded = args.side * height * 3 / 2**20
        print(f"image {args.side}x{height} JPEG, {decoded:.0f} MiB decoded (RGB)")
        for count in args.counts:
            argv = [sys.executable, "-m", "mnaszoo", "predict", *[str(photo)] * count]
            argv += ["--checkpoint", str(checkpoint), "--backend", "torch", "--quiet"]
            print(f"{count:4d} image(s): peak RSS {peak_rss_mib(argv):7.0f} MiB")


if __name__ == "__main__":
    main()
