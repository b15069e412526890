"""Search strategies: the LSTM controller learns, everything is seeded and resumable."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest
import torch

from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError, SearchStateError
from mnaszoo.search.space import SearchSpace
from mnaszoo.search.strategies.controller import (
    LSTMController,
    SearchStrategy,
    decode_state,
    encode_state,
)
from mnaszoo.search.strategies.ppo import PPOController
from mnaszoo.search.strategies.random_search import RandomSearch

NUM_OPTIONS = SearchSpace().num_options  # 42 decisions of 2 to 4 options

# Tiny LSTM steps and models: see the one_thread fixture in conftest.py.
pytestmark = pytest.mark.usefixtures("one_thread")


def _matching(target: Sequence[int]) -> object:
    def reward(tokens: Sequence[int]) -> float:
        return sum(a == b for a, b in zip(tokens, target, strict=True)) / len(target)

    return reward


def _run(strategy: SearchStrategy, reward: object, budget: int) -> list[float]:
    rewards = []
    for _ in range(budget):
        tokens = strategy.propose()
        rewards.append(reward(tokens))  # type: ignore[operator]
        strategy.observe(tokens, rewards[-1])
    return rewards


def test_controller_learns_a_hidden_target_and_beats_random_search() -> None:
    target = RandomSearch(NUM_OPTIONS, seed=123).propose()
    reward = _matching(target)
    controller = LSTMController(NUM_OPTIONS, seed=0)
    learned = _run(controller, reward, 400)
    random_rewards = _run(RandomSearch(NUM_OPTIONS, seed=0), reward, 400)
    # Uniform sampling matches ~40% of tokens (the mean of 1/options); the controller, starting
    # from that same uniform policy, ends near the optimum (measured: 0.94 over the last 100).
    random_mean = sum(random_rewards) / len(random_rewards)
    late_mean = sum(learned[-100:]) / 100
    assert random_mean < 0.5
    assert late_mean > 0.75 and late_mean > max(random_rewards)
    assert reward(controller.greedy()) >= 0.85  # type: ignore[operator]
    assert controller.updates == 400 // controller.batch_size


def test_ppo_controller_learns_a_hidden_target() -> None:
    target = RandomSearch(NUM_OPTIONS, seed=321).propose()
    reward = _matching(target)
    controller = PPOController(NUM_OPTIONS, seed=0)
    learned = _run(controller, reward, 300)
    assert sum(learned[-100:]) / 100 > 0.75
    assert reward(controller.greedy()) >= 0.85  # type: ignore[operator]


def test_initial_policy_is_uniform() -> None:
    controller = LSTMController((4, 2, 3), seed=3)
    expected = -sum(torch.log(torch.tensor(float(n))).item() for n in (4, 2, 3))
    for tokens in [(0, 0, 0), (3, 1, 2), (1, 0, 2)]:
        assert controller.log_prob(tokens) == pytest.approx(expected, abs=1e-6)


def test_seeded_and_leaves_global_random_states_alone() -> None:
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    runs = []
    for seed in (7, 7, 8):
        controller = LSTMController(NUM_OPTIONS, seed=seed, batch_size=2)
        runs.append([controller.propose() for _ in range(3)])
        controller.observe(runs[-1][0], 0.3)
        controller.observe(runs[-1][1], 0.9)
        runs[-1].append(controller.propose())
    assert runs[0] == runs[1] != runs[2]
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == python_state


@pytest.mark.parametrize(
    "make",
    [
        lambda: LSTMController(NUM_OPTIONS, seed=5, batch_size=3),
        lambda: PPOController(NUM_OPTIONS, seed=5, batch_size=4),
        lambda: RandomSearch(NUM_OPTIONS, seed=5),
    ],
)
def test_state_round_trip_continues_identically(make: object) -> None:
    reward = _matching(RandomSearch(NUM_OPTIONS, seed=1).propose())
    first: SearchStrategy = make()  # type: ignore[operator]
    _run(first, reward, 10)  # 10 = 3 updates and one pending observation with batch_size 3
    saved = json.loads(json.dumps(first.state_dict()))
    second: SearchStrategy = make()  # type: ignore[operator]
    second.load_state_dict(saved)
    assert [first.propose() for _ in range(5)] == [second.propose() for _ in range(5)]
    for strategy in (first, second):
        _run(strategy, reward, 7)
    assert first.state_dict() == second.state_dict()
    if isinstance(first, LSTMController) and isinstance(second, LSTMController):
        for a, b in zip(first.policy.parameters(), second.policy.parameters(), strict=True):
            assert torch.equal(a, b)


def test_encode_state_round_trip() -> None:
    value: dict[object, object] = {
        "t": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7,
        "empty": torch.zeros(0, dtype=torch.int64),
        "tuple": (1, (2.5, None), "x"),
        1: [True, float("inf")],
    }
    back = decode_state(json.loads(json.dumps(encode_state(value))))
    assert torch.equal(back["t"], torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7)
    assert back["empty"].shape == (0,)
    assert back["tuple"] == value["tuple"] and back[1] == [True, float("inf")]
    with pytest.raises(ArgumentTypeError, match="Cannot encode a set"):
        encode_state({"s": {1}})


def test_malformed_state_raises_search_state_error() -> None:
    with pytest.raises(SearchStateError, match="LSTMController state is malformed"):
        LSTMController((2, 2)).load_state_dict({"policy": {}})
    with pytest.raises(SearchStateError, match="RandomSearch state is malformed"):
        RandomSearch((2, 2)).load_state_dict({})
    other = LSTMController((3, 2)).state_dict()
    with pytest.raises(SearchStateError, match="malformed"):
        LSTMController((2, 2)).load_state_dict(other)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: LSTMController(()), InvalidArgumentError, "at least one decision"),
        (lambda: LSTMController((2, 0)), InvalidArgumentError, r"num_options\[1\] must be >= 1"),
        (lambda: RandomSearch(4), ArgumentTypeError, "tuple of option counts"),  # type: ignore[arg-type]
        (lambda: LSTMController((2,), batch_size=0), InvalidArgumentError, "batch_size"),
        (lambda: LSTMController((2,), learning_rate=0), InvalidArgumentError, "learning_rate"),
        (lambda: LSTMController((2,), baseline_decay=1.0), InvalidArgumentError, "baseline_decay"),
        (lambda: LSTMController((2,), entropy_weight=-1), InvalidArgumentError, "entropy_weight"),
        (lambda: PPOController((2,), clip=0), InvalidArgumentError, "clip must be > 0"),
        (lambda: PPOController((2,), epochs=0), InvalidArgumentError, "epochs must be >= 1"),
        (lambda: LSTMController((2, 3)).observe((0,), 1.0), InvalidArgumentError, "hold 2 indices"),
        (lambda: LSTMController((2, 3)).observe((0, 3), 1.0), InvalidArgumentError, r"tokens\[1\]"),
        (
            lambda: LSTMController((2, 3)).observe((0, 1), float("nan")),
            InvalidArgumentError,
            "reward",
        ),
        (
            lambda: RandomSearch((2, 3)).observe("01", 1.0),  # type: ignore[arg-type]
            ArgumentTypeError,
            "tuple of ints",
        ),
    ],
)
def test_invalid_arguments(call: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()  # type: ignore[operator]
