"""The short-training accuracy proxy and the digits proxy task (mnaszoo.search.proxy.trainer)."""

from __future__ import annotations

import pytest
import torch

import mnaszoo
from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError
from mnaszoo.models.specs import NetworkSpec, StageSpec
from mnaszoo.search.proxy.trainer import ProxyTrainer, load_digits_proxy

pytest.importorskip("sklearn")

# A few-thousand-parameter network: learns the digits in a second or two on one CPU thread.
MINI = NetworkSpec(
    "mini",
    stem_channels=16,
    stages=(
        StageSpec("ds", repeats=1, kernel=3, stride=1, expansion=1, out_channels=16),
        StageSpec("mb", repeats=1, kernel=3, stride=2, expansion=3, out_channels=24),
        StageSpec("mb", repeats=1, kernel=3, stride=2, expansion=3, out_channels=32),
    ),
    head_channels=128,
)


@pytest.fixture(scope="module")
def digits() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    return load_digits_proxy(image_size=32)


def test_load_digits_proxy_is_a_stratified_normalised_split(digits) -> None:  # type: ignore[no-untyped-def]
    (train_x, train_y), (val_x, val_y) = digits
    assert train_x.shape[1:] == val_x.shape[1:] == (3, 32, 32)
    assert train_x.dtype == val_x.dtype == torch.float32
    assert train_y.dtype == torch.int64 and len(train_y) + len(val_y) == 1797
    assert abs(len(val_y) / 1797 - 0.25) < 0.01
    # Every class is split about 3:1.
    for label in range(10):
        n_train, n_val = int((train_y == label).sum()), int((val_y == label).sum())
        assert 2.5 < n_train / n_val < 3.5
    # Background -1, ink up to +1: the example's normalisation.
    assert train_x.min() == pytest.approx(-1.0) and train_x.max() == pytest.approx(1.0)
    again = load_digits_proxy(image_size=32)
    assert torch.equal(again[1][1], val_y)
    other = load_digits_proxy(image_size=32, seed=1)
    assert not torch.equal(other[1][1], val_y)


def test_load_digits_proxy_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="image_size must be >= 16"):
        load_digits_proxy(image_size=8)
    with pytest.raises(InvalidArgumentError, match="val_fraction must be < 1"):
        load_digits_proxy(val_fraction=1.0)


def test_proxy_learns_the_digits_and_is_deterministic(digits) -> None:  # type: ignore[no-untyped-def]
    train, val = digits
    trainer = ProxyTrainer(train, val, epochs=3, threads=1, seed=0)
    model = mnaszoo.build(MINI, num_classes=10)
    state = torch.random.get_rng_state()
    first = trainer(model)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert first > 0.5, f"accuracy {first:.3f} is barely above chance (0.1)"
    # A model built under another global seed is re-initialised from the trainer's seed.
    torch.manual_seed(123)
    assert trainer(mnaszoo.build(MINI, num_classes=10)) == first


def test_proxy_ranks_a_crippled_model_lower(digits) -> None:  # type: ignore[no-untyped-def]
    train, val = digits
    trainer = ProxyTrainer(train, val, epochs=3, threads=1)
    good = trainer(mnaszoo.build(MINI, num_classes=10))
    # Four channels through the whole network and an 8-channel head.
    crippled = MINI.replace(
        stem_channels=4,
        stages=(StageSpec("ds", repeats=1, kernel=3, stride=2, expansion=1, out_channels=4),),
        head_channels=8,
    )
    bad = trainer(mnaszoo.build(crippled, num_classes=10))
    assert good > bad + 0.1, (good, bad)


def test_proxy_validates_inputs(digits) -> None:  # type: ignore[no-untyped-def]
    (x, y), val = digits
    with pytest.raises(ArgumentTypeError, match="pair"):
        ProxyTrainer(x, val)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="int64"):
        ProxyTrainer((x, y.float()), val)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"\(N, C, H, W\)"):
        ProxyTrainer((x[:, 0], y), val)
    with pytest.raises(InvalidArgumentError, match="as many labels as images"):
        ProxyTrainer((x, y[:-1]), val)
    with pytest.raises(InvalidArgumentError, match=">= 0"):
        ProxyTrainer((x, y - 1), val)
    with pytest.raises(InvalidArgumentError, match="differ in shape"):
        ProxyTrainer((x, y), (val[0][:, :, :16, :16], val[1]))
    with pytest.raises(InvalidArgumentError, match="optimizer"):
        ProxyTrainer((x, y), val, optimizer="lion")
    with pytest.raises(InvalidArgumentError, match="epochs must be >= 1"):
        ProxyTrainer((x, y), val, epochs=0)
    trainer = ProxyTrainer((x[:64], y[:64]), val, epochs=1, threads=1)
    with pytest.raises(InvalidArgumentError, match="num_classes=10"):
        trainer(mnaszoo.build(MINI, num_classes=5))
    with pytest.raises(ArgumentTypeError, match="torch module"):
        trainer("mini")  # type: ignore[arg-type]
