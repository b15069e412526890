"""mnaszoo: the MnasNet family for PyTorch, exact to the published architectures.

``import mnaszoo`` is light: the spec tables, registry and counters import no torch; the model
classes and factories load torch on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .architectures import (
    ARCHITECTURES as ARCHITECTURES,
)
from .architectures import (
    MNASNET_A1 as MNASNET_A1,
)
from .architectures import (
    MNASNET_B1 as MNASNET_B1,
)
from .architectures import (
    MNASNET_D1 as MNASNET_D1,
)
from .architectures import (
    MNASNET_D1_320 as MNASNET_D1_320,
)
from .architectures import (
    MNASNET_SMALL as MNASNET_SMALL,
)
from .codec import decode_block as decode_block
from .codec import decode_stages as decode_stages
from .codec import encode_block as encode_block
from .codec import encode_stages as encode_stages
from .config import ModelConfig as ModelConfig
from .errors import AccessDeniedError as AccessDeniedError
from .errors import ArgumentTypeError as ArgumentTypeError
from .errors import CacheNotWritableError as CacheNotWritableError
from .errors import CorruptCheckpointError as CorruptCheckpointError
from .errors import DownloadError as DownloadError
from .errors import IncompatibleWeightsError as IncompatibleWeightsError
from .errors import IntegrityError as IntegrityError
from .errors import InvalidArgumentError as InvalidArgumentError
from .errors import InvalidImageError as InvalidImageError
from .errors import ManifestError as ManifestError
from .errors import MnaszooError as MnaszooError
from .errors import RemoteFileNotFoundError as RemoteFileNotFoundError
from .errors import SpecError as SpecError
from .errors import UnknownModelError as UnknownModelError
from .errors import UnknownWeightsError as UnknownWeightsError
from .errors import WeightsError as WeightsError
from .errors import WeightsNotCachedError as WeightsNotCachedError
from .manifest import Preprocessing as Preprocessing
from .manifest import WeightsRecord as WeightsRecord
from .manifest import get_weights as get_weights
from .manifest import list_weights as list_weights
from .registry import list_models as list_models
from .specs import BlockKind as BlockKind
from .specs import NetworkSpec as NetworkSpec
from .specs import StageSpec as StageSpec
from .summary import describe as describe

if TYPE_CHECKING:
    from .builder import build as build
    from .evaluation import EvaluationResult as EvaluationResult
    from .evaluation import evaluate as evaluate
    from .exporting import export as export
    from .factory import create as create
    from .images import load_image as load_image
    from .images import load_images as load_images
    from .inference import optimize_for_inference as optimize_for_inference
    from .model import FeatureInfo as FeatureInfo
    from .model import MnasNet as MnasNet
    from .model import MnasNetFeatures as MnasNetFeatures
    from .persistence import from_pretrained as from_pretrained
    from .persistence import push_to_hub as push_to_hub
    from .persistence import save_pretrained as save_pretrained
    from .prediction import Prediction as Prediction
    from .prediction import predict as predict
    from .quantization import quantize_int8 as quantize_int8
    from .runtime import OnnxRuntimeModel as OnnxRuntimeModel
    from .transforms import ImageTransform as ImageTransform
    from .transforms import make_transform as make_transform

__version__ = "0.1.0"
"""The version of mnaszoo (also ``mnaszoo --version``)."""

# Names whose modules import torch, loaded on first attribute access (PEP 562).
_LAZY = {
    "build": "builder",
    "create": "factory",
    "FeatureInfo": "model",
    "MnasNet": "model",
    "MnasNetFeatures": "model",
    "EvaluationResult": "evaluation",
    "evaluate": "evaluation",
    "load_image": "images",
    "load_images": "images",
    "ImageTransform": "transforms",
    "make_transform": "transforms",
    "Prediction": "prediction",
    "predict": "prediction",
    "from_pretrained": "persistence",
    "push_to_hub": "persistence",
    "save_pretrained": "persistence",
    "optimize_for_inference": "inference",
    "export": "exporting",
    "OnnxRuntimeModel": "runtime",
    "quantize_int8": "quantization",
}

__all__ = [
    "ARCHITECTURES",
    "MNASNET_A1",
    "MNASNET_B1",
    "MNASNET_D1",
    "MNASNET_D1_320",
    "MNASNET_SMALL",
    "AccessDeniedError",
    "ArgumentTypeError",
    "BlockKind",
    "CacheNotWritableError",
    "CorruptCheckpointError",
    "DownloadError",
    "EvaluationResult",
    "FeatureInfo",
    "ImageTransform",
    "IncompatibleWeightsError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidImageError",
    "ManifestError",
    "MnasNet",
    "MnasNetFeatures",
    "MnaszooError",
    "ModelConfig",
    "NetworkSpec",
    "OnnxRuntimeModel",
    "Prediction",
    "Preprocessing",
    "RemoteFileNotFoundError",
    "SpecError",
    "StageSpec",
    "UnknownModelError",
    "UnknownWeightsError",
    "WeightsError",
    "WeightsNotCachedError",
    "WeightsRecord",
    "__version__",
    "build",
    "create",
    "decode_block",
    "decode_stages",
    "describe",
    "encode_block",
    "encode_stages",
    "evaluate",
    "export",
    "from_pretrained",
    "get_weights",
    "list_models",
    "list_weights",
    "load_image",
    "load_images",
    "make_transform",
    "optimize_for_inference",
    "predict",
    "push_to_hub",
    "quantize_int8",
    "save_pretrained",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mnaszoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
