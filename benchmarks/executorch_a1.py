#!/usr/bin/env python3
"""ExecuTorch (XNNPACK) against onnxruntime and eager torch on ``mnasnet_a1``, batch 1.

::

    python benchmarks/executorch_a1.py --threads 1 --repeats 40

Exports random-weight ``mnasnet_a1`` at 224x224 as an fp32 and an int8 ``.pte`` (int8 calibrated
on random images: speed only) and an fp32 ONNX file, then times eager torch, onnxruntime fp32 and
ExecuTorch fp32 and int8 call for call (round-robin, so machine load hits all alike) with the same
thread count for all three runtimes. Prints JSON: medians, the ratios the deployment guide reports,
export times, and the fp32 program's max |diff| against eager over the logit scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import mnaszoo
from mnaszoo.deploy.executorch import executorch_threads
from mnaszoo.deploy.onnx_runtime import open_session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mnasnet_a1")
    parser.add_argument("--threads", type=int, default=1, help="threads for every runtime (1)")
    parser.add_argument("--repeats", type=int, default=40, help="timed calls per runtime (40)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = mnaszoo.create(args.model).eval()
    x = torch.randn(1, 3, 224, 224)
    results: dict[str, Any] = {"model": args.model, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fp32_path = mnaszoo.export(model, Path(tmp) / "fp32.pte", "executorch")
        fp32_seconds = time.perf_counter() - start
        calibration = torch.randn(16, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        start = time.perf_counter()
        int8_path = mnaszoo.export(
            model, Path(tmp) / "int8.pte", "executorch-int8", calibration=calibration
        )
        int8_seconds = time.perf_counter() - start
        folded = mnaszoo.optimize_for_inference(model, channels_last=False)
        onnx_path = mnaszoo.export(folded, Path(tmp) / "fp32.onnx", batch=1)
        session = open_session(onnx_path, threads=args.threads)
        fp32 = mnaszoo.ExecuTorchModel(fp32_path, threads=args.threads)
        int8 = mnaszoo.ExecuTorchModel(int8_path)
        x_np = x.numpy()
        runners: dict[str, Callable[[], Any]] = {
            "torch": lambda: model(x),
            "onnxruntime fp32": lambda: session.run(None, {"input": x_np}),
            "executorch fp32": lambda: fp32(x),
            "executorch int8": lambda: int8(x),
        }
        times: dict[str, list[float]] = {name: [] for name in runners}
        with torch.inference_mode():
            for run in runners.values():
                run()
                run()
            for _ in range(args.repeats):
                for name, run in runners.items():
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
            expected = model(x)
            error = (fp32(x) - expected).abs().max() / expected.abs().max()
    median = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    results.update(
        threads_torch=torch.get_num_threads(),
        threads_executorch=executorch_threads(),
        export_seconds={"fp32": fp32_seconds, "int8": int8_seconds},
        median_ms=median,
        executorch_fp32_over_onnxruntime_fp32=median["executorch fp32"]
        / median["onnxruntime fp32"],
        executorch_int8_over_executorch_fp32=median["executorch int8"] / median["executorch fp32"],
        executorch_fp32_over_torch=median["executorch fp32"] / median["torch"],
        fp32_max_diff_over_scale=error.item(),
    )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
