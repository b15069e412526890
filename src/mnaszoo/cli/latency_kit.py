"""``mnaszoo latency-kit``: write a latency measurement kit for a target device."""

from __future__ import annotations

import argparse

from ._options import add_input_size, positive_float, positive_int

NAME = "latency-kit"
HELP = "write a kit that measures the search's latency table on a device"
DESCRIPTION = (
    "Write KIT: every block the search space can hold as a small ONNX model,"
    " a few calibration networks, and measure.py, a runner that needs only Python, numpy"
    " and onnxruntime (no mnaszoo, no torch). Copy KIT to the target device, run"
    " `python measure.py` there, and pass the table.json it writes to"
    " `mnaszoo search --table`."
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its parser."""
    sub.add_argument("kit", metavar="KIT", help="the kit folder to create")
    add_input_size(sub, help="the resolution the device runs the networks at (224)")
    sub.add_argument(
        "--num-classes", type=positive_int, default=1000, metavar="N", help="classes (1000)"
    )
    sub.add_argument(
        "--threads", type=positive_int, default=1, metavar="N", help="runner threads (1)"
    )
    sub.add_argument(
        "--calibration",
        type=positive_int,
        default=32,  # CALIBRATION_NETWORKS, written out to keep torch unloaded (see search)
        metavar="N",
        help="calibration networks timed end to end, >= 3 (32)",
    )
    sub.add_argument(
        "--max-spread",
        type=positive_float,
        default=0.2,
        metavar="F",
        help="largest accepted (p75 - p25) / median before re-measuring (0.2)",
    )
    sub.add_argument(
        "--backend",
        choices=("onnxruntime", "executorch"),  # KIT_BACKENDS, written out to keep torch unloaded
        default="onnxruntime",
        help="the device's runtime: ONNX models for onnxruntime, or XNNPACK .pte programs for"
        " ExecuTorch (onnxruntime)",
    )
    sub.add_argument("--overwrite", action="store_true", help="replace an existing kit")


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status."""
    import json

    from ..search.latency.kit import write_latency_kit

    kit = write_latency_kit(
        args.kit,
        input_size=args.input_size,
        num_classes=args.num_classes,
        threads=args.threads,
        calibration=args.calibration,
        max_spread=args.max_spread,
        overwrite=args.overwrite,
        backend=args.backend,
    )
    manifest = json.loads((kit / "manifest.json").read_text(encoding="utf-8"))
    size = sum(p.stat().st_size for p in kit.rglob("*") if p.is_file())
    print(
        f"wrote {kit}: {len(manifest['entries'])} block models,"
        f" {len(manifest['calibration'])} calibration networks, {size / 1e6:.1f} MB"
    )
    needs = "executorch" if args.backend == "executorch" else "numpy and onnxruntime"
    print(f"on the device: python {kit / 'measure.py'}   (needs {needs})")
    print(f"then: mnaszoo search OUTPUT --data DIR --table {kit / 'table.json'}")
    return 0
