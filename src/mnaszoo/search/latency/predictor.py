"""The one interface of a latency predictor, which the search uses without knowing which it is.

Two predictors implement it: the per-layer
:class:`~mnaszoo.search.latency.layer_table.LatencyTable` (layers timed in isolation) and the
in-context
:class:`~mnaszoo.search.latency.context_table.ContextLatencyTable` (layers timed as the backend
runs them,
or read from a device's kit). Both predict a network's latency, time a network end to end,
calibrate on a few such timings, save themselves, and say where they were measured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ...models.plan import BlockPlan, NetworkPlan
from ...models.specs import NetworkSpec

__all__ = ["LatencyPredictor", "block_key"]


def block_key(block: BlockPlan, size: int) -> str:
    """The key of a block's entry in either predictor: its resolved configuration at input
    resolution ``size`` (saved tables are keyed by it, so it never changes)."""
    return (
        f"block:{block.kind.value}:k{block.kernel}:s{block.stride}:i{block.in_channels}"
        f":m{block.mid_channels}:o{block.out_channels}:se{block.se_channels}"
        f":r{int(block.residual)}:h{size}"
    )


class LatencyPredictor(Protocol):
    """A latency predictor for the networks of a search.

    Attributes:
        kind: ``"layers"`` or ``"context"``: what
            :func:`~mnaszoo.search.latency.open.open_predictor` and the recorded settings call
            it.
        backend: what it times with (``"torch"``, ``"torch-optimized"``, ``"onnxruntime"``).
        image_size: the input resolution it predicts at.
        threads: intra-op threads of its timings.
        frozen: measured elsewhere (a device's kit): it predicts, but cannot time here.

    Example:
        The per-layer table is one (nothing is timed until a network is predicted):

        >>> from mnaszoo.search.latency.layer_table import LatencyTable
        >>> table: LatencyPredictor = LatencyTable(image_size=32, threads=1)
        >>> table.kind, table.backend, table.image_size, table.frozen, table.calibration
        ('layers', 'torch', 32, False, None)
    """

    kind: str
    backend: str
    image_size: int
    threads: int
    frozen: bool

    @property
    def calibration(self) -> Any:
        """The fitted calibration, or ``None`` (predictions are raw sums)."""
        ...

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What the entries are valid for (runtime, device, settings)."""
        ...

    @property
    def measured_on(self) -> dict[str, str]:
        """``{"device": ..., "runtime": ...}``: where and with what the entries were timed."""
        ...

    def predict(self, spec: NetworkSpec | NetworkPlan) -> float:
        """Predicted milliseconds of one call of the network (timing what it lacks)."""
        ...

    def measure(self, spec: NetworkSpec | NetworkPlan) -> float:
        """Milliseconds of the network timed end to end here."""
        ...

    def fit_calibration(self, specs: Sequence[NetworkSpec | NetworkPlan]) -> Any:
        """Time ``specs`` end to end and fit the predictions to them."""
        ...

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the predictor as JSON, atomically."""
        ...

    def __len__(self) -> int: ...
