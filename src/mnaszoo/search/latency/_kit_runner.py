"""Measure a mnaszoo latency kit on this device: needs only Python 3.9+ and the kit's runtime.

Written into every kit by ``mnaszoo latency-kit KIT/`` as ``KIT/measure.py``. Run it on the target
device (``python measure.py``, ``--help`` for the options); it times every block model of the kit
and the calibration networks end to end, re-measures what was too noisy, and writes
``KIT/table.json``, which ``mnaszoo search --table KIT/table.json`` reads.

The runtime is the kit's (``manifest.json``): ``onnxruntime`` (numpy and onnxruntime; never
torch) or ``executorch`` (``.pte`` programs in ExecuTorch's Python runtime,
``executorch.runtime``; its Python bindings are built on libtorch and import torch themselves,
so torch comes with them, but nothing else). It never imports mnaszoo and checks that it did not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from typing import Any

KIT_FORMAT = "mnaszoo-latency-kit"
TABLE_FORMAT = "mnaszoo-device-latency-table"
TABLE_VERSION = 1
CHUNK = 48  # sessions open at once: bounds memory on small devices
REFERENCE_COPIES = 5  # runs of the reference network per chunk (mnaszoo's tables time it alike)


def cpu_name() -> str:
    """The CPU model as the OS reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("model name", "hardware", "cpu model"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear interpolation)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(times: list[float]) -> dict[str, Any]:
    """Median, 25th/75th percentiles, the fastest call (ms) and the spread
    ``(p75 - p25) / median``."""
    median = quantile(times, 0.5) * 1e3
    p25, p75 = quantile(times, 0.25) * 1e3, quantile(times, 0.75) * 1e3
    return {
        "ms": median,
        "p25_ms": p25,
        "p75_ms": p75,
        "spread": (p75 - p25) / median if median > 0 else 0.0,
        "samples": len(times),
        "min_ms": max(min(times) * 1e3, 1e-6),
    }


class DamagedKitError(Exception):
    """A model file of the kit cannot be loaded."""


class Runner:
    """Opens onnxruntime sessions and times them, interleaved."""

    def __init__(
        self,
        kit: str,
        threads: int,
        warmup: int,
        rounds: int,
        calls: int,
        clock: str,
        runtime: str = "onnxruntime",
        reference: dict[str, Any] | None = None,
        settle: int = 1,
    ) -> None:
        self.runtime = runtime
        if runtime == "executorch":
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime

            self.et = Runtime.get()
            # XNNPACK runs on ExecuTorch's process-wide thread pool.
            if int(portable_lib._threadpool_get_thread_count()) != threads:
                portable_lib._unsafe_reset_threadpool(threads)
            self.version = _distribution_version("executorch")
        else:
            import numpy
            import onnxruntime

            self.np, self.ort = numpy, onnxruntime
            self.version = str(onnxruntime.__version__)
        self.kit, self.threads = kit, threads
        # thread: CPU time of this thread (one thread only), blind to other processes' load.
        self.now = time.thread_time if clock == "thread" else time.perf_counter
        self.warmup, self.rounds, self.calls = warmup, rounds, calls
        self.settle = settle  # untimed calls per model at the start of every round
        # The yardstick: a fixed network timed in every chunk (kits written before it: none).
        self.reference = None if reference is None else self.session(reference)
        self.reference_ms: float | None = None
        self.max_drift = 0.0

    def session(self, item: dict[str, Any]) -> Any:
        """A no-argument call that runs ``item``'s model once.

        Raises:
            DamagedKitError: the model file is missing or unreadable.
        """
        try:
            return self._program(item) if self.runtime == "executorch" else self._session(item)
        except Exception as error:  # each runtime raises its own types for a bad file
            raise DamagedKitError(
                f"{item['file']} could not be loaded ({type(error).__name__}: {error})."
                " The kit is damaged or incomplete: write it again with `mnaszoo latency-kit`"
                " and copy the whole folder."
            ) from error

    def _session(self, item: dict[str, Any]) -> Any:
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        path = os.path.join(self.kit, item["file"])
        session = self.ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        rng = self.np.random.default_rng(0)
        shape = [int(d) for d in item["input_shape"]]
        feed = {session.get_inputs()[0].name: rng.standard_normal(shape).astype("float32")}
        return lambda: session.run(None, feed)

    def _program(self, item: dict[str, Any]) -> Any:
        # ExecuTorch's Python bindings take torch tensors only; torch is already loaded by them.
        torch = sys.modules["torch"]
        program = self.et.load_program(os.path.join(self.kit, item["file"]))
        method = program.load_method("forward")
        generator = torch.Generator().manual_seed(0)
        example = [torch.randn([int(d) for d in item["input_shape"]], generator=generator)]
        return lambda: method.execute(example) if program is not None else None

    def measure(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Time every item; round-robin so that a burst of load hits all of them alike.

        With a reference network (the kit's ``reference``), every chunk also times it
        ``REFERENCE_COPIES`` times spread through the chunk, and the chunk's timings are
        rescaled by how much slower or faster it ran than in the first chunk: a device that
        heats up and slows down, or a neighbour that takes the shared cache, shows in the
        reference as much as in the blocks.
        """
        results: list[dict[str, Any]] = []
        for start in range(0, len(items), CHUNK):
            calls = [self.session(item) for item in items[start : start + CHUNK]]
            positions: list[int] = []
            if self.reference is not None:
                calls, positions = with_reference(calls, self.reference)
            times: list[list[float]] = [[] for _ in calls]
            for call in calls:
                for _ in range(self.warmup):
                    call()
            for _ in range(self.rounds):
                for index, call in enumerate(calls):
                    for _ in range(self.settle):  # its first call after the others runs cold
                        call()
                    for _ in range(self.calls):
                        began = self.now()
                        call()
                        times[index].append(self.now() - began)
            results.extend(self.rescaled([summary(t) for t in times], positions))
        return results

    def rescaled(self, timed: list[dict[str, Any]], positions: list[int]) -> list[dict[str, Any]]:
        """The chunk's own timings in the units of the first chunk (see :meth:`measure`)."""
        if not positions:
            return timed
        kept, measured = rescale_chunk(timed, positions, self.reference_ms)
        if self.reference_ms is None:
            self.reference_ms = measured
        self.max_drift = max(self.max_drift, abs(measured / self.reference_ms - 1.0))
        return kept


def rescale_chunk(
    timed: list[dict[str, Any]], positions: list[int], reference_ms: float | None
) -> tuple[list[dict[str, Any]], float]:
    """The timings not at ``positions``, rescaled by the reference's drift from
    ``reference_ms`` (none on the first chunk: ``None``), and the reference's median here."""
    measured = quantile([timed[i]["ms"] for i in positions], 0.5)
    factor = 1.0 if reference_ms is None else reference_ms / measured
    kept = [dict(t) for i, t in enumerate(timed) if i not in set(positions)]
    for timing in kept:
        for key in ("ms", "p25_ms", "p75_ms", "min_ms"):
            timing[key] *= factor
    return kept, measured


def with_reference(calls: list[Any], reference: Any) -> tuple[list[Any], list[int]]:
    """``calls`` with ``REFERENCE_COPIES`` copies of ``reference`` spread through them."""
    merged: list[Any] = []
    positions: list[int] = []
    cuts = [round(k * len(calls) / REFERENCE_COPIES) for k in range(REFERENCE_COPIES)]
    for begin, end in zip(cuts, [*cuts[1:], len(calls)]):  # noqa: B905 (runs on Python 3.9)
        positions.append(len(merged))
        merged.append(reference)
        merged.extend(calls[begin:end])
    return merged, positions


def _distribution_version(name: str) -> str:
    from importlib.metadata import version

    return str(version(name))


def measure_steady(
    runner: Runner, items: list[dict[str, Any]], max_spread: float, retries: int, what: str
) -> list[dict[str, Any]]:
    """Measure ``items``; re-measure those whose spread exceeds ``max_spread`` (keeping the
    steadiest attempt); those still noisy are marked ``"noisy": true``."""
    results = runner.measure(items)
    for result in results:
        result["attempts"] = 1
    for attempt in range(retries):
        noisy = [i for i, r in enumerate(results) if r["spread"] > max_spread]
        if not noisy:
            break
        print(f"  re-measuring {len(noisy)} noisy {what} (attempt {attempt + 2})", flush=True)
        again = runner.measure([items[i] for i in noisy])
        for index, result in zip(noisy, again):  # noqa: B905 (runs on Python 3.9)
            result["attempts"] = results[index]["attempts"] + 1
            if result["spread"] < results[index]["spread"]:
                results[index] = result
            else:
                results[index]["attempts"] = result["attempts"]
    for result in results:
        result["noisy"] = result["spread"] > max_spread
    return results


def parse(argv: list[str] | None) -> argparse.Namespace:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default=here, help="the kit folder (default: this script's)")
    parser.add_argument("--out", default=None, help="table file (default: KIT/table.json)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per model")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per model per round")
    parser.add_argument(
        "--settle",
        type=int,
        default=1,
        help="untimed calls per model at the start of every round (the first runs cold)",
    )
    parser.add_argument("--max-spread", type=float, default=None, help="(p75-p25)/median limit")
    parser.add_argument(
        "--retries", type=int, default=3, help="re-measurements of noisy calibration networks"
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "thread"),
        default="wall",
        help="wall: elapsed time (default); thread: CPU time of the timing thread (1 thread only)",
    )
    args = parser.parse_args(argv)
    for name, least in (("rounds", 1), ("calls", 1), ("warmup", 0), ("settle", 0), ("retries", 0)):
        if getattr(args, name) < least:  # argparse exits with status 2 and the usage
            parser.error(f"--{name} must be at least {least}, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Measure the kit and write its table; returns the exit status."""
    args = parse(argv)
    with open(os.path.join(args.kit, "manifest.json"), encoding="utf-8") as file:
        manifest = json.load(file)
    if manifest.get("format") != KIT_FORMAT:
        print(f"{args.kit} is not a mnaszoo latency kit (manifest format).", file=sys.stderr)
        return 2
    threads = manifest["threads"] if args.threads is None else args.threads
    max_spread = manifest["max_spread"] if args.max_spread is None else args.max_spread
    if args.clock == "thread" and threads != 1:
        print("--clock thread needs --threads 1", file=sys.stderr)
        return 2
    runtime = str(manifest.get("runtime", "onnxruntime"))
    began = time.time()
    entries, networks = manifest["entries"], manifest["calibration"]
    try:
        runner = Runner(
            args.kit,
            threads,
            args.warmup,
            args.rounds,
            args.calls,
            args.clock,
            runtime,
            manifest.get("reference"),
            args.settle,
        )
        print(f"timing {len(entries)} block models with {threads} thread(s)...", flush=True)
        # Blocks are timed once: a retry re-times a block among fewer models, warmer than the
        # first time, and the fastest call the table sums needs none.
        measured = measure_steady(runner, entries, max_spread, 0, "blocks")
        print(f"timing {len(networks)} calibration networks end to end...", flush=True)
        whole = measure_steady(runner, networks, max_spread, args.retries, "networks")
    except DamagedKitError as error:  # nothing is written: no table from part of a kit
        print(f"measure.py: {error}", file=sys.stderr)
        return 2
    # ExecuTorch's bindings bring torch along; onnxruntime's kit must run without it.
    forbidden = ("mnaszoo",) if runtime == "executorch" else ("torch", "mnaszoo")
    leaked = sorted(name for name in forbidden if name in sys.modules)
    if leaked:  # the table must describe the runtime alone
        print(f"refusing to write: {', '.join(leaked)} got imported", file=sys.stderr)
        return 3
    table = {
        "format": TABLE_FORMAT,
        "version": TABLE_VERSION,
        "kit": manifest["kit"],
        "clock": args.clock,
        "runtime": runtime,
        "runtime_version": runner.version,
        "threads": threads,
        "device_cpu": cpu_name(),
        "machine": platform.machine(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "max_spread": max_spread,
        "settings": {
            "warmup": args.warmup,
            "rounds": args.rounds,
            "calls": args.calls,
            "settle": args.settle,
        },
        "seconds": time.time() - began,
        # How far the reference network's speed wandered: mnaszoo warns above 15%.
        "conditions": {"max_reference_drift": runner.max_drift} if runner.reference else {},
        "entries": {item["key"]: r for item, r in zip(entries, measured)},  # noqa: B905
        "calibration": {
            item["name"]: {**r, "keys": item["keys"]}
            for item, r in zip(networks, whole)  # noqa: B905
        },
    }
    out = args.out or os.path.join(args.kit, "table.json")
    temp = out + ".tmp"
    try:
        with open(temp, "w", encoding="utf-8") as file:
            json.dump(table, file, indent=1)
        os.replace(temp, out)  # never a half-written table
    except OSError as error:  # a full disk, a read-only folder, a folder that is not there
        if os.path.exists(temp):
            os.remove(temp)
        print(
            f"measure.py: could not write {out} ({error.strerror or error}); nothing was"
            " written. Free some space or pass --out PATH in a writable folder, then run again.",
            file=sys.stderr,
        )
        return 2
    noisy = sum(r["noisy"] for r in measured) + sum(r["noisy"] for r in whole)
    print(f"wrote {out} ({len(measured)} blocks, {noisy} still noisy) in {table['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
