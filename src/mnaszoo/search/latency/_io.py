"""Reading in-context latency tables: those mnaszoo saved, and those a kit's runner measured."""

from __future__ import annotations

from typing import Any

from ..._validate import check_float, check_int
from ...errors import InvalidArgumentError
from .calibration import DEVICE_FORMAT, Calibration, fit_context_calibration
from .steady import ENTRY_STATISTICS, MAX_LATENCY_MS, SteadyTiming, entry_ms, entry_statistic_of


def _entries(data: Any) -> dict[str, SteadyTiming]:
    if not isinstance(data, dict):
        raise InvalidArgumentError("'entries' must be an object of layer key -> timing.")
    return {str(k): SteadyTiming.from_dict(v, f"entry {k!r}") for k, v in data.items()}


def _calibration(data: Any) -> Any:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"'calibration' must be an object, got {type(data).__name__}.")
    fields = ("scale", "per_layer_ms", "offset", "samples", "fit_mape", "max_spread")
    values = {name: data[name] for name in fields}

    def ms(name: str, value: Any) -> float:
        return check_float(name, value, minimum=-MAX_LATENCY_MS, maximum=MAX_LATENCY_MS)

    return Calibration(
        scale=check_float(
            "calibration scale", values["scale"], minimum=0.0, maximum=1e6, min_inclusive=False
        ),
        per_layer_ms=ms("calibration per_layer_ms", values["per_layer_ms"]),
        offset=ms("calibration offset", values["offset"]),
        samples=check_int("calibration samples", values["samples"], minimum=3),
        fit_mape=check_float("calibration fit_mape", values["fit_mape"], minimum=0.0),
        max_spread=check_float("calibration max_spread", values["max_spread"], minimum=0.0),
        form=str(data.get("form", "scale+per_layer")),
        loo_mape=check_float("calibration loo_mape", data.get("loo_mape", 0.0), minimum=0.0),
    )


def table_from_data(cls: Any, data: dict[str, Any]) -> Any:
    """Build a :class:`~mnaszoo.search.latency.context_table.ContextLatencyTable` from saved
    data."""
    if data["version"] != 1:
        raise InvalidArgumentError(f"version {data['version']!r} is not supported (expected 1)")
    if data["format"] == DEVICE_FORMAT:
        return _device_table(cls, data, fit_context_calibration)
    stored = dict(data["fingerprint"])
    settings = dict(data["settings"])
    table = cls(
        backend=stored["backend"],
        image_size=stored["image_size"],
        batch_size=stored["batch_size"],
        num_classes=stored["num_classes"],
        threads=stored["threads"],
        clock=stored["clock"],
        rounds=settings["rounds"],
        per_round=settings["per_round"],
        warmup=settings["warmup"],
        retries=settings["retries"],
        max_spread=settings["max_spread"],
    )
    table.origin = {k: stored[k] for k in ("runtime", "device_cpu", "source")}
    table.frozen = bool(data["frozen"])
    reference = settings.get("reference_ms")
    table.reference_ms = None if reference is None else float(reference)
    table._entries = _entries(data["entries"])
    # Tables saved before the statistic was recorded summed medians.
    statistic = settings.get("entry_statistic", "median")
    if statistic not in ENTRY_STATISTICS:
        raise InvalidArgumentError(
            f"entry_statistic {statistic!r} is not one of {', '.join(ENTRY_STATISTICS)}"
        )
    table.entry_statistic = statistic
    table._calibration = _calibration(data["calibration"])
    _trust_fields(table, data)
    return table


def _trust_fields(table: Any, data: dict[str, Any]) -> None:
    """The calibration's coverage and the measuring conditions (absent in older tables)."""
    from .trust import Coverage

    coverage = data.get("coverage")
    table.coverage = None if coverage is None else Coverage.from_dict(coverage)
    conditions = data.get("conditions") or {}
    if not isinstance(conditions, dict):
        raise ValueError("'conditions' must be an object")
    table.conditions = {str(k): float(v) for k, v in conditions.items()}


def _device_table(cls: Any, data: dict[str, Any], fit: Any) -> Any:
    """A table measured by a kit's runner: frozen, calibrated from its calibration networks."""
    kit = dict(data["kit"])
    table = cls(
        backend=str(data["runtime"]),
        image_size=kit["image_size"],
        batch_size=kit["batch_size"],
        num_classes=kit["num_classes"],
        threads=data["threads"],
        clock=data["clock"],
        max_spread=data["max_spread"],
    )
    table.origin = {
        "runtime": f"{data['runtime']} {data['runtime_version']}",
        "device_cpu": data["device_cpu"],
        "source": f"latency kit {kit['id']} measured on {data['system']}",
    }
    table.frozen = True
    table._entries = _entries(data["entries"])
    table.entry_statistic = entry_statistic_of(table._entries.values())  # older runners: median
    networks = data["calibration"]
    if not isinstance(networks, dict) or not networks:
        raise InvalidArgumentError("the table holds no calibration networks")
    totals: list[float] = []
    counts: list[int] = []
    timings: list[SteadyTiming] = []
    for name, item in networks.items():
        keys = [str(k) for k in item["keys"]]
        missing = [k for k in keys if k not in table._entries]
        if missing:
            raise InvalidArgumentError(
                f"calibration network {name!r} uses unmeasured {missing[0]!r}"
            )
        totals.append(sum(entry_ms(table._entries[k], table.entry_statistic) for k in keys))
        counts.append(len(keys))
        timings.append(SteadyTiming.from_dict(item, f"calibration network {name!r}"))
    table._calibration = fit(totals, counts, timings, max_spread=table.max_spread)
    from .trust import Coverage

    # The kit's calibration networks are known by their layers only: no widths or MACs.
    table.coverage = Coverage.from_networks(counts, totals)
    _trust_fields(table, {"conditions": data.get("conditions")})  # the reference's drift
    return table
