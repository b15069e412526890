"""The training state file: everything a run needs to continue exactly where it stopped.

``OUT/checkpoints/last.pt`` holds the model, the EMA weights, the optimizer, the step counter
(the schedule is a function of it), every random state (Python, numpy, torch, CUDA, and the
run's own augmentation and data-order generators), the epoch, the history and the best score.
It is written with :func:`torch.save` to a temporary file beside it, synced to disk and
renamed over the old one: a process killed at any moment leaves the previous complete state,
and a full disk leaves it untouched. It loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..._io import atomic_path
from ...errors import CacheNotWritableError, CorruptCheckpointError

__all__ = ["STATE_FORMAT", "load_state", "random_state", "save_state", "set_random_state"]

STATE_FORMAT = 1


def random_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Every random state a step draws from, as types ``weights_only`` loading accepts."""
    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    python = random.getstate()
    return {
        "python": [python[0], list(python[1]), python[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {name: g.get_state() for name, g in generators.items()},
    }


def set_random_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Restore what :func:`random_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for key, generator in generators.items():
        generator.set_state(state["generators"][key])


def save_state(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` atomically (temporary file, fsync, rename).

    Raises:
        CacheNotWritableError: the file cannot be written (a full disk, permissions); the
            previous state file is left as it was.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temp, open(temp, "wb") as handle:
            torch.save({"format": STATE_FORMAT, **state}, handle)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise CacheNotWritableError(
            f"Cannot write the training state {path} ({error}); the previous state there is"
            " unchanged. Free space (or choose another output folder) and resume."
        ) from error


def load_state(path: Path) -> dict[str, Any]:
    """Read a state written by :func:`save_state`.

    Raises:
        CorruptCheckpointError: the file cannot be read or was not written by ``mnaszoo train``.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, bad pickle, ...: all mean the same here
        raise CorruptCheckpointError(
            f"Cannot read the training state {path} ({type(error).__name__}: {error}); start"
            " again without --resume (with --overwrite)."
        ) from error
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CorruptCheckpointError(
            f"{path} is not a training state written by mnaszoo train (format"
            f" {STATE_FORMAT}); start again without --resume (with --overwrite)."
        )
    return state
