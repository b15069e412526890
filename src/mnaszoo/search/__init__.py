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
- :class:`ContextLatencyTable` (:mod:`.context_table`): the in-context predictor, blocks timed as
  the backend runs them and calibrated per backend, with noise re-measured or refused
  (:func:`time_steady`, :mod:`.steady`); :func:`write_latency_kit` (:mod:`.kit`) measures it on
  a target device with nothing but onnxruntime there.
- :class:`SearchConfig` (:mod:`.config`): one search's settings, as five frozen dataclasses
  (:class:`DataConfig`, :class:`ProxyConfig`, :class:`LatencyConfig`, :class:`ControllerConfig`,
  :class:`ExecutionConfig`), which ``mnaszoo search``'s flags map onto one to one.
- :func:`search_images` (:mod:`.image_search`): search on your own image folder
  (:func:`load_image_folder_proxy`, :mod:`.image_data`), then :func:`finalize_search`
  (:mod:`.finalize`) trains the best architectures into ``save_pretrained`` folders.
- :func:`search_digits` (:mod:`.experiment`) and :func:`compare_strategies` (:mod:`.compare`):
  the ready-made digits search behind ``mnaszoo search`` and ``examples/search_digits.py``;
  :func:`plot_pareto` (:mod:`.plot`) draws a search's accuracy-latency front.

``import mnaszoo`` does not import this package; ``import mnaszoo.search`` does (and torch).
"""

from __future__ import annotations

from .choices import MOBILENET_V2_BASE, BaseBlock, BlockChoice, Decision
from .compare import compare_strategies
from .config import (
    ControllerConfig,
    DataConfig,
    ExecutionConfig,
    LatencyConfig,
    ProxyConfig,
    SearchConfig,
)
from .context_fit import ContextCalibration
from .context_table import ContextLatencyTable
from .controller import LSTMController, PPOController, RandomSearch, SearchStrategy
from .experiment import (
    load_spec,
    open_latency_table,
    search_digits,
    validate_latency,
)
from .finalize import FinalModel, finalize_search
from .image_data import ImageFolderTask, load_image_folder_proxy
from .image_search import search_images
from .kit import write_latency_kit
from .latency_table import LatencyTable
from .plot import plot_pareto
from .proxy import ProxyTrainer, load_digits_proxy
from .reward import Reward
from .runner import STRATEGIES, SearchResult, Trial, make_strategy, run_search
from .space import SearchSpace
from .steady import NoisyMeasurementError, SteadyTiming, time_steady
from .timing import LatencyStats, measure_latency
from .validation import PredictorReport, spearman_correlation, validate_predictor

__all__ = [
    "MOBILENET_V2_BASE",
    "STRATEGIES",
    "BaseBlock",
    "BlockChoice",
    "ContextCalibration",
    "ContextLatencyTable",
    "ControllerConfig",
    "DataConfig",
    "Decision",
    "ExecutionConfig",
    "FinalModel",
    "ImageFolderTask",
    "LSTMController",
    "LatencyConfig",
    "LatencyStats",
    "LatencyTable",
    "NoisyMeasurementError",
    "PPOController",
    "PredictorReport",
    "ProxyConfig",
    "ProxyTrainer",
    "RandomSearch",
    "Reward",
    "SearchConfig",
    "SearchResult",
    "SearchSpace",
    "SearchStrategy",
    "SteadyTiming",
    "Trial",
    "compare_strategies",
    "finalize_search",
    "load_digits_proxy",
    "load_image_folder_proxy",
    "load_spec",
    "make_strategy",
    "measure_latency",
    "open_latency_table",
    "plot_pareto",
    "run_search",
    "search_digits",
    "search_images",
    "spearman_correlation",
    "time_steady",
    "validate_latency",
    "validate_predictor",
    "write_latency_kit",
]
