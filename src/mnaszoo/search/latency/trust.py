"""When a latency prediction cannot be trusted: each case noticed and named, never silent.

Three things make a table's prediction unreliable, and each has its own warning category (all
subclasses of :class:`LatencyTrustWarning`, so ``warnings.simplefilter("error",
LatencyTrustWarning)`` turns every one into a refusal):

- :class:`MeasuredUnderLoadWarning`: the entries were timed while other processes competed for
  the CPU. The in-context table times a fixed reference network in every batch; when its timing
  drifts by more than :data:`LOAD_DRIFT` from its first timing, or the load average exceeds the
  CPU count while measuring, the table records it (``conditions``) and says so now and whenever
  it is loaded again.
- :class:`ForeignTableWarning`: the table was measured on another CPU, another runtime version
  or another thread count than it is used with here. (A device table from a latency kit is
  meant to describe another CPU; for it only the thread count is compared.)
- :class:`OutOfRangeWarning`: the network lies outside what the calibration networks covered
  (width multiplier, depth, layers, multiply-accumulates, summed entries): the calibration is
  extrapolated.

:meth:`ContextLatencyTable.predict_checked
<mnaszoo.search.latency.context_table.ContextLatencyTable.predict_checked>` returns the same
findings as fields of a :class:`LatencyPrediction` instead of warnings.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ...models.plan import NetworkPlan

__all__ = [
    "LOAD_DRIFT",
    "Coverage",
    "ForeignTableWarning",
    "LatencyPrediction",
    "LatencyTrustWarning",
    "MeasuredUnderLoadWarning",
    "OutOfRangeWarning",
    "load_issues",
    "machine_issues",
    "warn_issues",
]

LOAD_DRIFT = 0.15
"""Largest accepted relative drift of the reference network's timing during one table's
measurements before they count as taken under load."""

MARGIN = 0.05
"""Relative slack around the calibration networks' range before a network counts as outside."""


class LatencyTrustWarning(UserWarning):
    """A latency prediction that should not be trusted as it stands (base category)."""


class MeasuredUnderLoadWarning(LatencyTrustWarning):
    """The table's timings were taken while the machine was busy."""


class ForeignTableWarning(LatencyTrustWarning):
    """The table describes another CPU, runtime version or thread count than it is used with."""


class OutOfRangeWarning(LatencyTrustWarning):
    """The network lies outside the range the calibration networks covered."""


@dataclass(frozen=True)
class LatencyPrediction:
    """A prediction with what may make it wrong.

    Attributes:
        ms: the predicted milliseconds (calibrated if the table is).
        issues: ``(category name, message)`` pairs; empty when nothing is known to be wrong.
    """

    ms: float
    issues: tuple[tuple[str, str], ...] = ()

    @property
    def trusted(self) -> bool:
        """Whether no issue was found."""
        return not self.issues


def _span(values: Iterable[float]) -> list[float]:
    items = list(values)
    return [min(items), max(items)]


@dataclass(frozen=True)
class Coverage:
    """The range the calibration networks spanned; ``None`` where it is unknown.

    Attributes:
        layers: ``[min, max]`` timed layers per network.
        raw_ms: ``[min, max]`` of their summed entries, milliseconds.
        width_mult: ``[min, max]`` width multiplier.
        blocks: ``[min, max]`` blocks per network.
        macs: ``[min, max]`` multiply-accumulates per network.
    """

    layers: list[float]
    raw_ms: list[float]
    width_mult: list[float] | None = None
    blocks: list[float] | None = None
    macs: list[float] | None = None
    names: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_networks(
        cls,
        layers: Sequence[int],
        raw_ms: Sequence[float],
        plans: Sequence[NetworkPlan] | None = None,
        image_size: int = 224,
        num_classes: int = 1000,
    ) -> Coverage:
        """The coverage of calibration networks (their plans when known)."""
        if plans is None:
            return cls(_span(map(float, layers)), _span(raw_ms))
        from ...models.counting import count_macs

        return cls(
            _span(map(float, layers)),
            _span(raw_ms),
            _span(p.width_mult for p in plans),
            _span(float(len(p.blocks)) for p in plans),
            _span(float(count_macs(p, image_size, num_classes=num_classes)) for p in plans),
        )

    def outside(
        self,
        layers: int,
        raw_ms: float,
        plan: NetworkPlan | None = None,
        image_size: int = 224,
        num_classes: int = 1000,
    ) -> list[str]:
        """What of a network lies outside this coverage (empty when nothing does)."""
        found: list[str] = []

        def check(name: str, value: float, span: list[float] | None, margin: float) -> None:
            if span is None:
                return
            low, high = span[0] * (1 - margin), span[1] * (1 + margin)
            if not low <= value <= high:
                found.append(
                    f"{name} {value:.4g} is outside the calibration networks'"
                    f" {span[0]:.4g}..{span[1]:.4g}"
                )

        check("layer count", layers, self.layers, 0.0)
        check("summed entries (ms)", raw_ms, self.raw_ms, MARGIN)
        if plan is not None:
            from ...models.counting import count_macs

            check("width multiplier", plan.width_mult, self.width_mult, 0.0)
            check("block count", len(plan.blocks), self.blocks, 0.0)
            macs = count_macs(plan, image_size, num_classes=num_classes)
            check("multiply-accumulates", macs, self.macs, MARGIN)
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        data = asdict(self)
        data.pop("names")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Coverage:
        """Read :meth:`to_dict`'s data (``KeyError``/``TypeError``/``ValueError`` if damaged)."""

        def span(name: str, required: bool = False) -> list[float] | None:
            value = data.get(name)
            if value is None and not required:
                return None
            if value is None:
                raise ValueError(f"coverage {name} is missing")
            pair = [float(x) for x in value]
            if len(pair) != 2 or not all(math.isfinite(x) for x in pair) or pair[0] > pair[1]:
                raise ValueError(f"coverage {name} must be [min, max], got {value!r}")
            return pair

        layers, raw = span("layers", True), span("raw_ms", True)
        if layers is None or raw is None:
            raise ValueError("coverage needs layers and raw_ms")
        return cls(layers, raw, span("width_mult"), span("blocks"), span("macs"))


def load_issues(conditions: Mapping[str, Any]) -> list[str]:
    """Why measurements taken under ``conditions`` (a table's record) were under load."""
    found: list[str] = []
    drift = float(conditions.get("max_reference_drift", 0.0))
    if drift > LOAD_DRIFT:
        found.append(
            f"the reference network's timing drifted by {drift:.0%} while the table was measured"
            f" (more than {LOAD_DRIFT:.0%}): other processes were competing for the CPU"
        )
    load = float(conditions.get("max_load_per_cpu", 0.0))
    if load > 1.0:
        found.append(
            f"the load average reached {load:.1f} per CPU core while the table was measured"
        )
    return found


def load_per_cpu() -> float:
    """The 1-minute load average per CPU core (0 where the OS does not report one)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return 0.0


def machine_issues(
    origin: Mapping[str, Any],
    here: Mapping[str, Any],
    *,
    threads: int | None = None,
    wanted_threads: int | None = None,
    device_table: bool = False,
) -> list[str]:
    """How the machine a table was measured on differs from this one.

    Args:
        origin: the table's ``{"device_cpu": ..., "runtime": ...}``.
        here: the same for this machine and the table's backend.
        threads: the table's thread count.
        wanted_threads: the thread count it is used with.
        device_table: a kit's table (it describes another CPU on purpose: only threads count).
    """
    found: list[str] = []
    if not device_table:
        for name, label in (("device_cpu", "CPU"), ("runtime", "runtime")):
            if str(origin.get(name)) != str(here.get(name)):
                found.append(
                    f"the table was measured with {label} {origin.get(name)!r}, this machine has"
                    f" {here.get(name)!r}"
                )
    if threads is not None and wanted_threads is not None and threads != wanted_threads:
        found.append(f"the table was measured with {threads} threads, used with {wanted_threads}")
    return found


def warn_issues(issues: Iterable[str], category: type[LatencyTrustWarning], where: str) -> None:
    """Issue one ``category`` warning per finding, naming ``where`` (a table file or network)."""
    for issue in issues:
        warnings.warn(f"{where}: {issue}", category, stacklevel=3)


# -- the table's side (kept here so that the table module stays small) -----------------------


def note_conditions(table: Any, factor: float) -> None:
    """Record one batch's reference drift and the load now; warn when they cross the limits."""
    before = load_issues(table.conditions)
    conditions = table.conditions
    conditions["max_reference_drift"] = max(
        float(conditions.get("max_reference_drift", 0.0)), abs(1.0 / factor - 1.0)
    )
    conditions["max_load_per_cpu"] = max(
        float(conditions.get("max_load_per_cpu", 0.0)), load_per_cpu()
    )
    after = load_issues(conditions)
    warn_issues(after[len(before) :] if len(after) > len(before) else [], MeasuredUnderLoadWarning,
                "latency table")  # fmt: skip


def here(table: Any) -> dict[str, str]:
    """This machine's CPU and the table's runtime version here."""
    from .calibration import device_cpu, runtime_version

    return {"device_cpu": device_cpu(), "runtime": runtime_version(table.backend)}


def table_issues(table: Any, wanted_threads: int | None = None) -> list[tuple[str, str]]:
    """Everything known to be wrong with ``table`` as a whole, as ``(category, message)``."""
    found = [(MeasuredUnderLoadWarning.__name__, m) for m in load_issues(table.conditions)]
    foreign = machine_issues(
        table.origin,
        here(table),
        threads=table.threads,
        wanted_threads=wanted_threads,
        device_table=table.frozen,
    )
    found += [(ForeignTableWarning.__name__, m) for m in foreign]
    return found


def check_loaded(table: Any, source: object, wanted_threads: int | None = None) -> None:
    """Warn about a loaded table measured under load or on another machine."""
    categories = {c.__name__: c for c in (MeasuredUnderLoadWarning, ForeignTableWarning)}
    for name, message in table_issues(table, wanted_threads):
        warn_issues([message], categories[name], f"latency table {source}")


def range_issues(table: Any, plan: NetworkPlan, raw: float, layers: int) -> list[str]:
    """What of ``plan`` lies outside the table's calibration networks (none: not calibrated)."""
    if table.coverage is None or table.calibration is None:
        return []
    return list(table.coverage.outside(layers, raw, plan, table.image_size, table.num_classes))


def predict_checked(table: Any, spec: Any) -> LatencyPrediction:
    """The table's prediction with every issue of the table and of the network."""
    from .timing import as_plan

    plan = as_plan(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatencyTrustWarning)
        ms = table.predict(plan)
        raw = table.predict_raw(plan)
    issues = table_issues(table)
    outside = range_issues(table, plan, raw, len(table.layers(plan)))
    issues += [(OutOfRangeWarning.__name__, m) for m in outside]
    return LatencyPrediction(ms, tuple(issues))


def warn_outside(table: Any, plan: NetworkPlan, raw: float) -> int:
    """Warn when ``plan`` lies outside the calibration's coverage; return its layer count."""
    layers = len(table.layers(plan))
    outside = range_issues(table, plan, raw, layers)
    warn_issues(outside, OutOfRangeWarning, f"network {plan.spec.name!r}")
    return layers


def table_fields(table: Any) -> dict[str, Any]:
    """What a saved table keeps of this module: the coverage and the measuring conditions."""
    coverage = None if table.coverage is None else table.coverage.to_dict()
    return {"coverage": coverage, "conditions": dict(table.conditions)}
