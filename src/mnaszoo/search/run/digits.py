"""A complete platform-aware search on the digits proxy task, and strategy comparisons.

:func:`search_digits` wires the pieces of :mod:`mnaszoo.search` together the way the MnasNet
paper does on a laptop scale: architectures from the default
:class:`~mnaszoo.search.space.SearchSpace`, latency predicted by a per-layer
:class:`~mnaszoo.search.latency.layer_table.LatencyTable` measured on this machine (calibrated
against a
few end-to-end measurements), accuracy from a short training run on scikit-learn's handwritten
digits (:class:`~mnaszoo.search.proxy.trainer.ProxyTrainer`), and the paper's reward. Everything
lands in
one output folder::

    config.json          the experiment's settings (a rerun must use the same ones)
    state.json           the resumable search state: rerunning the same call continues it
    trials.jsonl         one JSON object per trial
    best_spec.json       the best trial's NetworkSpec (load_spec() / mnaszoo.build rebuild it)
    summary.json         space size, budget, best trial, Pareto front, latency table, timings
    pareto.png           accuracy against latency (needs matplotlib: mnaszoo[bench])
    latency_table.json   the latency lookup table, unless ``table_path`` names a shared one

:func:`~mnaszoo.search.run.compare.compare_strategies` runs several strategies for several seeds
with equal budgets, the same latency table, target and proxy task, and tabulates the results
(``comparison.json``, ``comparison.md``).

The proxy trainer's seed is fixed (``proxy_seed``), so a network's proxy accuracy is a function of
the network alone: runs of different strategies and seeds see the same accuracy for the same
network, and networks met again are not retrained (their accuracy is cached).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..._io import read_json
from ...errors import InvalidArgumentError, SearchStateError
from ...models.specs import NetworkSpec
from ..config import SearchConfig
from ..latency.open import open_latency_table, validate_latency
from .launch import launch
from .runner import SearchResult
from .session import DEFAULT_BUDGET, REWARDS

__all__ = [
    "DEFAULT_BUDGET",
    "REWARDS",
    "load_spec",
    "open_latency_table",
    "search_digits",
    "validate_latency",
]


def load_spec(path: str | os.PathLike[str]) -> NetworkSpec:
    """Read a ``best_spec.json`` (:meth:`NetworkSpec.to_dict` data) back into a spec.

    ``mnaszoo.build(load_spec(path), num_classes=10)`` rebuilds the searched network.

    Example:
        >>> import json, tempfile, mnaszoo
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "best_spec.json"
        >>> _ = path.write_text(json.dumps(mnaszoo.MNASNET_A1.to_dict()))
        >>> spec = load_spec(path)
        >>> spec == mnaszoo.MNASNET_A1, mnaszoo.build(spec, num_classes=10).config.num_classes
        (True, 10)

    Raises:
        SearchStateError: the file cannot be read or does not hold a network spec.
    """
    source = Path(os.fspath(path))
    data = read_json(source, "the network spec", hint="")
    try:
        return NetworkSpec.from_dict(data)
    except (TypeError, ValueError) as error:
        raise SearchStateError(f"{source} does not hold a network spec: {error}") from error


def search_digits(
    output: str | os.PathLike[str], config: SearchConfig | None = None, **settings: Any
) -> SearchResult:
    """Search the default space on the digits proxy task; write the results to ``output``.

    Each trial samples an architecture, predicts its latency at ``image_size`` with the latency
    table, trains it briefly on digits at ``proxy_size`` and rewards the pair. Running the same
    call again continues the search (``state.json``) up to ``budget`` trials; with other settings
    it refuses (``config.json``). See the module notes for the files written.

    Args:
        output: the output folder (created).
        config: the search's settings (:class:`~mnaszoo.search.config.SearchConfig`, without a
            data folder); ``None``: the defaults: the controller, 30 trials, latency at 224 px
            predicted by a per-layer table measured here, 2 proxy epochs on 800 digits at 16 px.
        **settings: a shorthand for fields of ``config``
            (:data:`~mnaszoo.search.config.KEYWORDS`): ``strategy``, ``budget``, ``seed``,
            ``target_ms``, ``reward``, ``latency_backend``, ``image_size``, ``proxy_size``,
            ``proxy_epochs``, ``proxy_train_limit`` (``None``: all 1,347 images),
            ``proxy_batch_size``, ``proxy_lr``, ``proxy_seed``, ``threads``, ``table_path`` (a
            table shared between runs, created or extended), ``calibrate``, ``validate``,
            ``progress``, ``workers``, ``ray_address`` and ``predictor``.

    Returns:
        The :class:`~mnaszoo.search.run.runner.SearchResult`, every trial included.

    Raises:
        MnaszooError: scikit-learn is not installed (``pip install 'mnaszoo[examples]'``).
        SearchStateError: ``output`` holds a search with other settings, or more trials than
            ``budget``.
        InvalidArgumentError: an argument is out of range, or ``table_path`` holds a table with
            other settings.

    Example:
        >>> result = search_digits("runs/search", budget=20)  # doctest: +SKIP
        >>> result.best.accuracy, result.best.latency_ms  # doctest: +SKIP
    """
    base = config or SearchConfig()
    if base.data.folder is not None:
        raise InvalidArgumentError(
            "search_digits trains on the digits; search an image folder with search_images."
        )
    result, _ = launch(output, base.replace(**settings))
    return result
