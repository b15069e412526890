"""Score the in-context latency predictor of every backend on fresh held-out networks.

For each backend (``onnxruntime``, ``torch-optimized``, ``executorch`` by default) a new
:class:`mnaszoo.search.latency.context_table.ContextLatencyTable` is calibrated on the search's
calibration networks (timed: the calibration time), then scored against end-to-end timings of
networks that took no part in calibration:

- ``space``: ``--held-out`` (100) random networks of the default search space;
- ``outside``: 20 networks outside it: every registered model, random networks at width
  multipliers 0.35-1.4, and random networks at input sizes 160-320 (predicted by a table at that
  size carrying the 224-pixel calibration).

Writes ``OUT/scores.json`` (every prediction and measurement), ``OUT/scores.md`` (within ±5% /
±10%, MAPE, Spearman, worst error, calibration seconds per backend and set, with the machine and
date; the row ``space, timed again`` scores a second timing of the same 100 networks against the
first: the machine's own noise floor, which no predictor can beat) and, when matplotlib is
installed, ``OUT/scatter_<backend>.png`` (predicted against measured, log axes). Run it on
an idle machine; ``--quick`` is a smoke run of a few tiny networks::

    python benchmarks/latency_predictor_score.py --out latency_score
    python benchmarks/latency_predictor_score.py --quick --out /tmp/score
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import random
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from mnaszoo._io import atomic_path, check_writable, write_text_atomic
from mnaszoo.cli._options import non_negative_int, number_type, positive_float, positive_int
from mnaszoo.errors import InvalidArgumentError, MnaszooError
from mnaszoo.models.plan import NetworkPlan, resolve_plan
from mnaszoo.models.registry import get_entry, list_models
from mnaszoo.search.latency.calibration import CALIBRATION_NETWORKS, device_cpu
from mnaszoo.search.latency.context_table import ContextLatencyTable
from mnaszoo.search.latency.open import calibration_networks, spec_key
from mnaszoo.search.latency.score import markdown_table, score_predictions
from mnaszoo.search.latency.timing import BACKENDS
from mnaszoo.search.latency.trust import LatencyTrustWarning
from mnaszoo.search.space import SearchSpace

WIDTHS = (0.35, 0.5, 0.75, 1.3, 1.4)
QUIET_MAPE = 0.02
"""The largest MAPE between two timings of the same networks (the ``space, timed again`` row) of
a quiet run: on an idle 2-core VM it is 1-2%. Above it, the host's neighbours were taking the
shared cache and memory bandwidth (a thread's CPU-time clock cannot see that), and the scores
measure the machine as much as the predictor."""
SIZES = (160, 192, 256, 320)
AT_LEAST_3 = number_type(int, lambda v: v >= 3, "an integer >= 3")  # 3 terms, one left out
AT_LEAST_16 = number_type(int, lambda v: v >= 16, "an integer >= 16")


def held_out(n: int, calibration: list[Any]) -> list[NetworkPlan]:
    """``n`` random networks of the default space, none of them a calibration network."""
    space = SearchSpace()
    taken = {spec_key(p.spec) for p in calibration}
    rng = random.Random("mnaszoo-latency-score-held-out")
    found: list[NetworkPlan] = []
    while len(found) < n:
        spec = space.to_spec(space.sample(rng), name=f"held_out_{len(found):03d}")
        if spec_key(spec) not in taken:
            taken.add(spec_key(spec))
            found.append(resolve_plan(spec))
    return found


def outside(quick: bool, size: int = 224) -> list[tuple[NetworkPlan, int]]:
    """Networks outside the space, each with its input size: registered models, other widths
    (at ``size``), other input sizes (20 in all; 3 with ``quick``, at 1.5 ``size``)."""
    space = SearchSpace()
    rng = random.Random("mnaszoo-latency-score-outside")
    models = list_models()[:1] if quick else list_models()
    found: list[tuple[NetworkPlan, int]] = []
    for name in models:
        entry = get_entry(name)
        found.append((resolve_plan(entry.spec, width_mult=entry.width_mult), size))
    widths = WIDTHS[:1] if quick else WIDTHS[: max(0, 20 - len(found) - len(SIZES))]
    for width in widths:
        spec = space.to_spec(space.sample(rng), name=f"width_{width:g}")
        found.append((resolve_plan(spec, width_mult=width), size))
    for other in (size * 3 // 2,) if quick else SIZES:
        found.append((resolve_plan(space.to_spec(space.sample(rng), name=f"size_{other}")), other))
    return found


def _table(backend: str, size: int, args: argparse.Namespace) -> ContextLatencyTable:
    return ContextLatencyTable(
        backend=backend,
        image_size=size,
        num_classes=args.num_classes,
        threads=1,
        rounds=args.rounds,
        per_round=args.per_round,
        retries=args.retries,
        max_spread=args.max_spread,
    )


def _raw(table: ContextLatencyTable, plan: NetworkPlan) -> dict[str, Any]:
    """The uncalibrated sum of a network's entries (the table's statistic, and the medians for
    comparison) and its layer count."""
    raw = table.predict_raw(plan)
    layers = table.layers(plan)
    medians = math.fsum(table.entries[layer.key].ms for layer in layers)
    return {"raw_ms": raw, "median_raw_ms": medians, "layers": len(layers)}


def score_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Calibrate a table for ``backend`` and score it on both sets."""
    size = args.input_size
    table = _table(backend, size, args)
    calibration = calibration_networks(SearchSpace(), args.calibration)
    began = time.perf_counter()
    timings = table.measure_timing(calibration)
    fit = table.fit_calibration(calibration, timings)
    seconds = time.perf_counter() - began
    result: dict[str, Any] = {"backend": backend, "calibration_s": seconds, "sets": {}}
    result["calibration"] = {
        **asdict(fit),
        # What the fit saw, so that other calibration forms can be scored on the same timings.
        "networks": [
            {**_raw(table, plan), "measured_ms": t.ms, "spread": t.spread}
            for plan, t in zip(calibration, timings, strict=True)
        ],
    }
    space_plans = held_out(args.held_out, calibration)
    sets: dict[str, list[tuple[NetworkPlan, int]]] = {
        "space": [(p, size) for p in space_plans],
        "outside": outside(args.quick, size),
    }
    for name, items in sets.items():
        records: list[dict[str, Any]] = []
        for at in sorted({s for _, s in items}):
            group = [p for p, s in items if s == at]
            here = table if at == size else _table(backend, at, args)
            if here is not table:  # the 224-pixel calibration, applied at another size
                here._calibration, here.coverage = table.calibration, table.coverage
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", LatencyTrustWarning)
                predicted = [here.predict(p) for p in group]
            measured = [t.ms for t in here.measure_timing(group)]
            flagged = {str(w.message).split(":", 1)[0] for w in caught}
            for plan, p, m in zip(group, predicted, measured, strict=True):
                name_ = plan.spec.name
                records.append(
                    {
                        "name": name_,
                        "image_size": at,
                        "width_mult": plan.width_mult,
                        "predicted_ms": p,
                        "measured_ms": m,
                        **_raw(here, plan),
                        "flagged": f"network {name_!r}" in flagged,
                    }
                )
        score = score_predictions(
            [r["predicted_ms"] for r in records], [r["measured_ms"] for r in records]
        )
        result["sets"][name] = {**score, "networks_detail": records}
    if args.remeasure:
        # The noise floor: the same networks timed again, scored against their first timing.
        first = [r["measured_ms"] for r in result["sets"]["space"]["networks_detail"]]
        again = [t.ms for t in table.measure_timing(space_plans)]
        result["remeasured"] = {**score_predictions(again, first), "measured_again_ms": again}
    result["conditions"] = dict(table.conditions)
    return result


def rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Markdown row per backend and set."""
    out = []
    for result in results:
        for name, figures in result["sets"].items():
            out.append(
                {
                    "backend": result["backend"],
                    "set": name,
                    "calibration_s": result["calibration_s"],
                    **figures,
                }
            )
        if "remeasured" in result:
            out.append(
                {"backend": result["backend"], "set": "space, timed again", **result["remeasured"]}
            )
    return out


def quiet_note(results: list[dict[str, Any]]) -> str:
    """A line saying whether the run was quiet enough for its scores to measure the predictor."""
    floors = {r["backend"]: r["remeasured"]["mape"] for r in results if "remeasured" in r}
    if not floors:
        return "Noise floor not measured (--no-remeasure)."
    busy = {name: mape for name, mape in floors.items() if mape > QUIET_MAPE}
    if not busy:
        return (
            f"Quiet run: networks timed twice agree within {QUIET_MAPE:.0%} MAPE on every backend."
        )
    shown = ", ".join(f"{name} {mape:.1%}" for name, mape in busy.items())
    return (
        f"NOT a quiet run: the same networks timed twice differ by more than {QUIET_MAPE:.0%}"
        f" MAPE ({shown}); the machine was busy, and these scores are bounded by it. Run again"
        " when it is idle."
    )


def scatter(result: dict[str, Any], path: Path) -> bool:
    """Predicted against measured milliseconds, one colour per set; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    low, top = math.inf, 0.0
    for name, figures in result["sets"].items():
        measured = [r["measured_ms"] for r in figures["networks_detail"]]
        predicted = [r["predicted_ms"] for r in figures["networks_detail"]]
        axes.scatter(measured, predicted, s=10, label=name)
        low, top = min([low, *measured, *predicted]), max([top, *measured, *predicted])
    # Log axes: the ±10% band is the same width for a 2 ms and a 150 ms network.
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ticks = [t for t in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) if low * 0.8 <= t <= top * 1.2]
    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    span = [low * 0.9, top * 1.1]
    axes.plot(span, span, color="black", linewidth=0.8)
    for tolerance in (0.1,):
        axes.plot(span, [v * (1 + tolerance) for v in span], "--", color="grey", linewidth=0.6)
        axes.plot(span, [v * (1 - tolerance) for v in span], "--", color="grey", linewidth=0.6)
    axes.set_xlabel("measured ms")
    axes.set_ylabel("predicted ms")
    axes.set_title(f"{result['backend']} (dashed: ±10%)")
    axes.legend()
    figure.tight_layout()
    with atomic_path(path, "the scatter plot") as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)
    return True


def check_output(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, before any timing, an ``--out`` the scores could not be saved in (argparse's
    usage message and exit status 2); the counts are checked by their argparse types."""
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        check_writable(out / "scores.json", "the scores")
    except FileExistsError:
        parser.error(f"--out {out} is a file; name a folder for the scores")
    except (OSError, MnaszooError) as error:
        parser.error(f"--out {out} cannot be written: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        default=["onnxruntime", "torch-optimized", "executorch"],
    )
    parser.add_argument("--input-size", type=AT_LEAST_16, default=224)
    parser.add_argument("--num-classes", type=positive_int, default=1000)
    parser.add_argument("--held-out", type=positive_int, default=100)
    parser.add_argument("--calibration", type=AT_LEAST_3, default=CALIBRATION_NETWORKS)
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--per-round", type=positive_int, default=3)
    parser.add_argument("--retries", type=non_negative_int, default=2)
    parser.add_argument(
        "--max-spread", type=positive_float, default=0.2, help="(p75-p25)/median limit"
    )
    parser.add_argument(
        "--no-remeasure",
        dest="remeasure",
        action="store_false",
        help="skip timing the space's networks a second time (the noise-floor row)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny and few")
    parser.add_argument("--out", default="latency_score", help="output folder")
    args = parser.parse_args(argv)
    check_output(parser, args)
    if args.quick:
        args.input_size, args.held_out, args.calibration = 32, 4, 4
        args.rounds, args.per_round, args.retries = 2, 1, 0
        args.max_spread = 10.0  # a smoke run of the code, not of the machine's quiet
    torch.set_num_threads(1)
    out = Path(args.out)
    results = []
    for backend in args.backends:
        try:
            results.append(score_backend(backend, args))
        except InvalidArgumentError as error:  # a calibration refused on a busy machine
            print(f"{backend}: not scored: {error}", file=sys.stderr)
    if not results:
        return 1
    machine = {
        "cpu": device_cpu(),
        "system": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/latency_predictor_score.py " + " ".join(argv or []),
    }
    data = {"machine": machine, "settings": vars(args), "results": results}
    table = markdown_table(rows(results)) + "\n" + quiet_note(results) + "\n"
    heading = f"{machine['cpu']}, {machine['system']}, {machine['date']}, 1 thread\n\n"
    print(heading + table)  # first: a run is minutes of timing, kept even if the files fail
    try:
        # Written whole or not at all: a half-written file would pass for a result.
        write_text_atomic(out / "scores.json", json.dumps(data, indent=1) + "\n")
        write_text_atomic(out / "scores.md", heading + table)
        for result in results:
            scatter(result, out / f"scatter_{result['backend']}.png")
    except MnaszooError as error:
        print(f"The scores above could not be saved: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
