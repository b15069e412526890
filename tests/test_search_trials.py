"""Batched trials: the same search as one-at-a-time trials, a resume mid-batch, where trials run.

The reference is the textbook loop written out here (propose, measure, score, reward, observe,
one trial at a time); run_search samples batches so that workers can train them in parallel, and
must still produce exactly the reference's trials.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from mnaszoo.cli.main import main
from mnaszoo.errors import InvalidArgumentError, MnaszooError
from mnaszoo.models.specs import NetworkSpec
from mnaszoo.search.reward import Reward
from mnaszoo.search.run.runner import make_strategy, run_search
from mnaszoo.search.space import SearchSpace
from mnaszoo.search.strategies.controller import LSTMController, SearchStrategy
from mnaszoo.search.strategies.ppo import PPOController

from .test_search_runner import fake_accuracy, fake_latency

SPACE = SearchSpace()
REWARD = Reward.soft(60.0)

pytestmark = pytest.mark.usefixtures("one_thread")


def one_at_a_time(strategy: SearchStrategy, budget: int) -> list[dict[str, Any]]:
    """The search loop without batches: every reward is observed before the next proposal."""
    trials = []
    for index in range(budget):
        tokens = strategy.propose()
        spec = SPACE.to_spec(tokens, name=f"search_{index:05d}")
        latency, accuracy = fake_latency(spec), fake_accuracy(spec)
        reward = REWARD(accuracy, latency)
        strategy.observe(tokens, reward)
        trials.append(
            {
                "index": index,
                "tokens": list(tokens),
                "spec": spec.to_dict(),
                "latency_ms": latency,
                "accuracy": accuracy,
                "reward": reward,
            }
        )
    return trials


def _trials(result: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in t.to_dict().items() if k != "seconds"} for t in result.trials]


def _search(strategy: str | SearchStrategy, budget: int, **kwargs: Any) -> Any:
    return run_search(
        SPACE,
        latency=fake_latency,
        score=fake_accuracy,
        reward=REWARD,
        strategy=strategy,
        budget=budget,
        progress=False,
        **kwargs,
    )


@pytest.mark.parametrize("name", ["controller", "ppo", "random"])
def test_batches_give_the_one_at_a_time_search(name: str) -> None:
    # 20 trials: the controllers update their policy after trials 8 and 16 (batches 8, 8, 4).
    reference = one_at_a_time(make_strategy(name, SPACE, seed=4), 20)
    assert _trials(_search(name, 20, seed=4)) == reference


def test_a_custom_policy_batch_and_a_strategy_that_learns_every_step() -> None:
    reference = one_at_a_time(LSTMController(SPACE.num_options, seed=1, batch_size=3), 10)
    strategy = LSTMController(SPACE.num_options, seed=1, batch_size=3)
    assert _trials(_search(strategy, 10)) == reference
    assert strategy.updates == 3

    class Greedy(PPOController):
        """A strategy whose next proposal depends on every observation (the default ahead)."""

        def proposals_ahead(self) -> int:
            return SearchStrategy.proposals_ahead(self)

        def observe(self, tokens: Any, reward: float) -> None:
            super().observe(tokens, reward)
            self._generator.manual_seed(int(reward * 1e6))

    reference = one_at_a_time(Greedy(SPACE.num_options, seed=2, batch_size=2), 6)
    assert _trials(_search(Greedy(SPACE.num_options, seed=2, batch_size=2), 6)) == reference


def test_resume_mid_batch_repeats_the_batch_without_remeasuring(tmp_path: Path) -> None:
    state, log = tmp_path / "state.json", tmp_path / "trials.jsonl"
    reference = _trials(_search("controller", 20, seed=5))

    def failing(spec: NetworkSpec) -> float:
        if spec.name == "search_00005":
            raise KeyboardInterrupt  # the controller stopped in the middle of its first batch
        return fake_accuracy(spec)

    with pytest.raises(KeyboardInterrupt):
        run_search(
            SPACE,
            latency=fake_latency,
            score=failing,
            reward=REWARD,
            budget=20,
            seed=5,
            state_path=state,
            log_path=log,
            progress=False,
        )
    saved = json.loads(state.read_text())
    assert len(saved["trials"]) == 5
    assert saved["batch"]["start"] == 0 and len(saved["batch"]["tokens"]) == 8
    assert len(log.read_text().splitlines()) == 5

    measured: list[str] = []

    def counting_latency(spec: NetworkSpec) -> float:
        measured.append(spec.name)
        return fake_latency(spec)

    result = run_search(
        SPACE,
        latency=counting_latency,
        score=fake_accuracy,
        reward=REWARD,
        budget=20,
        seed=5,
        state_path=state,
        log_path=log,
        progress=False,
    )
    assert _trials(result) == reference
    # The rest of the saved batch (trials 5-7) kept the latency measured before the stop.
    assert measured == [f"search_{i:05d}" for i in range(8, 20)]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(20))
    assert json.loads(state.read_text())["batch"] is None


def test_a_state_without_a_batch_entry_still_resumes(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    reference = _trials(_search("controller", 12, seed=6))
    _search("controller", 8, seed=6, state_path=state)  # ends on a batch boundary
    data = json.loads(state.read_text())
    assert data["batch"] is None
    del data["batch"]  # as a state written before batches existed
    state.write_text(json.dumps(data))
    assert _trials(_search("controller", 12, seed=6, state_path=state)) == reference


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        ({"workers": 0}, "workers must be"),
        ({"workers": 2, "ray_address": "127.0.0.1:6379"}, "not both"),
        ({"ray_address": ""}, "Ray cluster address"),
        ({"workers": 1, "cpus_per_trial": 0}, "cpus_per_trial must be"),
    ],
)
def test_bad_placement_is_refused_before_any_trial(placement: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        _search("random", 2, **placement)


def test_workers_without_ray_say_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    with pytest.raises(MnaszooError, match=r"mnaszoo\[distributed\]"):
        _search("random", 2, workers=2)


def test_cli_refuses_workers_with_a_ray_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "out", "--workers", "2", "--ray-address", "auto"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
