"""Text and JSON output shared by the commands: tables and weights records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._io import write_text_atomic
from ..errors import MnaszooError
from ..weights.manifest import HubSource, UrlSource, WeightsRecord


def verified_by(record: WeightsRecord) -> str:
    if record.sha256 is not None:
        return f"sha256 {record.sha256}"
    if record.sha256_prefix is not None:
        return f"sha256 prefix {record.sha256_prefix} (from the file name, as torch.hub checks)"
    return "the Git-LFS sha256 the Hub reports for the pinned commit"


def source_text(record: WeightsRecord) -> str:
    source = record.source
    if isinstance(source, HubSource):  # the full pinned commit
        return f"https://huggingface.co/{source.repo_id}/blob/{source.revision}/{source.filename}"
    return str(source)


def preprocessing_text(record: WeightsRecord) -> str:
    p = record.preprocessing
    return (
        f"resize {p.resize} {p.interpolation}, crop {p.input_size}, mean {list(p.mean)},"
        f" std {list(p.std)}"
    )


def record_dict(record: WeightsRecord, default: bool) -> dict[str, Any]:
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
        "verified_by": verified_by(record),
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


def metric(record: WeightsRecord) -> tuple[float | None, float | None]:
    metric = next((m for m in record.metrics if m.dataset == "imagenet-1k-val"), None)
    return (None, None) if metric is None else (metric.top1, metric.top5)


def table(rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(row, widths, right, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def print_json(data: object) -> None:
    # Strict JSON: NaN or Infinity would be rejected by other parsers, so fail loudly instead.
    print(json.dumps(data, indent=2, allow_nan=False))


def write_output(path: Path, text: str) -> None:
    """Write a result file atomically; a failure is a one-line mnaszoo error (the result was
    already printed)."""
    try:
        write_text_atomic(path, text)
    except OSError as error:
        raise MnaszooError(
            f"Cannot write {path} ({error}); the result above was not saved there."
        ) from error
