"""PPO on the controller's policy: the LSTM controller with a clipped-surrogate update."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from ..._validate import check_float, check_int
from .controller import LSTMController

__all__ = ["PPOController"]


class PPOController(LSTMController):
    """The :class:`LSTMController` policy trained with Proximal Policy Optimisation (the paper's).

    Each batch of ``batch_size`` observations is reused for ``epochs`` Adam steps on the clipped
    surrogate ``min(ratio x A, clip(ratio, 1 - clip, 1 + clip) x A)``, where ``ratio`` is the
    probability of the tokens under the policy being updated over that under the policy that
    sampled them. Clipping stops one lucky batch from moving the policy too far.

    Args:
        num_options: options per decision (:attr:`SearchSpace.num_options`).
        seed: seed of the initialisation and of sampling.
        clip: the ratio clipping range (> 0).
        epochs: optimisation steps per batch (>= 1).
        **kwargs: the other :class:`LSTMController` settings.

    Raises:
        InvalidArgumentError: a setting is out of range.
        ArgumentTypeError: a setting has the wrong type.

    Example:
        >>> controller = PPOController((4, 2, 3), seed=0, batch_size=2)
        >>> for reward in (0.2, 0.8):
        ...     controller.observe(controller.propose(), reward)
        >>> controller.updates
        1
    """

    name: ClassVar[str] = "ppo"

    def __init__(
        self,
        num_options: Sequence[int],
        *,
        seed: int = 0,
        clip: float = 0.2,
        epochs: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_options, seed=seed, **kwargs)
        self.clip = check_float("clip", clip, minimum=0.0, min_inclusive=False)
        self.epochs = check_int("epochs", epochs, minimum=1)

    def _optimise(self, tokens: torch.Tensor, advantages: torch.Tensor) -> None:
        # Updates happen only when a batch is complete, so the current policy is the one that
        # sampled the batch: its log-probabilities are the "old" ones of the ratio.
        with torch.no_grad():
            _, old_log_prob, _ = self.policy.steps(len(tokens), tokens, None)
        for _ in range(self.epochs):
            _, log_prob, entropy = self.policy.steps(len(tokens), tokens, None)
            ratio = torch.exp(log_prob - old_log_prob)
            clipped = torch.clamp(ratio, 1 - self.clip, 1 + self.clip)
            surrogate = torch.minimum(ratio * advantages, clipped * advantages)
            self._step(-surrogate.mean() - self.entropy_weight * entropy.mean())

    def config(self) -> dict[str, Any]:
        return {**super().config(), "clip": self.clip, "epochs": self.epochs}
