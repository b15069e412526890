"""The ``mnaszoo`` command: list, inspect, download, predict with and evaluate MnasNet models.

Exit status: 0 on success, 1 on an error (one line ``mnaszoo: error: ...`` on stderr; ``--debug``
adds the traceback), 2 on a usage error. See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import (
    DownloadError,
    InvalidArgumentError,
    MnaszooError,
    WeightsNotCachedError,
    close_matches_hint,
)
from .manifest import HubSource, UrlSource, WeightsRecord, get_weights, load_manifest
from .registry import get_entry, list_models
from .summary import describe

if TYPE_CHECKING:
    from .evaluation import EvaluationResult

__all__ = ["build_parser", "main"]

PROG = "mnaszoo"
_GLOB = frozenset("*?[")
_DEFAULT_MODEL = "mnasnet_a1"

_EPILOG = """\
examples:
  mnaszoo list                       models, parameters, MACs and published weights
  mnaszoo info mnasnet_b1            per-stage table and the weights' provenance
  mnaszoo predict photo.jpg          top-5 ImageNet classes (mnasnet_a1's default weights)
  mnaszoo download --all             fill the cache for offline use
  mnaszoo evaluate imagenet/val --model mnasnet_b1 --weights tv_in1k
  mnaszoo search runs/search --budget 30   architecture search on digits (needs mnaszoo[examples])

Exit status: 0 success, 1 error (one line on stderr; --debug shows the traceback), 2 usage.
"""


# ----------------------------------------------------------------------------- argument types


def _number_type(
    cast: Callable[[str], float], accepts: Callable[[float], bool], expected: str
) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses with ``cast`` and refuses values ``accepts`` rejects."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number_type(float, lambda v: 0 < v < math.inf, "a positive number")


# ----------------------------------------------------------------------------- formatting


def _verified_by(record: WeightsRecord) -> str:
    if record.sha256 is not None:
        return f"sha256 {record.sha256}"
    if record.sha256_prefix is not None:
        return f"sha256 prefix {record.sha256_prefix} (from the file name, as torch.hub checks)"
    return "the Git-LFS sha256 the Hub reports for the pinned commit"


def _source_text(record: WeightsRecord) -> str:
    source = record.source
    if isinstance(source, HubSource):  # the full pinned commit
        return f"https://huggingface.co/{source.repo_id}/blob/{source.revision}/{source.filename}"
    return str(source)


def _preprocessing_text(record: WeightsRecord) -> str:
    p = record.preprocessing
    return (
        f"resize {p.resize} {p.interpolation}, crop {p.input_size}, mean {list(p.mean)},"
        f" std {list(p.std)}"
    )


def _record_dict(record: WeightsRecord, default: bool) -> dict[str, Any]:
    source: dict[str, Any]
    if isinstance(record.source, HubSource):
        source = {"type": "hub", **asdict(record.source)}
    elif isinstance(record.source, UrlSource):
        source = {"type": "url", "url": record.source.url}
    else:
        source = {"type": "local", "location": str(record.source)}
    return {
        "id": record.id,
        "model": record.model,
        "tag": record.tag,
        "default": default,
        "source": source,
        "sha256": record.sha256,
        "sha256_prefix": record.sha256_prefix,
        "verified_by": _verified_by(record),
        "size": record.size,
        "layout": record.layout,
        "num_classes": record.num_classes,
        "labels": record.labels if isinstance(record.labels, str) else list(record.labels),
        "num_params": record.num_params,
        "license": record.license,
        "publisher": record.publisher,
        "preprocessing": {**record.preprocessing.to_dict(), "resize": record.preprocessing.resize},
        "metrics": [asdict(m) for m in record.metrics],
        "notes": record.notes,
    }


def _metric(record: WeightsRecord) -> tuple[float | None, float | None]:
    metric = next((m for m in record.metrics if m.dataset == "imagenet-1k-val"), None)
    return (None, None) if metric is None else (metric.top1, metric.top5)


def _table(rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(row, widths, right, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


# ----------------------------------------------------------------------------- commands


def _cmd_list(args: argparse.Namespace) -> int:
    pattern: str | None = args.pattern
    if pattern is not None and not (_GLOB & set(pattern)):
        pattern = f"*{pattern}*"
    names = list_models(pattern)
    if not names:
        hint = close_matches_hint(args.pattern, list_models())
        raise InvalidArgumentError(
            f"No model matches {args.pattern!r}.{hint} `mnaszoo list` shows them all."
        )
    manifest = load_manifest()
    entries = []
    for name in names:
        summary = describe(name)
        records = sorted(
            (r for r in manifest.records.values() if r.model == name), key=lambda r: r.id
        )
        entries.append((name, summary, records))
    if args.json:
        _print_json(
            [
                {
                    "name": name,
                    "description": get_entry(name).description,
                    "params": summary.params,
                    "macs": summary.macs,
                    "weights": [
                        {
                            "id": r.id,
                            "default": manifest.defaults.get(name) == r.id,
                            "top1": _metric(r)[0],
                            "top5": _metric(r)[1],
                            "license": r.license,
                        }
                        for r in records
                    ],
                }
                for name, summary, records in entries
            ]
        )
        return 0
    rows: list[tuple[str, ...]] = [("model", "params", "MACs@224", "weights", "top-1", "top-5")]
    for name, summary, records in entries:
        head = (name, f"{summary.params:,}", f"{summary.macs / 1e6:.2f}M")
        if not records:
            rows.append((*head, "-", "", ""))
        for i, r in enumerate(records):
            top1, top5 = _metric(r)
            mark = " *" if manifest.defaults.get(name) == r.id else ""
            rows.append(
                (
                    *(head if i == 0 else ("", "", "")),
                    f"{r.id}{mark}",
                    "" if top1 is None else f"{top1:.3f}",
                    "" if top5 is None else f"{top5:.3f}",
                )
            )
    print(_table(rows, right=(False, True, True, False, True, True)))
    print("* default weights (best reported ImageNet-1k top-1); `mnaszoo info NAME` for details")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    name: str = args.name
    if "." in name and name.split(".", 1)[0] in list_models():
        records = [get_weights(name)]
        name = records[0].model
    else:
        records = sorted(
            (r for r in manifest.records.values() if r.model == name), key=lambda r: r.id
        )
    entry = get_entry(name)
    summary = describe(name, image_size=args.image_size)
    if args.json:
        _print_json(
            {
                "name": name,
                "description": entry.description,
                "width_mult": entry.width_mult,
                "image_size": args.image_size,
                "params": summary.params,
                "macs": summary.macs,
                "stages": [asdict(row) for row in summary.rows],
                "weights": [_record_dict(r, manifest.defaults.get(name) == r.id) for r in records],
            }
        )
        return 0
    print(f"{name}: {entry.description}")
    print()
    print(summary)
    if not records:
        print()
        print(f"No published weights for {name}: create({name!r}) is randomly initialised.")
        return 0
    for r in records:
        default = " (default)" if manifest.defaults.get(name) == r.id else ""
        fields = [
            ("source", _source_text(r)),
            ("verified by", _verified_by(r)),
            ("layout", f"{r.layout} (converted to mnaszoo's on loading)"),
            ("publisher", r.publisher),
            ("license", r.license),
            ("parameters", f"{r.num_params:,}"),
            ("classes", f"{r.num_classes} ({r.labels if isinstance(r.labels, str) else 'own'})"),
            ("preprocessing", _preprocessing_text(r)),
        ]
        for m in r.metrics:
            top5 = "" if m.top5 is None else f", top-5 {m.top5}"
            fields.append(("metric", f"{m.dataset}: top-1 {m.top1}{top5} ({m.source})"))
        if r.notes:
            fields.append(("notes", r.notes))
        width = max(len(key) for key, _ in fields)
        print()
        print(f"weights {r.id}{default}")
        for key, value in fields:
            print(f"  {key.ljust(width)}  {value}")
    return 0


def _check_device(device: str | None) -> None:
    if device is None:
        return
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as error:
        raise InvalidArgumentError(f"Unknown device {device!r}: {error}") from error
    if kind == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(
            f"--device {device}: CUDA is not available to this torch {torch.__version__}; use"
            " --device cpu."
        )


def _cmd_predict(args: argparse.Namespace) -> int:
    from .prediction import format_predictions, predict

    _check_device(args.device)
    results = predict(
        list(args.images),
        args.model,
        topk=args.topk,
        weights=args.weights,
        checkpoint=args.checkpoint,
        class_file=args.classes,
        input_size=args.input_size,
        device=args.device,
        cache_dir=args.cache_dir,
        backend=args.backend,
    )
    if args.json:
        _print_json(
            [
                {"image": image, "predictions": [p._asdict() for p in predictions]}
                for image, predictions in zip(args.images, results, strict=True)
            ]
        )
        return 0
    for image, predictions in zip(args.images, results, strict=True):
        print(image)
        print(format_predictions(predictions))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .pretrained import fetch_weights

    if not args.names and not args.all:
        args.subparser.error("give model names or weights ids to download, or --all")
    records: dict[str, WeightsRecord] = {}
    for name in load_manifest().records if args.all else ():
        records[name] = get_weights(name)
    for name in args.names:
        if "." not in name:
            get_entry(name)  # an unknown model name: suggest close matches
        record = get_weights(name)
        records.setdefault(record.id, record)
    for record in records.values():
        path = fetch_weights(
            record,
            cache_dir=args.cache_dir,
            local_files_only=False,
            force_download=args.force,
            token=None,
        )
        print(f"{record.id}  {path}")
    return 0


def _print_evaluation(result: EvaluationResult) -> None:
    topk = f"top-{result.topk}"
    p = result.preprocessing
    fields = [
        ("model", f"{result.model} ({result.weights or 'no published weights'})"),
        ("folder", f"{result.folder} (classes mapped by {result.mapping})"),
        ("images", f"{result.num_images} in {result.num_classes_seen} classes"),
        ("top-1", f"{result.top1:.2f} %  ({result.top1_correct}/{result.num_images})"),
        (topk, f"{result.top5:.2f} %  ({result.top5_correct}/{result.num_images})"),
        ("preprocessing", f"resize {p['resize']} {p['interpolation']}, crop {p['input_size']}"),
        (
            "time",
            f"{result.seconds:.1f} s, {result.images_per_second:.1f} images/s on"
            f" {result.device} (batch {result.batch_size})",
        ),
    ]
    width = max(len(key) for key, _ in fields)
    for key, value in fields:
        print(f"{key.ljust(width)}  {value}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate

    _check_device(args.device)
    result = evaluate(
        args.model,
        args.folder,
        weights=args.weights,
        checkpoint=args.checkpoint,
        input_size=args.input_size,
        batch_size=args.batch_size,
        num_workers=args.workers,
        device=args.device,
        limit=args.limit,
        progress=not args.quiet,
        cache_dir=args.cache_dir,
    )
    if args.json_out is not None:
        with open(args.json_out, "w", encoding="utf-8") as f:
            f.write(result.to_json() + "\n")
    if args.json:
        print(result.to_json())
    else:
        _print_evaluation(result)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import benchmark

    names: list[str] = []
    for pattern in args.models or ["*"]:
        matched = list_models(pattern) if _GLOB & set(pattern) else [pattern]
        if not matched:
            raise InvalidArgumentError(f"No model matches {pattern!r}; `mnaszoo list` shows them.")
        names += [n for n in matched if n not in names]
    for name in names:  # fail before the (slow) peak measurement
        get_entry(name)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    peak = benchmark.measure_matmul_peak(args.peak_size, threads=args.threads)
    rows = benchmark.run_benchmark(
        names,
        batch_sizes=args.batch_sizes,
        image_size=args.image_size,
        repeats=args.repeats,
        warmup=args.warmup,
        variants=variants,
        compare_reference=not args.no_reference,
        threads=args.threads,
        peak_gflops=peak,
    )
    text = benchmark.to_json(rows, peak_gflops=peak)
    if args.json_out is not None:
        with open(args.json_out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    if args.plot is not None:
        benchmark.plot_accuracy_latency(rows, args.plot)
    if args.json:
        print(text)
    else:
        threads = rows[0].threads if rows else args.threads
        print(
            f"torch {importlib.import_module('torch').__version__}, {threads} threads,"
            f" fp32 matmul peak {peak:.1f} GFLOP/s"
        )
        print(benchmark.to_markdown(rows))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    try:
        importlib.import_module("sklearn.datasets")
    except ImportError as error:
        raise MnaszooError(
            "mnaszoo search trains on scikit-learn's digits: pip install 'mnaszoo[examples]'."
        ) from error
    if len(args.seeds) > 1 and not args.compare:
        args.subparser.error("several --seeds need --compare")
    if args.strategies and not args.compare:
        args.subparser.error("--strategies needs --compare (or pass --strategy)")
    from .search import experiment
    from .summary import describe as describe_spec

    options: dict[str, Any] = {
        "budget": args.budget,
        "target_ms": args.target_ms,
        "reward": args.reward,
        "latency_backend": args.latency_backend,
        "image_size": args.image_size,
        "proxy_size": args.proxy_size,
        "proxy_epochs": args.proxy_epochs,
        "proxy_train_limit": args.train_limit or None,
        "threads": args.threads,
        "table_path": args.table,
        "calibrate": args.calibrate,
        "validate": args.validate_latency,
        "progress": not (args.no_progress or args.quiet),
    }
    if args.compare:
        strategies = args.strategies or ["controller", "random"]
        experiment.compare_strategies(
            args.output, strategies=strategies, seeds=args.seeds, **options
        )
        print((Path(args.output) / "comparison.md").read_text(encoding="utf-8"), end="")
        print(f"runs, comparison.json and comparison.md in {args.output}")
        return 0
    result = experiment.search_digits(
        args.output, strategy=args.strategy, seed=args.seeds[0], **options
    )
    best = result.best
    target = result.reward.target_ms
    print(
        f"best of {len(result.trials)} trials: trial {best.index}, proxy accuracy"
        f" {100 * best.accuracy:.1f} %, latency {best.latency_ms:.2f} ms (target {target:g} ms),"
        f" reward {best.reward:.4f}"
    )
    print()
    print(describe_spec(best.network_spec(), image_size=args.image_size))
    print()
    output = Path(args.output)
    files = ", ".join(
        name
        for name in ("best_spec.json", "summary.json", "trials.jsonl", "state.json", "pareto.png")
        if (output / name).exists()
    )
    print(f"{files} in {output}")
    print(f"rebuild: mnaszoo.build(load_spec('{output / 'best_spec.json'}'), num_classes=10)")
    return 0


# ----------------------------------------------------------------------------- parser


def _add_model_options(parser: argparse.ArgumentParser, *, classes: bool = False) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        "-m",
        default=_DEFAULT_MODEL,
        metavar="NAME",
        help=f"registered model name (default: {_DEFAULT_MODEL}; `mnaszoo list` shows them)",
    )
    group.add_argument(
        "--weights",
        "-w",
        metavar="TAG",
        help="weights tag or id, e.g. tv_in1k (default: the model's default weights)",
    )
    group.add_argument(
        "--checkpoint",
        "-c",
        metavar="PATH",
        help="a local weights file (mnaszoo, timm or torchvision layout) or a save_pretrained"
        " directory, instead of published weights",
    )
    if classes:
        group.add_argument(
            "--classes",
            metavar="FILE",
            help="class names, one per line in class-index order (for fine-tuned models)",
        )
    group.add_argument(
        "--input-size",
        type=_positive_int,
        metavar="N",
        help="input resolution N x N (the resize scales with it; default: the weights' recipe)",
    )
    group.add_argument(
        "--device", metavar="D", help="cpu, cuda, cuda:1, ... (default: cuda if available)"
    )
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="download cache (default: the Hugging Face cache and ~/.cache/mnaszoo)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mnaszoo`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logging",
    )
    common.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only warnings and errors on stderr, no progress bars",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The MnasNet family for PyTorch: models, verified pretrained weights,"
        " prediction and evaluation.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub = commands.add_parser(
        "list",
        parents=[common],
        help="list the models and their published weights",
        description="List the registered models with parameters, MACs at 224x224 and published"
        " weights (reported ImageNet-1k top-1/top-5; * marks each model's default).",
    )
    sub.add_argument(
        "pattern",
        nargs="?",
        metavar="PATTERN",
        help="shell-style pattern such as 'mnasnet_b1*'; a plain word matches as a substring",
    )
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub.set_defaults(run=_cmd_list)

    sub = commands.add_parser(
        "info",
        parents=[common],
        help="per-stage table of a model and its weights' provenance",
        description="Show a model's resolved per-stage table (channels, SE, parameters, MACs)"
        " and each published checkpoint: source, how it is verified, license, metrics,"
        " preprocessing.",
    )
    sub.add_argument("name", metavar="NAME", help="a model name or a weights id")
    sub.add_argument(
        "--image-size", type=_positive_int, default=224, metavar="N", help="for MACs (224)"
    )
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub.set_defaults(run=_cmd_info)

    sub = commands.add_parser(
        "predict",
        parents=[common],
        help="classify images",
        description="Classify images with a pretrained model and its own preprocessing. The"
        " weights are downloaded on first use and cached.",
    )
    sub.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    _add_model_options(sub, classes=True)
    sub.add_argument(
        "--topk", "-k", type=_positive_int, default=5, metavar="K", help="classes per image (5)"
    )
    sub.add_argument(
        "--json", action="store_true", help="print [{image, predictions: [{label, index, score}]}]"
    )
    sub.add_argument(
        "--backend",
        choices=("auto", "torch", "onnxruntime"),
        default="auto",
        help="what runs the model: auto = onnxruntime on the CPU when mnaszoo[onnx] is"
        " installed (the model is exported once and cached), else torch (auto)",
    )
    sub.set_defaults(run=_cmd_predict)

    sub = commands.add_parser(
        "download",
        parents=[common],
        help="fetch weights into the cache for offline use",
        description="Download and verify published weights into the cache, for offline use"
        " (HF_HUB_OFFLINE=1) here or on a machine you copy the cache to. A model name fetches its"
        " default weights; a weights id those weights.",
    )
    sub.add_argument("names", nargs="*", metavar="NAME|WEIGHTS_ID", help="what to download")
    sub.add_argument("--all", action="store_true", help="every published checkpoint")
    sub.add_argument("--cache-dir", metavar="DIR", help="cache directory (default: see --help)")
    sub.add_argument(
        "--force", action="store_true", help="download again even if a verified copy is cached"
    )
    sub.set_defaults(run=_cmd_download, subparser=sub)

    sub = commands.add_parser(
        "evaluate",
        parents=[common],
        help="top-1/top-5 accuracy on a folder of labelled images",
        description="Measure top-1/top-5 accuracy on FOLDER, which holds one subfolder per"
        " class: ImageNet synsets (n01440764, ...), the model's class names, or exactly as many"
        " folders as the model has classes (sorted order = class index).",
    )
    sub.add_argument("folder", metavar="FOLDER", help="one subfolder of images per class")
    _add_model_options(sub)
    sub.add_argument("--batch-size", "-b", type=_positive_int, default=32, metavar="N", help="(32)")
    sub.add_argument(
        "--workers",
        "-j",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="image-decoding worker processes (0: none)",
    )
    sub.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help="at most N images, taken round-robin over the classes",
    )
    sub.add_argument("--json", action="store_true", help="print the result as JSON")
    sub.add_argument("--json-out", metavar="FILE", help="also write the result as JSON to FILE")
    sub.set_defaults(run=_cmd_evaluate)

    sub = commands.add_parser(
        "bench",
        parents=[common],
        help="latency and throughput on this machine",
        description="Time models at each batch size: plain, optimised for inference and"
        " onnxruntime (where available), plus timm's and torchvision's builds of the same"
        " architecture (random weights) when installed, call for call in the same loop. Prints"
        " a Markdown table: median/p90 ms, images/s, GFLOP/s against the measured fp32 matmul"
        " peak, and mnaszoo/reference latency ratios.",
    )
    sub.add_argument(
        "models", nargs="*", metavar="MODEL", help="names or shell patterns (default: all)"
    )
    sub.add_argument(
        "--batch-sizes",
        type=_positive_int,
        nargs="+",
        default=[1, 32],
        metavar="N",
        help="(1 32)",
    )
    sub.add_argument("--image-size", type=_positive_int, default=224, metavar="N", help="(224)")
    sub.add_argument("--repeats", type=_positive_int, default=20, metavar="N", help="(20)")
    sub.add_argument("--warmup", type=_non_negative_int, default=3, metavar="N", help="(3)")
    sub.add_argument(
        "--variants",
        default="plain,optimized,onnxruntime,onnxruntime-int8",
        metavar="LIST",
        help="comma-separated (plain,optimized,onnxruntime,onnxruntime-int8)",
    )
    sub.add_argument(
        "--no-reference", action="store_true", help="skip the timm/torchvision comparison"
    )
    sub.add_argument(
        "--threads", type=_positive_int, metavar="N", help="intra-op threads (default: torch's)"
    )
    sub.add_argument(
        "--peak-size",
        type=_positive_int,
        default=2048,
        metavar="N",
        help="side of the fp32 matmul that measures the peak (2048)",
    )
    sub.add_argument("--json", action="store_true", help="print JSON instead of the table")
    sub.add_argument("--json-out", metavar="FILE", help="also write the JSON to FILE")
    sub.add_argument(
        "--plot", metavar="FILE", help="save a top-1 vs latency plot (needs matplotlib)"
    )
    sub.set_defaults(run=_cmd_bench)

    sub = commands.add_parser(
        "search",
        parents=[common],
        help="platform-aware architecture search on handwritten digits",
        description="Search MnasNet's factorised space for networks that are accurate on a"
        " short digits proxy task (scikit-learn, no download) and fast on this machine (a"
        " measured per-layer latency table at --image-size). Writes state.json (rerun the same"
        " command to continue), trials.jsonl, best_spec.json, summary.json and pareto.png (with"
        " matplotlib) into OUTPUT. With --compare, runs each strategy for each of --seeds with"
        " equal budgets and writes comparison.md/json.",
    )
    sub.add_argument("output", metavar="OUTPUT", help="output folder")
    sub.add_argument(
        "--strategy",
        choices=("controller", "ppo", "random"),
        default="controller",
        help="controller: REINFORCE LSTM as in the paper; ppo; random (controller)",
    )
    sub.add_argument("--budget", type=_positive_int, default=30, metavar="N", help="trials (30)")
    sub.add_argument(
        "--seed",
        "--seeds",
        dest="seeds",
        type=_non_negative_int,
        nargs="+",
        default=[0],
        metavar="N",
        help="search seed; several with --compare (0)",
    )
    sub.add_argument(
        "--target-ms",
        type=_positive_float,
        metavar="MS",
        help="latency target T (default: the predicted latency of the space's MobileNetV2"
        " skeleton on this machine)",
    )
    sub.add_argument("--reward", choices=("soft", "hard"), default="soft", help="(soft)")
    sub.add_argument(
        "--latency-backend",
        choices=("torch", "torch-optimized", "onnxruntime"),
        default="torch",
        help="what latency is measured with (torch)",
    )
    sub.add_argument(
        "--image-size",
        type=_positive_int,
        default=224,
        metavar="N",
        help="resolution latency is measured at (224)",
    )
    sub.add_argument(
        "--proxy-size",
        type=_positive_int,
        default=16,
        metavar="N",
        help="digits resolution for proxy training, >= 16 (16)",
    )
    sub.add_argument(
        "--proxy-epochs", type=_positive_int, default=2, metavar="N", help="epochs per trial (2)"
    )
    sub.add_argument(
        "--train-limit",
        type=_non_negative_int,
        default=800,
        metavar="N",
        help="proxy training images, 0 for all 1,347 (800)",
    )
    sub.add_argument(
        "--threads", type=_positive_int, default=1, metavar="N", help="CPU threads (1)"
    )
    sub.add_argument(
        "--table",
        metavar="FILE",
        help="latency table shared between runs (default: OUTPUT/latency_table.json)",
    )
    sub.add_argument(
        "--calibrate",
        type=_non_negative_int,
        default=8,
        metavar="N",
        help="networks timed end to end to calibrate a new latency table, 0: none (8)",
    )
    sub.add_argument(
        "--validate-latency",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="afterwards, time N held-out networks and report the table's Spearman/MAPE (0)",
    )
    sub.add_argument(
        "--compare", action="store_true", help="compare --strategies over --seeds instead"
    )
    sub.add_argument(
        "--strategies",
        nargs="+",
        choices=("controller", "ppo", "random"),
        metavar="NAME",
        help="strategies for --compare (controller random)",
    )
    sub.add_argument("--no-progress", action="store_true", help="no progress line")
    sub.set_defaults(run=_cmd_search, subparser=sub)
    return parser


# ----------------------------------------------------------------------------- main


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        text = f"{PROG}: {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


@contextlib.contextmanager
def _logging(level: int, progress: bool) -> Iterator[None]:
    logger = logging.getLogger("mnaszoo")
    # huggingface_hub logs every retry of an unreachable Hub as a warning; mnaszoo's own lines
    # ("Downloading ...", the final one-line error) say what matters, so keep hf's for --debug.
    # huggingface_hub sets its level when first imported (from HF_HUB_VERBOSITY), so set both.
    hf_logger = logging.getLogger("huggingface_hub")
    hf_level = hf_logger.level
    if level > logging.DEBUG:
        os.environ.setdefault("HF_HUB_VERBOSITY", "error")
        hf_logger.setLevel(logging.ERROR)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        if progress:
            yield
        else:  # also huggingface_hub's bars (Hub downloads); restored on exit
            bars = importlib.import_module("huggingface_hub.utils.tqdm")
            with bars.disable_progress_bars():
                yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        hf_logger.setLevel(hf_level)


def _download_target(args: argparse.Namespace | None) -> str:
    """What ``mnaszoo download`` should fetch for the failed command."""
    model: str | None = getattr(args, "model", None)
    weights: str | None = getattr(args, "weights", None)
    if weights is not None:
        return weights if "." in weights else f"{model}.{weights}"
    return model or "<model>"


def _error_line(error: BaseException, args: argparse.Namespace | None) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    # The library's advice, in command-line terms.
    line = re.sub(
        r"these weights fit '(\w+)': create that model",
        r"these weights fit '\1': pass --model \1",
        line,
    )
    if isinstance(error, (WeightsNotCachedError, DownloadError)):
        target = _download_target(args)
        line = line.replace("`mnaszoo download <model>`", f"`mnaszoo download {target}`")
        line = line.replace(" (or `mnaszoo.create(name, pretrained=True)`)", "")
        line = line.replace("cache_dir= / ", "--cache-dir / ")
        line = line.replace("pass checkpoint= a local file", "pass --checkpoint a local file")
        if "--checkpoint" not in line:
            line += " Or pass --checkpoint a local weights file."
        if "mnaszoo download" not in line:
            line += (
                f" To fill the cache, run `mnaszoo download {target}` on a machine with network"
                " access and copy the cache here."
            )
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mnaszoo`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) and usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    debug = bool(getattr(args, "debug", False))
    quiet = bool(getattr(args, "quiet", False))
    args.debug, args.quiet = debug, quiet
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    try:
        with _logging(level, progress=not quiet):
            return int(args.run(args))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    except BrokenPipeError:
        # The reader went away (`mnaszoo list | head`): stop quietly.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (MnaszooError, OSError, KeyboardInterrupt) as error:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {_error_line(error, args)}", file=sys.stderr)
        return 1
