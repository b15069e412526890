"""The factorised hierarchical search space: sizes, token codec, specs that build and run."""

from __future__ import annotations

import itertools
import json
import random

import pytest
import torch

import mnaszoo
from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError
from mnaszoo.models.plan import make_divisible, resolve_plan
from mnaszoo.models.specs import BlockKind
from mnaszoo.search.choices import FIELDS, MOBILENET_V2_BASE, BaseBlock, BlockChoice
from mnaszoo.search.space import SearchSpace

KINDS = {
    "conv": (BlockKind.CONV, 1),
    "dconv": (BlockKind.DS, 1),
    "mb3": (BlockKind.MB, 3),
    "mb6": (BlockKind.MB, 6),
}


def test_default_space_has_the_papers_size() -> None:
    space = SearchSpace()
    assert space.num_options == (4, 2, 2, 2, 3, 3) * 7
    assert space.choices_per_block == 288
    assert space.size == 288**7
    assert [(d.block, d.field) for d in space.decisions[:7]] == [
        (0, "op"),
        (0, "kernel"),
        (0, "se_ratio"),
        (0, "skip"),
        (0, "filters"),
        (0, "layers"),
        (1, "op"),
    ]


def test_distinct_size_of_the_default_space_by_hand() -> None:
    # Per block: 4 ops x 2 kernels x 2 SE = 16, times the distinct (width, depth, skip) combos.
    # Block 0 (16 ch, 1 layer): widths {16, 16, 24} -> 2; depths {1, 1, 2}; skip only matters
    #   with 2 layers (the first layer changes width 32 -> 16/24): (1 + 2) x 2 = 6.
    # Block 1 (24 ch, 2 layers): widths {24, 24, 32} -> 2; depths {1, 2, 3}: (1 + 2 + 2) x 2 = 10.
    # Blocks 2-5: 3 widths, 3 depths >= 2, skip always matters: 3 x 3 x 2 = 18.
    # Block 6 (320 ch, 1 layer): 3 widths; depths {1, 1, 2}: (1 + 2) x 3 = 9.
    expected = 16**7 * 6 * 10 * 18**4 * 9
    space = SearchSpace()
    assert space.distinct_size() == expected < space.size
    assert "distinct" in repr(space) and "288^7" in repr(space)
    assert "distinct networks" in space.describe()


def test_distinct_size_matches_brute_force_on_a_small_space() -> None:
    space = SearchSpace(
        (BaseBlock(1, 16, 1, 1), BaseBlock(6, 24, 2, 2)),
        ops=("dconv", "mb3"),
        kernels=(3,),
        se_ratios=(0.0, 0.25),
        skips=(False, True),
        filters=(0.75, 1.0),
        layers=(-1, 0),
    )
    plans = {
        resolve_plan(space.to_spec(tokens)).stages
        for tokens in itertools.product(*(range(n) for n in space.num_options))
    }
    assert space.distinct_size() == len(plans)
    assert space.size == 32**2


def _check_spec_matches(space: SearchSpace, tokens: tuple[int, ...]) -> None:
    spec = space.to_spec(tokens)
    assert spec.stem_channels == 32 and spec.head_channels == 1280
    for block, (base, stage) in enumerate(zip(MOBILENET_V2_BASE, spec.stages, strict=True)):
        picked = {
            name: space.options[name][tokens[block * len(FIELDS) + i]]
            for i, name in enumerate(FIELDS)
        }
        assert (stage.kind, stage.expansion) == KINDS[picked["op"]]
        assert stage.kernel == picked["kernel"]
        assert stage.se_ratio == picked["se_ratio"]
        assert stage.skip is picked["skip"]
        assert stage.out_channels == make_divisible(base.channels * picked["filters"])
        assert stage.repeats == max(1, base.repeats + picked["layers"])
        assert stage.stride == base.stride


def test_samples_match_their_tokens() -> None:
    space = SearchSpace()
    rng = random.Random(7)
    for _ in range(300):
        _check_spec_matches(space, space.sample(rng))


@pytest.mark.usefixtures("one_thread")
def test_every_sample_builds_and_runs() -> None:
    space = SearchSpace()
    rng = random.Random(2024)
    image = torch.randn(1, 3, 32, 32)  # 32 px is enough to reach the 1x1 final feature map
    for _ in range(20):
        tokens = space.sample(rng)
        model = mnaszoo.build(space.to_spec(tokens), num_classes=10).eval()
        with torch.no_grad():
            logits = model(image)
        assert logits.shape == (1, 10) and torch.isfinite(logits).all()


def test_layers_clamp_to_one_and_widths_round() -> None:
    space = SearchSpace()
    choices = list(space.decode(space.base_tokens()))
    choices[0] = BlockChoice("dconv", 3, 0.0, True, 0.75, -1)  # 1 layer - 1 -> clamped to 1
    choices[6] = BlockChoice("mb6", 5, 0.25, False, 1.25, 1)
    spec = space.to_spec(choices)
    assert spec.stages[0].repeats == 1 and spec.stages[0].out_channels == 16  # 12 rounds up
    assert (spec.stages[6].repeats, spec.stages[6].out_channels) == (2, 400)
    assert space.to_spec(space.encode(choices)) == spec


def test_base_tokens_are_mobilenet_v2() -> None:
    space = SearchSpace()
    spec = space.to_spec(space.base_tokens())
    assert spec.stages[0].kind is BlockKind.DS  # MobileNetV2's expansion-1 block
    rows = [(s.expansion, s.out_channels, s.repeats, s.stride) for s in spec.stages]
    assert rows == [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    assert all(s.kernel == 3 and s.se_ratio == 0.0 and s.skip for s in spec.stages)


def test_base_tokens_pick_the_nearest_option() -> None:
    space = SearchSpace(ops=("conv", "mb4"), kernels=(5, 7), layers=(1, 2), filters=(1.25, 2.0))
    choice = space.decode(space.base_tokens())[1]
    assert choice == BlockChoice("mb4", 5, 0.0, True, 1.25, 1)


def test_encode_decode_round_trip_and_sampling() -> None:
    space = SearchSpace()
    rng = random.Random(0)
    samples = [space.sample(rng) for _ in range(300)]
    for tokens in samples[:50]:
        choices = space.decode(tokens)
        assert space.encode(choices) == tokens
        assert space.to_spec(choices) == space.to_spec(tokens)
    # Every option of every decision turns up in 300 uniform samples.
    for position, count in enumerate(space.num_options):
        assert {t[position] for t in samples} == set(range(count))
    assert space.sample(random.Random(5)) == space.sample(random.Random(5))


def test_space_json_round_trip_and_equality() -> None:
    space = SearchSpace(kernels=(3, 5, 7), filters=(0.5, 1.0))
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space and hash(again) == hash(space)
    assert again.to_spec(again.base_tokens()) == space.to_spec(space.base_tokens())
    assert space != SearchSpace()
    with pytest.raises(InvalidArgumentError, match="exactly the keys"):
        SearchSpace.from_dict({"base": []})


@pytest.mark.parametrize(
    ("tokens", "error", "message"),
    [
        ((0,) * 41, InvalidArgumentError, "must hold 42 indices"),
        (
            (0,) * 41 + (3,),
            InvalidArgumentError,
            r"tokens\[41\] \(block 6 'layers'\) must be in 0..2",
        ),
        ((4,) + (0,) * 41, InvalidArgumentError, "'op'.*'conv', 'dconv', 'mb3', 'mb6'"),
        ((-1,) + (0,) * 41, InvalidArgumentError, "must be in 0..3"),
        ((True,) + (0,) * 41, ArgumentTypeError, "must be an int"),
        ("0" * 42, ArgumentTypeError, "tuple or list of ints"),
    ],
)
def test_invalid_tokens_raise_clear_errors(
    tokens: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SearchSpace().to_spec(tokens)  # type: ignore[arg-type]


def test_invalid_choices_raise_clear_errors() -> None:
    space = SearchSpace()
    choices = list(space.decode(space.base_tokens()))
    with pytest.raises(InvalidArgumentError, match="one BlockChoice per block"):
        space.encode(choices[:3])
    choices[2] = BlockChoice("mb6", 7, 0.0, True, 1.0, 0)
    with pytest.raises(InvalidArgumentError, match=r"Block 2 kernel=7 .* \(3, 5\)"):
        space.encode(choices)
    choices[2] = BlockChoice("mb6", 3, 0.0, 1, 1.0, 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="skip=1"):
        space.to_spec(choices)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ops": ()}, InvalidArgumentError, "at least one option"),
        ({"ops": ("mb6", "mb6")}, InvalidArgumentError, "must not repeat"),
        ({"ops": ("sep",)}, InvalidArgumentError, "Unknown search op 'sep'"),
        ({"ops": ("mb0",)}, InvalidArgumentError, "Unknown search op"),
        ({"kernels": (4,)}, InvalidArgumentError, r"kernels\[0\] must be one of \(3, 5, 7\)"),
        ({"se_ratios": (1.0,)}, InvalidArgumentError, "must be < 1.0"),
        ({"skips": (0, 1)}, ArgumentTypeError, "True or False"),
        ({"filters": (0.0,)}, InvalidArgumentError, "must be > 0.0"),
        ({"layers": (0.5,)}, ArgumentTypeError, "must be an int"),
        ({"layers": 1}, ArgumentTypeError, "tuple or list"),
        ({"base": ()}, ArgumentTypeError, "non-empty tuple of BaseBlock"),
        ({"base": ((6, 24, 2, 2),)}, ArgumentTypeError, "must be a BaseBlock"),
        ({"stem_channels": 0}, InvalidArgumentError, "stem_channels must be >= 1"),
    ],
)
def test_invalid_space_settings(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SearchSpace(**kwargs)  # type: ignore[arg-type]


def test_invalid_base_block() -> None:
    with pytest.raises(InvalidArgumentError, match="stride must be <= 2"):
        BaseBlock(6, 24, 2, 3)
