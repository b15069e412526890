"""Random search: the baseline every strategy is compared with."""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from ..._validate import check_int
from ...errors import SearchStateError
from .controller import SearchStrategy, decode_state, encode_state

__all__ = ["RandomSearch"]


class RandomSearch(SearchStrategy):
    """Uniform random sampling, ignoring rewards.

    Args:
        num_options: options per decision (:attr:`SearchSpace.num_options`).
        seed: seed of the private random-number generator.

    Example:
        >>> a, b = RandomSearch((4, 2, 3), seed=1), RandomSearch((4, 2, 3), seed=1)
        >>> a.propose() == b.propose()
        True
    """

    name: ClassVar[str] = "random"

    def __init__(self, num_options: Sequence[int], *, seed: int = 0) -> None:
        super().__init__(num_options)
        self.seed = check_int("seed", seed)
        self._rng = random.Random(seed)

    def propose(self) -> tuple[int, ...]:
        return tuple(self._rng.randrange(n) for n in self.num_options)

    def observe(self, tokens: Sequence[int], reward: float) -> None:
        self._check_observation(tokens, reward)

    def proposals_ahead(self) -> int:
        return sys.maxsize  # rewards never change what random search samples

    def config(self) -> dict[str, Any]:
        return {"num_options": list(self.num_options)}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": encode_state(self._rng.getstate())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self._rng.setstate(decode_state(state["rng"]))
        except (KeyError, TypeError, ValueError) as error:
            raise SearchStateError(f"RandomSearch state is malformed: {error}.") from error
