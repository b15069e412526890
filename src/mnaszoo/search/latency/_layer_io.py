"""Reading a per-layer latency table back, checked field by field and against this machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..._io import read_json
from ..._validate import check_bool, check_float, check_int
from ...errors import SearchStateError
from .calibration import Calibration
from .steady import MAX_LATENCY_MS

__all__ = ["Calibration", "read_layer_table"]

TABLE_FORMAT = "mnaszoo-latency-table"
TABLE_VERSION = 1


def read_layer_table(cls: Any, path: str | os.PathLike[str], *, force: bool, timer: Any) -> Any:
    """What :meth:`~mnaszoo.search.latency.layer_table.LatencyTable.load` returns."""
    source = Path(os.fspath(path))
    check_bool("force", force)
    data = read_json(source, "the latency table")
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
        raise SearchStateError(
            f"{source} is not a mnaszoo latency table (no format {TABLE_FORMAT!r})."
        )
    if data.get("version") != TABLE_VERSION:
        raise SearchStateError(
            f"{source} has latency-table version {data.get('version')!r}; this mnaszoo reads"
            f" version {TABLE_VERSION}. Rebuild the table."
        )
    try:
        stored = dict(data["fingerprint"])
        settings = dict(data["settings"])
        table = cls(
            backend=stored["backend"],
            device=stored["device"],
            image_size=stored["image_size"],
            batch_size=stored["batch_size"],
            threads=stored["threads"],
            num_classes=settings["num_classes"],
            warmup=settings["warmup"],
            repeats=settings["repeats"],
            timer=timer,
        )
        entries = {
            str(k): check_float(f"entry {k!r}", v, minimum=0.0, maximum=MAX_LATENCY_MS)
            for k, v in dict(data["entries"]).items()
        }
        calibration = data.get("calibration")
        if calibration is not None:
            calibration = Calibration(
                form=str(calibration.get("form", "scale+offset")),
                scale=check_float(
                    "calibration scale", calibration["scale"], minimum=0.0, maximum=1e6
                ),
                offset=check_float(
                    "calibration offset",
                    calibration["offset"],
                    minimum=-MAX_LATENCY_MS,
                    maximum=MAX_LATENCY_MS,
                ),
                samples=check_int("calibration samples", calibration["samples"], minimum=2),
            )
    except (KeyError, TypeError, ValueError) as error:
        raise SearchStateError(f"Latency table {source} is corrupt: {error}") from error
    current = table.fingerprint
    differ = sorted(k for k in set(current) | set(stored) if current.get(k) != stored.get(k))
    if differ and not force:
        details = "; ".join(f"{k}: file {stored.get(k)!r}, here {current.get(k)!r}" for k in differ)
        raise SearchStateError(
            f"Latency table {source} was measured elsewhere ({details}). Its entries would"
            " mispredict this machine: build a new table here, or pass force=True to use it"
            " anyway."
        )
    table._entries = entries
    table._calibration = calibration
    return table
