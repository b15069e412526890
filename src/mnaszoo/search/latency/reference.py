"""The yardstick every timing batch of an in-context table carries.

A VM's speed drifts by 5-8% over minutes even when it is idle (its neighbours share the host's
caches and memory bandwidth), and a table is measured in many batches: the calibration networks
in one, the layers of later networks in others. So every batch also times a fixed *reference
network* (the search space's MobileNetV2 skeleton at the table's resolution, on the table's
backend), and its timings are rescaled by how much slower or faster that network ran than in the
table's first batch.

The yardstick has to be steadier than the drift it corrects. One small block's median moved by a
few percent from batch to batch on an idle machine, and rescaling by it added that much noise to
every timing; a whole network takes long enough per call to be steady, and it runs
:data:`REFERENCE_COPIES` times spread through the batch, its figure being the median of those.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from .steady import SteadyTiming

__all__ = ["REFERENCE_COPIES", "interleave_reference", "reference_plan", "rescale"]

Call = Callable[[], object]

REFERENCE_COPIES = 5
"""Times the reference network runs in one batch, spread evenly through it."""


def reference_plan() -> Any:
    """The reference network: the default search space's MobileNetV2 skeleton."""
    from ...models.plan import resolve_plan
    from ..space import SearchSpace

    space = SearchSpace()
    return resolve_plan(space.to_spec(space.base_tokens(), name="reference"))


def interleave_reference(
    calls: Sequence[Call], names: Sequence[str], reference: Call
) -> tuple[list[Call], list[str], list[int]]:
    """``calls`` with :data:`REFERENCE_COPIES` copies of ``reference`` spread through them.

    Returns:
        The calls, their names and the positions of the reference's copies.
    """
    merged: list[Call] = []
    labels: list[str] = []
    positions: list[int] = []
    cuts = [round(k * len(calls) / REFERENCE_COPIES) for k in range(REFERENCE_COPIES)]
    for start, end in zip(cuts, [*cuts[1:], len(calls)], strict=True):
        positions.append(len(merged))
        merged.append(reference)
        labels.append("reference network")
        merged.extend(calls[start:end])
        labels.extend(names[start:end])
    return merged, labels, positions


def rescale(
    timings: Sequence[SteadyTiming], positions: Sequence[int], reference_ms: float | None
) -> tuple[list[SteadyTiming], float, float]:
    """The batch's own timings in the units of a batch whose reference ran ``reference_ms``.

    Returns:
        The other timings (rescaled), the reference's median in this batch, and the factor
        applied (``reference_ms`` over it; 1 when ``reference_ms`` is ``None``: the first batch).
    """
    measured = statistics.median(timings[i].ms for i in positions)
    factor = 1.0 if reference_ms is None else reference_ms / measured
    taken = set(positions)
    scaled = [t.scaled(factor) for i, t in enumerate(timings) if i not in taken]
    return scaled, measured, factor
