"""State-dict shapes of configurations and registered models, for load diagnostics.

Lives beside the registry so that the weights loader can say which registered model a checkpoint
fits without the model modules knowing about loading.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .config import ModelConfig
from .mnasnet import MnasNet
from .registry import MODELS

__all__ = ["CLASSIFIER_PREFIX", "config_shapes", "matching_models"]

CLASSIFIER_PREFIX = "classifier."


def config_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """State-dict shapes of the classifier ``config`` builds (on the meta device: no memory)."""
    with torch.device("meta"):
        model = MnasNet(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def matching_models(found: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Registered models (at their widths) whose backbone has exactly the checkpoint's shapes."""
    backbone = {
        k: v
        for k, v in found.items()
        if not k.startswith(CLASSIFIER_PREFIX) and not k.endswith("num_batches_tracked")
    }
    names = []
    for name, entry in MODELS.items():
        shapes = config_shapes(ModelConfig.resolve(entry.spec, width_mult=entry.width_mult))
        candidate = {
            k: v
            for k, v in shapes.items()
            if not k.startswith(CLASSIFIER_PREFIX) and not k.endswith("num_batches_tracked")
        }
        if candidate == backbone:
            names.append(name)
    return names
