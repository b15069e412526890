"""Platform-aware architecture search over the MnasNet space, on your device and your data.

MnasNet's idea (Tan et al., CVPR 2019): search a factorised hierarchical space with a controller
rewarded by accuracy *and* latency measured on the target device, ``ACC x (LAT / T) ** w``.
The pieces, each usable alone:

- :class:`SearchSpace` (:mod:`.space`): the paper's per-block choices over MobileNetV2's 7-block
  skeleton; every sample is an ordinary :class:`~mnaszoo.NetworkSpec`.
- :func:`measure_latency` (:mod:`.timing`) and :class:`LatencyTable` (:mod:`.latency_table`):
  measured latency and a per-layer lookup-table predictor, validated by
  :func:`validate_predictor` (:mod:`.validation`).
- :class:`Reward` (:mod:`.reward`): the soft and hard reward forms.
- :class:`LSTMController`, :class:`PPOController`, :class:`RandomSearch` (:mod:`.controller`).
- :func:`run_search` (:mod:`.runner`): the resumable search loop with a JSON Lines log.
- :class:`ProxyTrainer` and :func:`load_digits_proxy` (:mod:`.proxy`): a short-training accuracy
  proxy.
- :func:`search_digits` (:mod:`.experiment`) and :func:`compare_strategies` (:mod:`.compare`):
  the ready-made digits search behind ``mnaszoo search`` and ``examples/search_digits.py``;
  :func:`plot_pareto` (:mod:`.plot`) draws a search's accuracy-latency front.

``import mnaszoo`` does not import this package; ``import mnaszoo.search`` does (and torch).
"""

from __future__ import annotations

from .choices import MOBILENET_V2_BASE, BaseBlock, BlockChoice, Decision
from .compare import compare_strategies
from .controller import LSTMController, PPOController, RandomSearch, SearchStrategy
from .experiment import (
    load_spec,
    open_latency_table,
    search_digits,
    validate_latency,
)
from .latency_table import LatencyTable
from .plot import plot_pareto
from .proxy import ProxyTrainer, load_digits_proxy
from .reward import Reward
from .runner import STRATEGIES, SearchResult, Trial, make_strategy, run_search
from .space import SearchSpace
from .timing import LatencyStats, measure_latency
from .validation import PredictorReport, spearman_correlation, validate_predictor

__all__ = [
    "MOBILENET_V2_BASE",
    "STRATEGIES",
    "BaseBlock",
    "BlockChoice",
    "Decision",
    "LSTMController",
    "LatencyStats",
    "LatencyTable",
    "PPOController",
    "PredictorReport",
    "ProxyTrainer",
    "RandomSearch",
    "Reward",
    "SearchResult",
    "SearchSpace",
    "SearchStrategy",
    "Trial",
    "compare_strategies",
    "load_digits_proxy",
    "load_spec",
    "make_strategy",
    "measure_latency",
    "open_latency_table",
    "plot_pareto",
    "run_search",
    "search_digits",
    "spearman_correlation",
    "validate_latency",
    "validate_predictor",
]
