"""Search strategies: what to sample next given the rewards seen so far.

Every strategy has the :class:`SearchStrategy` interface: :meth:`~SearchStrategy.propose` a token
sequence (one index per decision of a :class:`~mnaszoo.search.space.SearchSpace`), then
:meth:`~SearchStrategy.observe` its reward. Their :meth:`~SearchStrategy.state_dict` is JSON-ready
and includes every random-number state, so a search restored with
:meth:`~SearchStrategy.load_state_dict` continues exactly as if it had never stopped.

* :class:`RandomSearch` samples uniformly (the baseline every search should beat).
* :class:`LSTMController` is the paper's RNN controller: an LSTM emits one token per decision,
  the sampled token fed back as the next input, trained with REINFORCE.
* :class:`PPOController` is the same policy trained with Proximal Policy Optimisation, as in the
  paper: several clipped updates per batch of samples.
"""

from __future__ import annotations

import abc
import base64
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..._validate import check_float, check_int
from ...errors import ArgumentTypeError, InvalidArgumentError, SearchStateError

__all__ = [
    "LSTMController",
    "SearchStrategy",
    "decode_state",
    "encode_state",
]


def _check_num_options(num_options: object) -> tuple[int, ...]:
    if isinstance(num_options, (str, bytes)) or not isinstance(num_options, Sequence):
        raise ArgumentTypeError(
            "num_options must be a tuple of option counts (SearchSpace.num_options), got"
            f" {type(num_options).__name__}."
        )
    counts = tuple(check_int(f"num_options[{i}]", n, minimum=1) for i, n in enumerate(num_options))
    if not counts:
        raise InvalidArgumentError("num_options must hold at least one decision, got none.")
    return counts


class SearchStrategy(abc.ABC):
    """The interface every search strategy implements.

    Attributes:
        name: the identifier :func:`~mnaszoo.search.run.runner.run_search` accepts as ``strategy=``
            and records in its state file.
        num_options: options per decision, as :attr:`SearchSpace.num_options`.
    """

    name: ClassVar[str]

    def __init__(self, num_options: Sequence[int]) -> None:
        self.num_options: tuple[int, ...] = _check_num_options(num_options)

    @abc.abstractmethod
    def propose(self) -> tuple[int, ...]:
        """Return the next token sequence to evaluate."""

    @abc.abstractmethod
    def observe(self, tokens: Sequence[int], reward: float) -> None:
        """Report the reward of ``tokens`` (normally the last proposal)."""

    def proposals_ahead(self) -> int:
        """How many proposals can be made now, before any is observed, without changing them.

        The search samples that many at once and trains them in parallel; observing them in
        order afterwards then gives exactly the one-at-a-time search. The default, 1, is right
        for a strategy that learns from every observation.
        """
        return 1

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """The settings that define the strategy (JSON-ready); a resumed search must match them."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue identically, as JSON-ready data."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` data.

        Raises:
            SearchStateError: the state is malformed or belongs to another strategy.
        """

    def _check_observation(
        self, tokens: Sequence[int], reward: float
    ) -> tuple[tuple[int, ...], float]:
        if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
            raise ArgumentTypeError(f"tokens must be a tuple of ints, got {type(tokens).__name__}.")
        if len(tokens) != len(self.num_options):
            raise InvalidArgumentError(
                f"tokens must hold {len(self.num_options)} indices, got {len(tokens)}."
            )
        for i, (token, count) in enumerate(zip(tokens, self.num_options, strict=True)):
            check_int(f"tokens[{i}]", token, minimum=0, maximum=count - 1)
        return tuple(tokens), check_float("reward", reward)


class _Policy(nn.Module):
    """An LSTM that emits one categorical token per decision (NASNet/MnasNet controller)."""

    def __init__(self, num_options: tuple[int, ...], hidden_size: int) -> None:
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, hidden_size))
        self.cell = nn.LSTMCell(hidden_size, hidden_size)
        # Each decision has its own softmax head and its own embedding of the token it emitted,
        # which is the next step's input.
        self.heads = nn.ModuleList(nn.Linear(hidden_size, n) for n in num_options)
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden_size) for n in num_options)

    def steps(
        self, batch: int, tokens: torch.Tensor | None, choose: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run all decisions; ``tokens`` (B, T) teacher-forces them, else ``choose(logits)`` picks.

        Returns the tokens (B, T), their summed log-probabilities and summed entropies (B,).
        """
        x = self.start.expand(batch, -1)
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        chosen, log_prob, entropy = [], torch.zeros(batch), torch.zeros(batch)
        for i, (head, embedding) in enumerate(zip(self.heads, self.embeddings, strict=True)):
            state = self.cell(x, state)
            logits = head(state[0])
            log_probs = torch.log_softmax(logits, dim=-1)
            token = tokens[:, i] if tokens is not None else choose(logits)
            log_prob = log_prob + log_probs.gather(1, token[:, None])[:, 0]
            entropy = entropy - (log_probs.exp() * log_probs).sum(-1)
            chosen.append(token)
            x = embedding(token)
        return torch.stack(chosen, dim=1), log_prob, entropy


class LSTMController(SearchStrategy):
    """The paper's RNN controller, trained with REINFORCE.

    An LSTM cell runs once per decision; a per-decision linear head gives the softmax over that
    decision's options and the sampled option's embedding is the next step's input. The policy
    gradient ``(reward - baseline) x grad log p(tokens)`` uses an exponential moving average of
    past rewards as the baseline, plus an optional entropy bonus that keeps exploration alive, and
    Adam. All randomness (initialisation and sampling) comes from private generators seeded with
    ``seed``; the global torch and ``random`` states are never used or changed.

    Args:
        num_options: options per decision (:attr:`SearchSpace.num_options`).
        seed: seed of the initialisation and of sampling.
        hidden_size: LSTM width.
        learning_rate: Adam learning rate.
        batch_size: observations per policy update (1 updates after every sample).
        baseline_decay: weight of the old baseline in the moving average, in [0, 1).
        entropy_weight: weight of the entropy bonus (>= 0).

    Raises:
        InvalidArgumentError: a setting is out of range.
        ArgumentTypeError: a setting has the wrong type.

    Example:
        >>> controller = LSTMController((4, 2, 3), seed=0)
        >>> tokens = controller.propose()
        >>> controller.observe(tokens, 0.5)
        >>> len(controller.greedy())
        3
    """

    name: ClassVar[str] = "controller"

    def __init__(
        self,
        num_options: Sequence[int],
        *,
        seed: int = 0,
        hidden_size: int = 64,
        learning_rate: float = 0.005,
        batch_size: int = 8,
        baseline_decay: float = 0.95,
        entropy_weight: float = 1e-3,
    ) -> None:
        super().__init__(num_options)
        self.seed = check_int("seed", seed)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.learning_rate = check_float(
            "learning_rate", learning_rate, minimum=0.0, min_inclusive=False
        )
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.baseline_decay = check_float(
            "baseline_decay", baseline_decay, minimum=0.0, maximum=1.0, max_inclusive=False
        )
        self.entropy_weight = check_float("entropy_weight", entropy_weight, minimum=0.0)
        self._generator = torch.Generator().manual_seed(seed)
        # The layers' default initialisation draws from the global generator; fork it so that
        # creating a controller leaves the caller's random state alone (all values are redrawn
        # from the private generator below).
        with torch.random.fork_rng(devices=[]):
            self.policy = _Policy(self.num_options, self.hidden_size)
        with torch.no_grad():
            for parameter in self.policy.parameters():
                parameter.uniform_(-0.1, 0.1, generator=self._generator)
            # Zero heads start from the uniform policy: early samples follow random search's
            # distribution, and the search moves away from it only on evidence.
            for parameter in self.policy.heads.parameters():
                parameter.zero_()
        self._optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.learning_rate)
        self.baseline: float | None = None
        self._pending: list[tuple[tuple[int, ...], float]] = []
        self.updates = 0

    def propose(self) -> tuple[int, ...]:
        with torch.no_grad():
            tokens, _, _ = self.policy.steps(
                1,
                None,
                lambda logits: torch.multinomial(
                    torch.softmax(logits, -1), 1, generator=self._generator
                )[:, 0],
            )
        return tuple(int(t) for t in tokens[0])

    def greedy(self) -> tuple[int, ...]:
        """The most likely option at every step (the policy's current best guess)."""
        with torch.no_grad():
            tokens, _, _ = self.policy.steps(1, None, lambda logits: logits.argmax(-1))
        return tuple(int(t) for t in tokens[0])

    def log_prob(self, tokens: Sequence[int]) -> float:
        """Log-probability of sampling ``tokens`` under the current policy."""
        checked, _ = self._check_observation(tokens, 0.0)
        with torch.no_grad():
            _, log_prob, _ = self.policy.steps(1, torch.tensor([checked]), None)
        return float(log_prob[0])

    def proposals_ahead(self) -> int:
        # The policy (and the baseline) change only when a batch of observations is complete.
        return self.batch_size - len(self._pending)

    def observe(self, tokens: Sequence[int], reward: float) -> None:
        self._pending.append(self._check_observation(tokens, reward))
        if len(self._pending) >= self.batch_size:
            self._update()

    def _update(self) -> None:
        advantages = []
        for _, reward in self._pending:
            if self.baseline is None:
                self.baseline = reward
            advantages.append(reward - self.baseline)
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        self._optimise(torch.tensor([t for t, _ in self._pending]), torch.tensor(advantages))
        self._pending.clear()
        self.updates += 1

    def _optimise(self, tokens: torch.Tensor, advantages: torch.Tensor) -> None:
        """One REINFORCE step on a batch of token sequences (B, T) and their advantages (B,)."""
        _, log_prob, entropy = self.policy.steps(len(tokens), tokens, None)
        loss = -(advantages * log_prob).mean() - self.entropy_weight * entropy.mean()
        self._step(loss)

    def _step(self, loss: torch.Tensor) -> None:
        self._optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        self._optimizer.step()

    def config(self) -> dict[str, Any]:
        return {
            "num_options": list(self.num_options),
            "hidden_size": self.hidden_size,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "baseline_decay": self.baseline_decay,
            "entropy_weight": self.entropy_weight,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": encode_state(self.policy.state_dict()),
            "optimizer": encode_state(self._optimizer.state_dict()),
            "generator": encode_state(self._generator.get_state()),
            "baseline": self.baseline,
            "pending": [[list(t), r] for t, r in self._pending],
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.policy.load_state_dict(decode_state(state["policy"]))
            self._optimizer.load_state_dict(decode_state(state["optimizer"]))
            self._generator.set_state(decode_state(state["generator"]))
            baseline = state["baseline"]
            self.baseline = None if baseline is None else float(baseline)
            self._pending = [(tuple(t), float(r)) for t, r in state["pending"]]
            self.updates = int(state["updates"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise SearchStateError(f"LSTMController state is malformed: {error}.") from error


# -- JSON encoding of states -----------------------------------------------------------------
# Tensors go as base64 of their raw bytes (exact, and ~4x smaller than lists of floats); tuples
# and dicts with non-string keys (Adam's per-parameter state) are tagged so they come back as such.


def encode_state(value: Any) -> Any:
    """Turn nested tensors, tuples, dicts and scalars into JSON-ready data (see decode_state)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        return {
            "__tensor__": base64.b64encode(tensor.numpy().tobytes()).decode("ascii"),
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "shape": list(tensor.shape),
        }
    if isinstance(value, tuple):
        return {"__tuple__": [encode_state(v) for v in value]}
    if isinstance(value, list):
        return [encode_state(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode_state(v) for k, v in value.items()}
        return {"__items__": [[encode_state(k), encode_state(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"__float__": repr(value)}
        return value
    raise ArgumentTypeError(f"Cannot encode a {type(value).__name__} in a search state.")


def decode_state(value: Any) -> Any:
    """The inverse of :func:`encode_state`."""
    if isinstance(value, list):
        return [decode_state(v) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            dtype = getattr(torch, value["dtype"])
            raw = bytearray(base64.b64decode(value["__tensor__"]))
            if not raw:
                return torch.empty(value["shape"], dtype=dtype)
            return torch.frombuffer(raw, dtype=dtype).reshape(value["shape"]).clone()
        if "__tuple__" in value:
            return tuple(decode_state(v) for v in value["__tuple__"])
        if "__items__" in value:
            return {decode_state(k): decode_state(v) for k, v in value["__items__"]}
        if "__float__" in value:
            return float(value["__float__"])
        return {k: decode_state(v) for k, v in value.items()}
    return value
