"""Timing helpers shared by the benchmark and the search's latency measurements."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence

import torch

__all__ = ["intra_op_threads", "percentile", "time_calls"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linearly interpolated (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@contextlib.contextmanager
def intra_op_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` intra-op threads (``None``: unchanged); yields the count."""
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def time_calls(call: Callable[[], object], *, warmup: int, repeats: int, cuda: bool) -> list[float]:
    """Seconds per call of ``call``, ``repeats`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    for _ in range(repeats):
        if cuda:
            # Kernels run asynchronously: without a barrier on both sides the clock would time
            # the launch, not the work.
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times
