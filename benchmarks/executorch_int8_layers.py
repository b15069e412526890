#!/usr/bin/env python3
"""Where does XNNPACK int8 beat fp32 on this CPU? Single MnasNet layers and whole models.

::

    python benchmarks/executorch_int8_layers.py --repeats 40

Each case is lowered twice to an ExecuTorch XNNPACK program, fp32 and PT2E int8 (the quantizer
and settings of ``mnaszoo.export(..., "executorch-int8")``, calibrated on random inputs: speed
only), and both are timed call for call (round-robin medians, ExecuTorch's pool at 1 thread).
The layers are the shapes MnasNet-A1 spends its time in: pointwise (1x1) convolutions, which
int8 GEMM kernels can speed up, depthwise convolutions, which are memory-bound, and a
squeeze-and-excitation gate. The CPU's integer dot-product extensions decide the outcome
(x86 AVX-VNNI / AVX-512 VNNI, Arm dot-product): without them XNNPACK's int8 kernels widen to
16 bits and are no faster than its fp32 FMA kernels. The script prints which the CPU has.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import mnaszoo
from mnaszoo.deploy import executorch as edge
from mnaszoo.models.layers import SqueezeExcite  # A1's gate: 480 channels reduced to 120

DOT_PRODUCT_FLAGS = ("avx_vnni", "avx512_vnni", "amx_int8", "asimddp", "i8mm")


def layer_cases() -> list[tuple[str, nn.Module, tuple[int, int, int, int]]]:
    """(name, module, input shape): shapes of MnasNet-A1's stages at 224x224."""
    return [
        (
            "pointwise 1x1 32->192 @56",
            nn.Sequential(nn.Conv2d(32, 192, 1), nn.ReLU()),
            (1, 32, 56, 56),
        ),
        (
            "pointwise 1x1 96->576 @14",
            nn.Sequential(nn.Conv2d(96, 576, 1), nn.ReLU()),
            (1, 96, 14, 14),
        ),
        (
            "depthwise 3x3 576 @14",
            nn.Sequential(nn.Conv2d(576, 576, 3, padding=1, groups=576), nn.ReLU()),
            (1, 576, 14, 14),
        ),
        (
            "depthwise 5x5 192 @28",
            nn.Sequential(nn.Conv2d(192, 192, 5, padding=2, groups=192), nn.ReLU()),
            (1, 192, 28, 28),
        ),
        ("squeeze-excite 480 @14", SqueezeExcite(480, 120), (1, 480, 14, 14)),
    ]


def cpu_flags() -> list[str]:
    """The integer dot-product extensions ``/proc/cpuinfo`` lists (empty where it lacks them)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            present = set(line.split(":", 1)[1].split())
            return [flag for flag in DOT_PRODUCT_FLAGS if flag in present]
    return []


def programs(module: nn.Module, shape: tuple[int, ...], folder: Path, name: str) -> list[Path]:
    """fp32 and int8 ``.pte`` files of one layer (the same lowering as ``mnaszoo.export``)."""
    module = module.eval()
    example = torch.randn(shape)
    calibration = [torch.randn(16, *shape[1:], generator=torch.Generator().manual_seed(1))]
    paths = [folder / f"{name}-fp32.pte", folder / f"{name}-int8.pte"]
    with torch.no_grad():
        paths[0].write_bytes(edge._lower(module, example))
        paths[1].write_bytes(edge._lower(edge._quantized(module, calibration), example))
    return paths


def model_programs(name: str, folder: Path) -> list[Path]:
    """fp32 and int8 ``.pte`` files of a registered model at 224x224, through the public API."""
    model = mnaszoo.create(name).eval()
    calibration = torch.randn(16, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    return [
        mnaszoo.export(model, folder / f"{name}-fp32.pte", "executorch"),
        mnaszoo.export(
            model, folder / f"{name}-int8.pte", "executorch-int8", calibration=calibration
        ),
    ]


def timed_pair(paths: list[Path], shape: tuple[int, ...], repeats: int) -> tuple[float, float]:
    runners: list[Callable[[torch.Tensor], Any]] = [mnaszoo.ExecuTorchModel(p) for p in paths]
    x = torch.randn(shape)
    samples: list[list[float]] = [[], []]
    for _ in range(3):
        for run in runners:
            run(x)
    for _ in range(repeats):
        for index, run in enumerate(runners):
            start = time.perf_counter()
            run(x)
            samples[index].append(time.perf_counter() - start)
    return statistics.median(samples[0]) * 1e3, statistics.median(samples[1]) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=40, help="timed calls per model (40)")
    parser.add_argument(
        "--models", nargs="*", default=["mnasnet_b1", "mnasnet_a1"], help="whole models (224x224)"
    )
    args = parser.parse_args()
    if not edge.executorch_available():
        raise SystemExit('ExecuTorch is not installed: pip install "mnaszoo[edge]"')
    torch.manual_seed(0)
    torch.set_num_threads(1)
    edge.set_executorch_threads(1)
    flags = cpu_flags()
    print(f"int8 dot-product extensions of this CPU: {', '.join(flags) or 'none'}")
    print("| ExecuTorch XNNPACK, batch 1, 1 thread | fp32 ms | int8 ms | int8 / fp32 |")
    print("|---|---:|---:|---:|")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mnaszoo-int8-layers-") as tmp:
        folder = Path(tmp)
        cases: list[tuple[str, list[Path], tuple[int, ...], int]] = []
        for index, (name, module, shape) in enumerate(layer_cases()):
            # Single layers take well under a millisecond: time them more often.
            cases.append((name, programs(module, shape, folder, f"layer{index}"), shape, 5))
        for name in args.models:
            cases.append((f"{name} 224x224", model_programs(name, folder), (1, 3, 224, 224), 1))
        for name, paths, shape, factor in cases:
            fp32_ms, int8_ms = timed_pair(paths, shape, args.repeats * factor)
            rows.append({"case": name, "fp32_ms": fp32_ms, "int8_ms": int8_ms})
            print(
                f"| {name} | {fp32_ms:.3f} | {int8_ms:.3f} | {int8_ms / fp32_ms:.2f} |", flush=True
            )
    print(json.dumps({"dot_product_flags": flags, "torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
