"""Registry, factory arguments, width/depth scaling rules and their error messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mnaszoo
from mnaszoo.models.plan import make_divisible, resolve_plan, scale_channels
from mnaszoo.models.registry import MODELS

EXPECTED_NAMES = [
    "mnasnet_a1",
    "mnasnet_a1_035",
    "mnasnet_a1_050",
    "mnasnet_a1_075",
    "mnasnet_a1_140",
    "mnasnet_b1",
    "mnasnet_b1_050",
    "mnasnet_b1_075",
    "mnasnet_b1_130",
    "mnasnet_b1_140",
    "mnasnet_d1",
    "mnasnet_d1_320",
    "mnasnet_small",
]


def test_list_models() -> None:
    assert mnaszoo.list_models() == EXPECTED_NAMES
    assert mnaszoo.list_models("mnasnet_a1_*") == EXPECTED_NAMES[1:5]
    assert mnaszoo.list_models("resnet*") == []
    with pytest.raises(mnaszoo.ArgumentTypeError):
        mnaszoo.list_models(3)  # type: ignore[arg-type]


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        MODELS["mine"] = MODELS["mnasnet_a1"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("mnasnet_a", "Did you mean 'mnasnet_a1'"),
        ("mnasnet-b1", "Did you mean 'mnasnet_b1'"),
        ("mnasnet_a1.no_such_tag", "has no '.<tag>'"),  # a known weights id is a name too
        ("resnet50", "Available models: mnasnet_a1, "),
    ],
)
def test_unknown_name(name: str, hint: str) -> None:
    with pytest.raises(mnaszoo.UnknownModelError) as info:
        mnaszoo.create(name)
    assert isinstance(info.value, ValueError)
    assert f"Unknown model {name!r}." in str(info.value) and hint in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_classes": -1}, mnaszoo.InvalidArgumentError, "num_classes must be >= 0, got -1"),
        ({"num_classes": 10.0}, mnaszoo.ArgumentTypeError, "num_classes must be an int, got float"),
        ({"width_mult": 0}, mnaszoo.InvalidArgumentError, "width_mult must be > 0.0, got 0"),
        ({"width_mult": 9}, mnaszoo.InvalidArgumentError, "width_mult must be <= 8.0, got 9"),
        ({"width_mult": "1.0"}, mnaszoo.ArgumentTypeError, "width_mult must be a number"),
        ({"depth_mult": float("inf")}, mnaszoo.InvalidArgumentError, "must be a finite number"),
        ({"in_chans": 0}, mnaszoo.InvalidArgumentError, "in_chans must be >= 1, got 0"),
        ({"drop_rate": 1.0}, mnaszoo.InvalidArgumentError, "drop_rate must be < 1.0, got 1.0"),
        ({"drop_path_rate": -0.1}, mnaszoo.InvalidArgumentError, "drop_path_rate must be >= 0.0"),
        ({"bn_eps": 0}, mnaszoo.InvalidArgumentError, "bn_eps must be > 0.0, got 0"),
        (
            {"bn_momentum": 0.99},
            mnaszoo.InvalidArgumentError,
            "TensorFlow's decay convention; mnaszoo takes PyTorch's momentum = 1 - decay",
        ),
        ({"features_only": 1}, mnaszoo.ArgumentTypeError, "features_only must be True or False"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        mnaszoo.create("mnasnet_a1", **kwargs)  # type: ignore[call-overload]
    assert message in str(info.value)
    assert isinstance(info.value, mnaszoo.MnaszooError)


def test_unexpected_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="drop_rat"):
        mnaszoo.create("mnasnet_a1", drop_rat=0.1)  # type: ignore[call-overload]


def test_width_override() -> None:
    model = mnaszoo.create("mnasnet_a1", width_mult=0.5)
    assert model.config.width_mult == 0.5
    assert sum(p.numel() for p in model.parameters()) == 2_082_006
    assert mnaszoo.create("mnasnet_a1_075", width_mult=0.75).config.width_mult == 0.75
    with pytest.raises(
        mnaszoo.InvalidArgumentError,
        match=r"'mnasnet_a1_075' fixes width_mult=0.75.*create\('mnasnet_a1'",
    ):
        mnaszoo.create("mnasnet_a1_075", width_mult=0.5)


def tv_round_to_multiple_of(val: float, divisor: int, round_up_bias: float = 0.9) -> int:
    """torchvision/models/mnasnet.py ``_round_to_multiple_of``, verbatim, as the reference."""
    assert 0.0 < round_up_bias < 1.0
    new_val = max(divisor, int(val + divisor / 2) // divisor * divisor)
    return new_val if new_val >= round_up_bias * val else new_val + divisor


def test_make_divisible_matches_torchvision() -> None:
    values = [v / 4 for v in range(1, 4000)] + [
        c * m for c in (16, 24, 36, 40, 1280) for m in (0.35, 0.5, 0.75, 1.3, 1.4, 2.0)
    ]
    mismatches = [v for v in values if make_divisible(v) != tv_round_to_multiple_of(v, 8)]
    assert mismatches == []


@pytest.mark.parametrize(
    ("alpha", "depths"),
    [  # torchvision _get_depths(alpha) == timm mnasnet_* (reference section 3)
        (0.5, [16, 8, 16, 24, 40, 48, 96, 160]),
        (0.75, [24, 16, 24, 32, 64, 72, 144, 240]),
        (1.0, [32, 16, 24, 40, 80, 96, 192, 320]),
        (1.3, [40, 24, 32, 56, 104, 128, 248, 416]),
        (1.4, [48, 24, 32, 56, 112, 136, 272, 448]),
    ],
)
def test_b1_widths_match_torchvision(alpha: float, depths: list[int]) -> None:
    plan = resolve_plan(mnaszoo.MNASNET_B1, alpha)
    assert [plan.stem_channels] + [stage[0].out_channels for stage in plan.stages] == depths


@pytest.mark.parametrize(
    ("alpha", "stem", "outs", "se"),
    [  # timm semnasnet_* (reference section 3): SE widths of (first, repeat) per SE stage
        (0.75, 24, [16, 24, 32, 64, 88, 120, 240], [(6, 8), (16, 22), (22, 30)]),
        (1.4, 48, [24, 32, 56, 112, 160, 224, 448], [(8, 14), (28, 40), (40, 56)]),
    ],
)
def test_a1_widths_match_timm(
    alpha: float, stem: int, outs: list[int], se: list[tuple[int, int]]
) -> None:
    plan = resolve_plan(mnaszoo.MNASNET_A1, alpha)
    assert plan.stem_channels == stem
    assert [stage[0].out_channels for stage in plan.stages] == outs
    assert [(plan.stages[s][0].se_channels, plan.stages[s][1].se_channels) for s in (2, 4, 5)] == se


def test_width_one_keeps_declared_channels() -> None:
    # TF keeps D1's 36 channels without a multiplier; rounding would give 40.
    assert scale_channels(36, 1.0) == 36 and scale_channels(36, 1.0001) == 40
    plan = resolve_plan(mnaszoo.MNASNET_D1)
    assert plan.stages[1][0].out_channels == 36 and plan.stages[2][0].mid_channels == 324


def test_depth_multiplier_rounds_up() -> None:
    plan = resolve_plan(mnaszoo.MNASNET_A1, depth_mult=1.2)
    assert [len(stage) for stage in plan.stages] == [2, 3, 4, 5, 3, 4, 2]
    assert all(block.stride == 1 for stage in plan.stages for block in stage[1:])


def test_small_residuals_follow_timm() -> None:
    plan = resolve_plan(mnaszoo.MNASNET_SMALL)
    assert [[b.residual for b in stage] for stage in plan.stages] == [
        [True],
        [False],
        [False, True],
        [False, True, True, True],
        [True, True, True],
        [False, True, True],
        [False],
    ]


def test_import_is_light() -> None:
    code = (
        "import sys, mnaszoo; mnaszoo.list_models(); mnaszoo.describe('mnasnet_a1');"
        " heavy = [m for m in ('torch', 'huggingface_hub', 'safetensors', 'PIL', 'numpy')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
