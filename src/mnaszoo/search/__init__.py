"""Platform-aware architecture search over the MnasNet space, on your device and your data.

MnasNet's idea (Tan et al., CVPR 2019): search a factorised hierarchical space with a controller
rewarded by accuracy *and* latency measured on the target device, ``ACC x (LAT / T) ** w``.

The face of the package is one configuration and three ways to run it:
:class:`SearchConfig` (five frozen dataclasses: :class:`DataConfig`, :class:`ProxyConfig`,
:class:`LatencyConfig`, :class:`ControllerConfig`, :class:`ExecutionConfig`, which ``mnaszoo
search``'s flags map onto one to one), :func:`search_images` (your image folder),
:func:`search_digits` (the digits demo) and :func:`compare_strategies`; then
:func:`finalize_search` trains the best architectures into ``save_pretrained`` folders. Behind
it, four sub-packages with one job each:

- :mod:`.latency`: predict a network's latency. One interface, :class:`LatencyPredictor`, that
  the per-layer table (:mod:`.latency.layer_table`) and the in-context table
  (:mod:`.latency.context_table`) implement; timing (:mod:`.latency.timing`,
  :mod:`.latency.steady`), calibration, validation and the device kit (:mod:`.latency.kit`).
- :mod:`.proxy`: score a network's accuracy by short training (:mod:`.proxy.trainer`) on the
  digits or your images (:mod:`.proxy.image_data`), with one learning-rate schedule
  (:mod:`.proxy.schedule`); :mod:`.proxy.finalize` trains the winners fully.
- :mod:`.strategies`: choose the next network (REINFORCE and PPO controllers, random search).
- :mod:`.run`: the resumable search loop (:mod:`.run.runner`), trials in-process or on Ray
  (:mod:`.run.trials`, :mod:`.run.distributed`), and the one path from a config to a search
  (:mod:`.run.launch`).

:class:`SearchSpace` (:mod:`.space`), :mod:`.reward` and :mod:`.choices` stay at the top: every
room uses them.

``import mnaszoo`` does not import this package; ``import mnaszoo.search`` does (and torch).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from .config import (
    ControllerConfig,
    DataConfig,
    ExecutionConfig,
    LatencyConfig,
    ProxyConfig,
    SearchConfig,
)
from .latency.predictor import LatencyPredictor
from .proxy.finalize import finalize_search
from .run.compare import compare_strategies
from .run.digits import load_spec, search_digits
from .run.images import search_images
from .run.runner import SearchResult, Trial
from .space import SearchSpace

__all__ = [
    "ControllerConfig",
    "DataConfig",
    "ExecutionConfig",
    "LatencyConfig",
    "LatencyPredictor",
    "ProxyConfig",
    "SearchConfig",
    "SearchResult",
    "SearchSpace",
    "Trial",
    "compare_strategies",
    "finalize_search",
    "load_spec",
    "search_digits",
    "search_images",
]

# Names this package exported before its sub-packages existed: still importable from here for
# one release, with a DeprecationWarning that names their home.
_MOVED: dict[str, str] = {
    "BaseBlock": "choices",
    "BlockChoice": "choices",
    "Calibration": "latency.calibration",
    "ContextCalibration": "latency.calibration",
    "ContextLatencyTable": "latency.context_table",
    "Decision": "choices",
    "FinalModel": "proxy.finalize",
    "ImageFolderTask": "proxy.image_data",
    "LSTMController": "strategies.controller",
    "LatencyStats": "latency.timing",
    "LatencyTable": "latency.layer_table",
    "MOBILENET_V2_BASE": "choices",
    "NoisyMeasurementError": "latency.steady",
    "PPOController": "strategies.controller",
    "PredictorReport": "latency.validation",
    "ProxyTrainer": "proxy.trainer",
    "RandomSearch": "strategies.controller",
    "Reward": "reward",
    "STRATEGIES": "run.runner",
    "SearchStrategy": "strategies.controller",
    "SteadyTiming": "latency.steady",
    "load_digits_proxy": "proxy.trainer",
    "load_image_folder_proxy": "proxy.image_data",
    "make_strategy": "run.runner",
    "measure_latency": "latency.timing",
    "open_latency_table": "latency.open",
    "plot_pareto": "plot",
    "run_search": "run.runner",
    "spearman_correlation": "latency.validation",
    "time_steady": "latency.steady",
    "validate_latency": "latency.open",
    "validate_predictor": "latency.validation",
    "write_latency_kit": "latency.kit",
}


def __getattr__(name: str) -> Any:
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module 'mnaszoo.search' has no attribute {name!r}")
    warnings.warn(
        f"mnaszoo.search.{name} moved to mnaszoo.search.{home}.{name}; import it from there"
        " (the old name goes in the next release).",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
