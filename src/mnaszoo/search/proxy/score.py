"""A network's proxy accuracy as the search asks for it: build, train, score, and remember it
by network so that a network met again is not retrained."""

from __future__ import annotations

from typing import Any

import torch

from ...models.specs import NetworkSpec
from ..latency.open import NUM_CLASSES, spec_key
from .trainer import ProxyTrainer

__all__ = ["ProxyScore"]


class ProxyScore:
    """``spec -> proxy accuracy``, building the model and caching by network."""

    def __init__(
        self, trainer: ProxyTrainer, cache: dict[str, float], num_classes: int = NUM_CLASSES
    ) -> None:
        self.trainer = trainer
        self.cache = cache
        self.num_classes = num_classes

    def __call__(self, spec: NetworkSpec) -> float:
        from ...models.factory import build

        key = spec_key(spec)
        if key not in self.cache:
            with torch.random.fork_rng(devices=[]):  # building draws from the global RNG
                model = build(spec, num_classes=self.num_classes)
            self.cache[key] = self.trainer(model)
        return self.cache[key]

    # Distributed trials (mnaszoo.search.run.distributed): the controller asks before sending a
    # network
    # to a worker, and keeps what the workers found.
    def cached(self, spec: NetworkSpec) -> float | None:
        return self.cache.get(spec_key(spec))

    def remember(self, spec: NetworkSpec, accuracy: float) -> None:
        self.cache.setdefault(spec_key(spec), accuracy)

    def __getstate__(self) -> dict[str, Any]:
        # Workers get the trainer, not the controller's cache (which grows with the search).
        return {**self.__dict__, "cache": {}}
