"""run_search: trials, best and Pareto front, exact resume, state checks, the JSONL log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError, SearchStateError
from mnaszoo.models.specs import NetworkSpec
from mnaszoo.search.reward import Reward
from mnaszoo.search.run.runner import SearchResult, Trial, run_search
from mnaszoo.search.space import SearchSpace
from mnaszoo.search.strategies.controller import LSTMController
from mnaszoo.search.strategies.random_search import RandomSearch

SPACE = SearchSpace()
REWARD = Reward.soft(60.0)

# Tiny LSTM steps and models: see the one_thread fixture in conftest.py.
pytestmark = pytest.mark.usefixtures("one_thread")


def fake_latency(spec: NetworkSpec) -> float:
    """Milliseconds growing with depth, width and kernel: a stand-in for a latency model."""
    return sum(s.repeats * s.out_channels * s.kernel * (1 + s.expansion) for s in spec.stages) / 200


def fake_accuracy(spec: NetworkSpec) -> float:
    """An accuracy that grows with capacity and SE, saturating below 1."""
    capacity = sum(s.repeats * s.out_channels * (1 + s.se_ratio) for s in spec.stages)
    return capacity / (capacity + 1500)


def _search(**kwargs: Any) -> SearchResult:
    settings: dict[str, Any] = {
        "latency": fake_latency,
        "score": fake_accuracy,
        "reward": REWARD,
        "budget": 20,
        "progress": False,
    }
    settings.update(kwargs)
    return run_search(SPACE, **settings)


def _without_time(result: SearchResult) -> list[dict[str, Any]]:
    return [{**t.to_dict(), "seconds": None} for t in result.trials]


def test_trials_best_and_pareto_front() -> None:
    result = _search(strategy="random", budget=30, seed=3)
    assert [t.index for t in result.trials] == list(range(30))
    for trial in result.trials:
        spec = trial.network_spec()
        assert spec == SPACE.to_spec(trial.tokens, name=spec.name)
        assert trial.latency_ms == fake_latency(spec) and trial.accuracy == fake_accuracy(spec)
        assert trial.reward == REWARD(trial.accuracy, trial.latency_ms)
    assert result.best.reward == max(t.reward for t in result.trials)
    front = result.pareto_front()
    on_front = {
        t.index
        for t in result.trials
        if not any(
            o.accuracy >= t.accuracy
            and o.latency_ms <= t.latency_ms
            and (o.accuracy > t.accuracy or o.latency_ms < t.latency_ms)
            for o in result.trials
        )
    }
    assert {t.index for t in front} == on_front
    assert [t.latency_ms for t in front] == sorted(t.latency_ms for t in front)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["best"] == result.best.index and len(data["trials"]) == 30
    assert data["pareto_front"] == [t.index for t in front]


def test_seeded_runs_repeat_and_strategy_instances_work() -> None:
    a = _search(seed=4)
    b = _search(seed=4)
    c = _search(strategy=LSTMController(SPACE.num_options, seed=4), seed=4)
    assert _without_time(a) == _without_time(b) == _without_time(c)
    assert _without_time(_search(seed=5)) != _without_time(a)


class InterruptedSearchError(Exception):
    pass


def _failing_at(index: int) -> Any:
    calls = {"n": 0}

    def score(spec: NetworkSpec) -> float:
        if calls["n"] == index:
            raise InterruptedSearchError
        calls["n"] += 1
        return fake_accuracy(spec)

    return score


@pytest.mark.parametrize("strategy", ["controller", "ppo", "random"])
def test_resume_after_interruption_is_identical(tmp_path: Path, strategy: str) -> None:
    whole = _search(strategy=strategy, budget=21, seed=1)
    state, log = tmp_path / "state.json", tmp_path / "search.jsonl"
    # Stop after 11 trials: with batch_size 8, three observations are pending in the controller.
    with pytest.raises(InterruptedSearchError):
        _search(
            strategy=strategy,
            budget=21,
            seed=1,
            state_path=state,
            log_path=log,
            score=_failing_at(11),
        )
    assert len(json.loads(state.read_text())["trials"]) == 11
    assert len(log.read_text().splitlines()) == 11
    resumed = _search(strategy=strategy, budget=21, seed=1, state_path=state, log_path=log)
    assert _without_time(resumed) == _without_time(whole)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(21))
    assert [Trial.from_dict(line) for line in lines] == list(resumed.trials)
    # A larger budget extends the finished search; an equal one just returns it.
    longer = _search(strategy=strategy, budget=23, seed=1, state_path=state, log_path=log)
    assert _without_time(longer)[:21] == _without_time(whole) and len(longer.trials) == 23
    assert len(log.read_text().splitlines()) == 23


def test_log_is_resynchronised_with_the_state(tmp_path: Path) -> None:
    state, log = tmp_path / "state.json", tmp_path / "log.jsonl"
    _search(budget=5, state_path=state, log_path=log)
    lines = log.read_text().splitlines()
    # A crash between the state and log writes loses a line; a stale log may have extra ones.
    log.write_text("\n".join(lines[:3]) + "\n")
    _search(budget=6, state_path=state, log_path=log)
    log.write_text(log.read_text() + lines[0] + "\n" + "{garbage\n")
    _search(budget=7, state_path=state, log_path=log)
    indices = [json.loads(line)["index"] for line in log.read_text().splitlines()]
    assert indices == list(range(7))


def test_evaluate_builds_seeded_models_and_resumes_identically(tmp_path: Path) -> None:
    image = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    seen: list[int] = []

    def evaluate(model: nn.Module) -> float:
        if len(seen) == 2 and not resumed:
            raise InterruptedSearchError
        seen.append(1)
        model.eval()
        with torch.no_grad():
            return float(torch.softmax(model(image), -1)[0, 0])

    kwargs: dict[str, Any] = {"score": None, "evaluate": evaluate, "budget": 3, "num_classes": 5}
    resumed = True
    whole = _search(**kwargs)
    resumed = False
    seen.clear()
    torch_state = torch.get_rng_state()
    with pytest.raises(InterruptedSearchError):
        _search(**kwargs, state_path=tmp_path / "s.json")
    assert torch.equal(torch.get_rng_state(), torch_state)  # models were built on a forked RNG
    resumed = True
    again = _search(**kwargs, state_path=tmp_path / "s.json")
    assert _without_time(again) == _without_time(whole)
    assert len({t.accuracy for t in whole.trials}) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": SearchSpace(kernels=(3, 5, 7))}, "different space: kernel saved"),
        ({"reward": Reward.hard(60.0)}, "different reward: alpha saved"),
        ({"strategy": "random"}, 'different strategy: .*name saved "controller", now "random"'),
        ({"seed": 9}, "different seed: saved 0, now 9"),
        (
            {"strategy": LSTMController(SPACE.num_options, batch_size=4)},
            "config.batch_size saved 8, now 4",
        ),
        ({"budget": 3}, "holds 4 trials, more than budget=3"),
    ],
)
def test_mismatched_state_is_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    state = tmp_path / "state.json"
    _search(budget=4, state_path=state)
    settings: dict[str, Any] = {
        "latency": fake_latency,
        "score": fake_accuracy,
        "reward": REWARD,
        "budget": 6,
        "progress": False,
        "state_path": state,
    }
    space = change.pop("space", SPACE)
    settings.update(change)
    with pytest.raises(SearchStateError, match=message):
        run_search(space, **settings)


def test_unreadable_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    with pytest.raises(SearchStateError, match="Cannot read the search state"):
        _search(state_path=state)
    state.write_text("[]")
    with pytest.raises(SearchStateError, match="not a JSON object"):
        _search(state_path=state)


def test_progress_line(capsys: pytest.CaptureFixture[str]) -> None:
    _search(budget=3, progress=True)
    err = capsys.readouterr().err
    assert "\rsearch 3/3" in err and "best reward" in err and "eta" in err
    assert err.endswith("\n")
    _search(budget=2)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"evaluate": lambda model: 0.5}, InvalidArgumentError, "exactly one of evaluate"),
        ({"score": None}, InvalidArgumentError, "exactly one of evaluate"),
        ({"latency": lambda spec: 0.0}, InvalidArgumentError, "latency.* of trial 0 must be > 0"),
        ({"latency": lambda spec: float("nan")}, InvalidArgumentError, "finite"),
        ({"score": lambda spec: 1.5}, InvalidArgumentError, "accuracy of trial 0 must be <= 1"),
        ({"strategy": "evolution"}, InvalidArgumentError, "Unknown search strategy 'evo"),
        ({"strategy": RandomSearch((2, 2))}, InvalidArgumentError, "num_options does not match"),
        ({"strategy": 3}, ArgumentTypeError, "strategy must be a name"),
        ({"budget": 0}, InvalidArgumentError, "budget must be >= 1"),
        ({"reward": 60.0}, ArgumentTypeError, "reward must be a Reward"),
        ({"latency": 5}, ArgumentTypeError, "latency must be callable"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        _search(**kwargs)


def test_latency_is_timed_only_while_no_trial_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every latency is taken before the executor opens (a Ray cluster's start keeps the cores
    busy) or between batches, never while one of the search's trials trains."""
    import mnaszoo.search.run.runner as runner
    from mnaszoo.search.run.trials import InProcessExecutor

    events: list[str] = []
    running = {"trials": False}

    class Watched(InProcessExecutor):
        def run(self, function: Any, tasks: Any) -> Any:
            running["trials"] = True
            try:
                yield from super().run(function, tasks)
            finally:
                running["trials"] = False

    def open_executor(*args: Any) -> Watched:
        events.append("open")
        return Watched()

    def latency(spec: NetworkSpec) -> float:
        assert not running["trials"], "latency timed while a trial trains"
        events.append("time")
        return fake_latency(spec)

    monkeypatch.setattr(runner, "_open_executor", open_executor)
    result = run_search(
        SPACE,
        latency=latency,
        score=fake_accuracy,
        reward=REWARD,
        budget=6,
        strategy="controller",
        seed=0,
        workers=2,
    )
    assert len(result.trials) == 6
    assert events.index("open") > 0 and events.count("open") == 1  # opened after the first timing
    reference = _search(seed=0, budget=6)
    assert _without_time(result) == _without_time(reference)  # the same search in-process
