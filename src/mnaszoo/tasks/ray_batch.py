"""Predict over a corpus on a Ray cluster with Ray Data (``pip install 'mnaszoo[distributed]'``).

The job is a Ray Data pipeline: the paths (``index``, ``path``) are read into a dataset; Ray
tasks read, decode and preprocess them (``map_batches`` with a function: this stage scales with
the cluster's CPUs); an actor pool runs the model (``map_batches`` with a callable class: each
actor loads the model once, then scores batch after batch). :func:`predict_dataset` returns that
dataset for callers who chain further steps; ``predict_to_file(..., ray=...)`` and
``mnaszoo predict --ray`` stream it, in corpus order, into the same atomic part files as the
single-machine path.

Ray retries a task whose worker died and restarts a dead actor, whose batch then runs again;
the rows reach the driver in corpus order, where a row seen twice is dropped and a missing one
is an error, so a killed worker loses no row and duplicates none.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._ray import probe_ray_address
from ..errors import InvalidImageError, MnaszooError
from .corpus import Corpus, _Plan
from .parts import Columns

if TYPE_CHECKING:
    from ..data.transforms import ImageTransform
    from .scoring import Scorer

__all__ = ["connect", "predict_dataset", "ray_topk"]


def connect(address: str = "local", *, cpus: int | None = None) -> Any:
    """Start a local Ray cluster (``"local"``) or join one (``"auto"``, ``"HOST:PORT"``); a
    connection this process already has is used as is. Returns the ``ray`` module.

    Raises:
        MnaszooError: Ray is not installed, or the cluster cannot be started or reached.
    """
    if "ray" not in sys.modules and address == "local":
        # As the search does: keep a local cluster on the loopback interface, no usage reports.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray = importlib.import_module("ray")
    except ImportError as error:
        raise MnaszooError(
            "Running on Ray needs Ray, which is not installed: pip install"
            " 'mnaszoo[distributed,batch]'; or leave out --ray/--ray-address."
        ) from error
    try:
        importlib.import_module("ray.data")  # needs pyarrow and pandas beside Ray itself
    except ImportError as error:
        raise MnaszooError(
            f"Ray Data cannot be imported ({error}): pip install 'mnaszoo[distributed,batch]'."
        ) from error
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
    if address == "local":
        options.update(address="local", num_cpus=cpus)
    else:
        _probe(address)
        options["address"] = address
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = "a local Ray cluster" if address == "local" else f"the Ray cluster at {address!r}"
        raise MnaszooError(
            f"Could not start or join {where}: {error}. For a cluster, pass the head's HOST:PORT"
            " as `ray start --head` printed it, or auto on a node of the cluster."
        ) from error
    return ray


def _probe(address: str) -> None:
    probe_ray_address(address, local_option="--ray")


def _decode_batch(batch: dict[str, np.ndarray], transform: ImageTransform) -> dict[str, Any]:
    """Ray task: paths to pixels (zeros and an error message for an image that is unusable)."""
    from .scoring import decode

    size = transform.input_size
    pixels = np.zeros((len(batch["path"]), 3, size, size), dtype=np.float32)
    errors = []
    for row, path in enumerate(batch["path"]):
        tensor, error = decode(str(path), transform)
        if tensor is not None:
            pixels[row] = tensor.numpy()
        errors.append(error or "")
    return {
        "index": batch["index"],
        "path": batch["path"],
        "pixels": pixels,
        "error": np.array(errors, dtype=object),
    }


def _one_cpu() -> dict[str, Any]:
    return {"num_cpus": 1}


class _ModelActor:
    """Ray actor: loads the model once, then turns batches of pixels into result rows."""

    def __init__(self, model: str | nn.Module, options: dict[str, Any]) -> None:
        from .scoring import Scorer

        torch.set_num_threads(1)  # one CPU per actor: the pool size is the parallelism
        self.scorer = Scorer(model, **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        import pyarrow as pa

        from .parts import _schema

        errors = [str(e) or None for e in batch["error"]]
        good = [row for row, error in enumerate(errors) if error is None]
        pixels = torch.from_numpy(np.ascontiguousarray(batch["pixels"][good]))
        columns = self.scorer.rows([str(p) for p in batch["path"]], pixels, errors)
        columns = {"index": [int(i) for i in batch["index"]], **columns}
        return pa.Table.from_pydict(columns, schema=_schema(self.scorer.embeddings))


def _items(plan: _Plan) -> Iterator[dict[str, Any]]:
    for _, start, paths in plan.batches():
        for offset, path in enumerate(paths):
            yield {"index": start + offset, "path": path}


def _dataset(
    ray: Any,
    plan: _Plan,
    model: str | nn.Module,
    scorer: Scorer,
    workers: int,
    batch_size: int,
    options: dict[str, Any],
) -> Any:
    cpus = float(ray.cluster_resources().get("CPU", 0))
    if cpus < workers + 1:
        # Ray Data would wait for ever: the actors hold every CPU and no task can decode.
        raise MnaszooError(
            f"The Ray cluster has {cpus:g} CPUs: {workers} model actors need {workers + 1} (one"
            " each, and one or more for the decoding tasks). Use fewer workers or a larger"
            " cluster."
        )
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in corpus order
    context.enable_progress_bars = False
    items = list(_items(plan))  # the driver holds the paths still to do (not their pixels)
    blocks = max(1, min(len(items), -(-len(items) // batch_size)))
    dataset = ray.data.from_items(items, override_num_blocks=blocks)
    decoded = dataset.map_batches(
        _decode_batch,
        fn_kwargs={"transform": scorer.transform},
        batch_size=batch_size,
        batch_format="numpy",
        # A function for the remote args keeps Ray from fusing this stage into the model actors
        # (which would decode inside the actor pool, one batch at a time): decoding runs as
        # tasks that scale with the cluster's CPUs. A dead worker's task is retried (3 times).
        ray_remote_args_fn=_one_cpu,
    )
    return decoded.map_batches(
        _ModelActor,
        fn_constructor_kwargs={"model": model, "options": options},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),  # restarted if they die
        num_cpus=1,
    )


def predict_dataset(
    sources: Sequence[str | os.PathLike[str]],
    model: str | nn.Module = "mnasnet_a1",
    *,
    address: str = "local",
    workers: int = 1,
    batch_size: int = 32,
    path_column: str = "path",
    **scorer_options: Any,
) -> Any:
    """The predictions of a corpus as a ``ray.data.Dataset`` (lazy: nothing runs until it is
    consumed, e.g. by ``write_parquet``, ``iter_batches`` or ``take``).

    Args:
        sources: as in :func:`mnaszoo.tasks.streaming.predict_batches`.
        model: a registered name (each actor loads it once) or a model (sent to each actor).
        address: ``"local"`` (start a local cluster), ``"auto"`` or ``"HOST:PORT"``.
        workers: model actors.
        batch_size: images per forward pass.
        path_column: the column of image paths in tables.
        **scorer_options: as in :func:`mnaszoo.tasks.streaming.predict_batches`.

    Returns:
        A dataset with the columns ``index``, ``path``, ``labels``, ``indices``, ``scores``,
        ``error`` (and ``embedding``), one row per image, in corpus order.
    """
    from .._validate import check_int
    from .scoring import Scorer

    check_int("workers", workers, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    corpus = Corpus.of(sources, path_column)
    scorer = Scorer(model, **scorer_options)  # checks the options here, not on a worker
    total = sum(1 for _ in corpus.paths())
    plan = _Plan(corpus, total, batch_size, max(total, 1), frozenset())
    ray = connect(address, cpus=workers + 1)
    return _dataset(ray, plan, model, scorer, workers, batch_size, scorer_options)


def ray_part_columns(
    plan: _Plan,
    model: str | nn.Module,
    scorer: Scorer,
    address: str,
    *,
    workers: int,
    batch_size: int,
    on_error: str,
    scorer_options: dict[str, Any],
) -> Iterator[tuple[int, Columns]]:
    """``(part, columns)`` of every batch of ``plan`` run on Ray, split at part boundaries, in
    corpus order, each row exactly once."""
    if plan.total == 0 or all(p in plan.done for p in range(-(-plan.total // plan.part_size))):
        return
    ray = connect(address, cpus=max(1, workers) + 1)
    dataset = _dataset(ray, plan, model, scorer, max(1, workers), batch_size, scorer_options)
    expected = iter(
        index for _, start, paths in plan.batches() for index in range(start, start + len(paths))
    )
    want = next(expected, None)
    for table in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
        columns: Columns = table.to_pydict()
        keep = []
        for row, index in enumerate(columns["index"]):
            if want is not None and index == want:
                keep.append(row)
                want = next(expected, None)
            elif want is None or index > want:
                raise MnaszooError(
                    f"Ray returned image {index} where image {want} was due: a row was lost."
                    " Run again with --resume."
                )
            # else: a row seen before (a retried batch): dropped
        if on_error == "fail":
            failed = next((columns["error"][r] for r in keep if columns["error"][r]), None)
            if failed is not None:
                raise InvalidImageError(failed)
        # Split at part boundaries: each part is written once it is whole.
        by_part: dict[int, list[int]] = {}
        for row in keep:
            by_part.setdefault(columns["index"][row] // plan.part_size, []).append(row)
        for part, rows in by_part.items():
            yield part, {name: [values[r] for r in rows] for name, values in columns.items()}
    if want is not None:
        raise MnaszooError(
            f"Ray returned no row for image {want} and after. Run again with --resume."
        )


def ray_topk(
    paths: Sequence[str],
    model: nn.Module,
    address: str,
    *,
    workers: int,
    batch_size: int,
    topk: int,
    input_size: int | None,
) -> Iterator[tuple[list[int], list[list[int]]]]:
    """``(indices into paths, top-k class indices)`` of every batch of ``paths`` scored on Ray,
    in order, each image once: what :func:`mnaszoo.evaluate` counts when given ``ray=``.

    The first image that cannot be used raises
    :class:`~mnaszoo.errors.InvalidImageError` (evaluate skips nothing silently).
    """
    from .scoring import Scorer

    options: dict[str, Any] = {"topk": topk, "input_size": input_size, "backend": "torch"}
    scorer = Scorer(model, **options)
    # The paths were found by evaluate's folder scan: each is one image source.
    corpus = Corpus(tuple(paths))
    plan = _Plan(corpus, len(paths), batch_size, max(len(paths), 1), frozenset())
    for _, columns in ray_part_columns(
        plan,
        model,
        scorer,
        address,
        workers=workers,
        batch_size=batch_size,
        on_error="fail",
        scorer_options=options,
    ):
        yield [int(i) for i in columns["index"]], [list(map(int, k)) for k in columns["indices"]]
