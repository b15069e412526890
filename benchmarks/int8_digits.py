#!/usr/bin/env python3
"""int8 versus fp32 on a real trained model: the digits model of ``examples/finetune.py``.

Train it first (about 4 minutes on 2 CPU cores)::

    python examples/finetune.py --model mnasnet_small --epochs 30 --output runs/finetune

then::

    python benchmarks/int8_digits.py runs/finetune --threads 1

The validation split is the example's own (same ``--val-fraction`` and ``--seed``), so the fp32
accuracy printed here equals the one in ``runs/finetune/metrics.json``. Calibration uses
``--calibration`` training images (never validation images). Reported: top-1 of the torch model,
of onnxruntime fp32 and of onnxruntime int8 on the validation images; agreement of int8's top-1
with fp32's; and latency at batch 1 and 32 (medians of calls timed round-robin, so load hits all
alike) at the model's input size, plus at 224x224 where MnasNet is meant to run. With
``mnaszoo[edge]`` installed, the same for ExecuTorch (XNNPACK) fp32 and int8 programs (PT2E,
calibrated on the same images; batch 1 only: the programs have a static batch).
"""

from __future__ import annotations

import argparse
import importlib.util
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

ROOT = Path(__file__).resolve().parents[1]


def load_example() -> Any:
    """examples/finetune.py as a module (for its digits loader and split)."""
    spec = importlib.util.spec_from_file_location("finetune_example", ROOT / "examples/finetune.py")
    if spec is None or spec.loader is None:
        raise SystemExit("examples/finetune.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def stacked(subset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*(subset[i] for i in range(len(subset))), strict=True)
    return torch.stack(images), torch.tensor(labels)


def top1(run: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([run(chunk).argmax(1) for chunk in images.split(64)])


def one_by_one(program: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Run a batch-1 program image by image."""
    return lambda images: torch.cat([program(image[None]) for image in images])


def executorch_programs(
    model: torch.nn.Module,
    size: int,
    calibration: torch.Tensor,
    folder: Path,
    threads: int | None,
    results: dict[str, Any],
) -> dict[str, Any]:
    """ExecuTorch fp32 and int8 programs of ``model`` (batch 1), or none without the extra."""
    from mnaszoo.deploy.executorch import executorch_available, executorch_threads

    if not executorch_available():
        print("ExecuTorch is not installed: no executorch rows", file=sys.stderr)
        return {}
    fp32_path = mnaszoo.export(model, folder / "fp32.pte", "executorch", input_size=size)
    start = time.perf_counter()
    int8_path = mnaszoo.export(
        model, folder / "int8.pte", "executorch-int8", calibration=calibration
    )
    results["executorch_quantize_seconds"] = time.perf_counter() - start
    programs = {
        "executorch fp32": mnaszoo.ExecuTorchModel(fp32_path, threads=threads),
        "executorch int8": mnaszoo.ExecuTorchModel(int8_path),
    }
    results["executorch_threads"] = executorch_threads()
    return programs


def time_round_robin(
    runners: dict[str, Callable[[torch.Tensor], Any]], x: torch.Tensor, repeats: int
) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in runners}
    with torch.inference_mode():
        for run in runners.values():
            run(x)
            run(x)
        for _ in range(repeats):
            for name, run in runners.items():
                start = time.perf_counter()
                run(x)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="the example's --output directory")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibration", type=int, default=256, help="training images (256)")
    parser.add_argument("--method", default="minmax", choices=("minmax", "entropy", "percentile"))
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per runner (30)")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    example = load_example()
    model = mnaszoo.from_pretrained(args.checkpoint).eval()
    size = mnaszoo.make_transform(model).input_size
    data = example.load_digits_data(size, args.val_fraction, args.seed)
    train_x, _ = stacked(data.train)
    val_x, val_y = stacked(data.val)
    generator = torch.Generator().manual_seed(args.seed)
    calibration = train_x[torch.randperm(len(train_x), generator=generator)[: args.calibration]]

    results: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "model": model.config.spec.name,
        "val_images": len(val_y),
        "calibration_images": len(calibration),
        "method": args.method,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = mnaszoo.OnnxRuntimeModel.from_model(
            model, input_size=size, threads=args.threads, cache_dir=tmp
        )
        start = time.perf_counter()
        path = mnaszoo.quantize_int8(
            model, Path(tmp) / "int8.onnx", calibration, method=args.method
        )
        results["quantize_seconds"] = time.perf_counter() - start
        int8 = mnaszoo.OnnxRuntimeModel(path, threads=args.threads)
        predictions = {
            "torch fp32": top1(model, val_x),
            "onnxruntime fp32": top1(fp32, val_x),
            "onnxruntime int8": top1(int8, val_x),
        }
        results["top1"] = {k: (p == val_y).float().mean().item() for k, p in predictions.items()}
        results["int8_agrees_with_fp32"] = (
            (predictions["onnxruntime int8"] == predictions["torch fp32"]).float().mean().item()
        )
        edge = executorch_programs(model, size, calibration, Path(tmp), args.threads, results)
        if edge:
            for name, program in edge.items():
                predictions[name] = top1(one_by_one(program), val_x)
            results["top1"] = {
                k: (p == val_y).float().mean().item() for k, p in predictions.items()
            }
            results["executorch_int8_agrees_with_fp32"] = (
                (predictions["executorch int8"] == predictions["torch fp32"]).float().mean().item()
            )
        fast = mnaszoo.optimize_for_inference(model)
        runners: dict[str, Callable[[torch.Tensor], Any]] = {
            "torch plain": model,
            "torch optimized": lambda x: fast(x.contiguous(memory_format=torch.channels_last)),
            "onnxruntime fp32": fp32,
            "onnxruntime int8": int8,
        }
        results["latency_ms"] = {}
        for batch in (1, 32):
            x = val_x[:batch] if batch <= len(val_x) else val_x
            key = f"{size}px batch {batch}"
            # ExecuTorch programs have a static batch (exported at 1).
            timed: dict[str, Callable[[torch.Tensor], Any]] = (
                {**runners, **edge} if batch == 1 else dict(runners)
            )
            results["latency_ms"][key] = time_round_robin(timed, x, args.repeats)
        # MnasNet's own resolution: the same network at 224x224 (random inputs; speed only).
        fp32_224 = mnaszoo.OnnxRuntimeModel.from_model(
            model, input_size=224, threads=args.threads, cache_dir=tmp
        )
        calib_224 = torch.nn.functional.interpolate(calibration[:64], size=224, mode="bilinear")
        int8_224 = mnaszoo.OnnxRuntimeModel(
            mnaszoo.quantize_int8(model, Path(tmp) / "int8_224.onnx", calib_224),
            threads=args.threads,
        )
        for batch in (1, 32):
            x = torch.randn(batch, 3, 224, 224)
            results["latency_ms"][f"224px batch {batch}"] = time_round_robin(
                {"onnxruntime fp32": fp32_224, "onnxruntime int8": int8_224},
                x,
                max(5, args.repeats // (4 if batch > 1 else 1)),
            )

    print(json.dumps(results, indent=2))
    for key, row in results["latency_ms"].items():
        ratio = row["onnxruntime int8"] / row["onnxruntime fp32"]
        print(f"{key}: int8 / onnxruntime fp32 = {ratio:.2f}", file=sys.stderr)
        if "executorch int8" in row:
            ratio = row["executorch int8"] / row["executorch fp32"]
            print(f"{key}: executorch int8 / executorch fp32 = {ratio:.2f}", file=sys.stderr)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
