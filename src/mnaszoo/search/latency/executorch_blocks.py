"""ExecuTorch programs of single layers and whole networks, as the ``executorch`` backend runs them.

The ``executorch`` latency backend times a network as the ``.pte`` program that
:func:`mnaszoo.export` writes with ``format="executorch"``: BatchNorm folded, ``torch.export`` at
a static shape, every supported operator delegated to XNNPACK, run by ExecuTorch's own runtime
(``executorch.runtime``) with its thread pool set to the table's threads.

The in-context table times each layer (stem, block, head) as its own program lowered the same
way. A lowering costs seconds (``torch.export`` plus XNNPACK's partitioner), so programs are
cached on disk, keyed by the layer's configuration and the torch and ExecuTorch versions:
``$MNASZOO_CACHE/executorch-layers/`` (see :func:`mnaszoo.weights.default_cache_dir`). Weights
do not change the latency of dense float kernels, so the layers are randomly initialised with a
fixed seed.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import MnaszooError
from ...models.plan import NetworkPlan

__all__ = ["executorch_version", "layer_pte", "network_pte", "pte_call"]

Call = Callable[[], object]


def executorch_version() -> str:
    """``"executorch 1.x"``, or ``"executorch not installed"``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"executorch {version('executorch')}"
    except PackageNotFoundError:
        return "executorch not installed"


def _cache_dir() -> Path:
    from ...weights._cache import default_cache_dir

    return default_cache_dir() / "executorch-layers"


def _cached(key: str, build: Callable[[], bytes]) -> bytes:
    """The program for ``key`` from the disk cache, else ``build()`` (then stored atomically)."""
    import torch

    from ..._io import atomic_path

    identity = f"{key}|torch {torch.__version__}|{executorch_version()}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
    path = _cache_dir() / f"{digest}.pte"
    if path.is_file():
        return path.read_bytes()
    data = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temp:
            temp.write_bytes(data)
    except OSError:
        pass  # a read-only cache only costs the next run another lowering
    return data


def _require() -> None:
    from ...deploy.executorch import EDGE_EXTRA, executorch_available

    if not executorch_available():
        raise MnaszooError(f"The executorch latency backend needs ExecuTorch: {EDGE_EXTRA}.")


def layer_pte(layer: Any) -> bytes:
    """One :class:`~mnaszoo.search.latency.context_layers.ContextLayer` as an XNNPACK ``.pte``.

    BatchNorm is folded first (:func:`mnaszoo.optimize_for_inference` without
    ``channels_last``), exactly as :func:`mnaszoo.export` does for the whole network.

    Raises:
        MnaszooError: ExecuTorch is not installed (``pip install "mnaszoo[edge]"``).
    """
    _require()

    def build() -> bytes:
        import torch

        from ...deploy.executorch import _lower
        from ...deploy.optimize import optimize_for_inference
        from .context_layers import layer_module

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = layer_module(layer).eval()
        folded = optimize_for_inference(module, channels_last=False)
        example = torch.zeros(layer.shape)
        with torch.no_grad():
            return _lower(folded, example)

    # The input shape is part of the key: a layer's key need not name it.
    return _cached(f"layer|{layer.key}|{'x'.join(map(str, layer.shape))}", build)


def network_pte(plan: NetworkPlan, image_size: int, num_classes: int, batch_size: int = 1) -> bytes:
    """The whole network as :func:`mnaszoo.export` writes it (``format="executorch"``).

    Raises:
        MnaszooError: ExecuTorch is not installed.
    """
    _require()

    def build() -> bytes:
        import torch

        from ...deploy.executorch import export_executorch
        from ...models.factory import build as build_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(
                plan.spec,
                width_mult=plan.width_mult,
                depth_mult=plan.depth_mult,
                num_classes=num_classes,
            ).eval()
        with tempfile.TemporaryDirectory(prefix="mnaszoo-pte-") as folder:
            path = Path(folder) / "network.pte"
            export_executorch(model, path, input_size=image_size, batch=batch_size)
            return path.read_bytes()

    spec = plan.spec.to_dict()
    spec.pop("name", None)
    key = (
        f"network|{sorted(spec.items())}|w{plan.width_mult}|d{plan.depth_mult}"
        f"|h{image_size}|c{num_classes}|n{batch_size}"
    )
    return _cached(key, build)


def pte_call(data: bytes, shape: tuple[int, ...], threads: int) -> Call:
    """Run a ``.pte`` program's ``forward`` in ExecuTorch's runtime on a fixed random input.

    The runtime's (process-wide) thread pool is resized to ``threads`` first.
    """
    _require()
    import torch
    from executorch.runtime import Runtime

    from ...deploy.executorch import set_executorch_threads

    set_executorch_threads(threads)
    program = Runtime.get().load_program(data)
    method = program.load_method("forward")
    if method is None:
        raise MnaszooError("The ExecuTorch program has no 'forward' method.")
    example = [torch.randn(shape, generator=torch.Generator().manual_seed(0))]

    def run() -> object:
        # ``program`` and ``data`` stay referenced: the method runs out of the program's buffer.
        return method.execute(example) if program is not None and data else None

    return run
