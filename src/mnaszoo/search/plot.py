"""Plots of a search: every trial's accuracy against its latency, with the Pareto front."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from .._validate import check_float
from ..errors import ArgumentTypeError, MnaszooError, SearchStateError
from .run.runner import SearchResult

__all__ = ["plot_pareto"]


def _pyplot() -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError as error:
        raise MnaszooError(
            "Plotting a search needs matplotlib: pip install 'mnaszoo[bench]'."
        ) from error
    matplotlib.use("Agg")  # files only: no display needed
    return importlib.import_module("matplotlib.pyplot")


def plot_pareto(
    result: SearchResult,
    path: str | os.PathLike[str],
    target_ms: float | None = None,
) -> Path:
    """Save a scatter plot of accuracy against latency for every trial of a search.

    Trials are coloured by their index (early to late), the accuracy/latency Pareto front
    (:meth:`~mnaszoo.search.run.runner.SearchResult.pareto_front`) is drawn as a red staircase, the
    best-reward trial is starred and the latency target is a dashed vertical line.

    Args:
        result: a finished (or partial) search.
        path: the image file to write (PNG, SVG or PDF, by its suffix).
        target_ms: the latency target to draw (default: the search reward's target).

    Returns:
        The path written.

    Raises:
        MnaszooError: matplotlib is not installed (``pip install 'mnaszoo[bench]'``).
        SearchStateError: the result has no trials.
        ArgumentTypeError: ``result`` is not a :class:`~mnaszoo.search.run.runner.SearchResult`.
    """
    if not isinstance(result, SearchResult):
        raise ArgumentTypeError(f"result must be a SearchResult, got {type(result).__name__}.")
    if not result.trials:
        raise SearchStateError("The search has no trials to plot.")
    target = result.reward.target_ms if target_ms is None else target_ms
    target = check_float("target_ms", target, minimum=0.0, min_inclusive=False)
    plt = _pyplot()
    trials = result.trials
    front = result.pareto_front()
    best = result.best
    fig, ax = plt.subplots(figsize=(7, 5))
    try:
        points = ax.scatter(
            [t.latency_ms for t in trials],
            [100 * t.accuracy for t in trials],
            c=[t.index for t in trials],
            cmap="viridis",
            s=22,
            alpha=0.8,
            label="trials",
        )
        fig.colorbar(points, ax=ax, label="trial")
        ax.step(
            [t.latency_ms for t in front],
            [100 * t.accuracy for t in front],
            where="post",
            color="tab:red",
            marker="o",
            markerfacecolor="none",
            markersize=8,
            label=f"Pareto front ({len(front)})",
        )
        ax.scatter(
            [best.latency_ms],
            [100 * best.accuracy],
            marker="*",
            s=220,
            color="gold",
            edgecolors="black",
            zorder=5,
            label=f"best reward (trial {best.index})",
        )
        ax.axvline(
            target, color="black", linestyle="--", linewidth=1, label=f"target {target:g} ms"
        )
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("proxy accuracy (%)")
        ax.set_title(f"Architecture search: {len(trials)} trials")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        fig.tight_layout()
        target_path = Path(os.fspath(path))
        fig.savefig(target_path, dpi=120)
    finally:
        plt.close(fig)
    return target_path
