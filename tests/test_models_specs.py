"""Spec rows and tables: validation messages and the JSON round trip."""

from __future__ import annotations

import json

import pytest

import mnaszoo
from mnaszoo import BlockKind, NetworkSpec, SpecError, StageSpec
from mnaszoo.errors import ArgumentTypeError


def test_kind_accepts_enum_and_string() -> None:
    assert StageSpec("mb", 1, 3, 1, 6, 16).kind is BlockKind.MB
    assert StageSpec(BlockKind.DS, 1, 3, 1, 1, 16).kind is BlockKind.DS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "sep"}, "Unknown block kind 'sep'; accepted kinds are 'conv', 'ds', 'mb'"),
        ({"repeats": 0}, "StageSpec.repeats must be >= 1, got 0"),
        ({"kernel": 4}, "StageSpec.kernel must be one of (3, 5, 7), got 4"),
        ({"stride": 3}, "StageSpec.stride must be one of (1, 2), got 3"),
        ({"expansion": 0.5}, "StageSpec.expansion must be >= 1.0, got 0.5"),
        ({"out_channels": 0}, "StageSpec.out_channels must be >= 1, got 0"),
        ({"se_ratio": 1.0}, "StageSpec.se_ratio must be < 1.0, got 1.0"),
        ({"se_ratio": -0.1}, "StageSpec.se_ratio must be >= 0.0"),
        ({"kind": "ds", "expansion": 6}, "must be 1 for a 'ds' block, got 6"),
        ({"se_ratio": float("nan")}, "must be a finite number"),
    ],
)
def test_stage_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "kind": "mb",
        "repeats": 1,
        "kernel": 3,
        "stride": 1,
        "expansion": 6,
        "out_channels": 16,
    }
    fields.update(kwargs)
    with pytest.raises(SpecError, match=None) as info:
        StageSpec(**fields)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "kwargs", [{"repeats": True}, {"kernel": 3.0}, {"skip": 1}, {"expansion": "6"}]
)
def test_stage_rejects_wrong_types(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "kind": "mb",
        "repeats": 1,
        "kernel": 3,
        "stride": 1,
        "expansion": 6,
        "out_channels": 16,
    }
    fields.update(kwargs)
    with pytest.raises(ArgumentTypeError) as info:
        StageSpec(**fields)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert "got" in str(info.value)


def test_network_rejects_bad_settings() -> None:
    stage = StageSpec("mb", 1, 3, 1, 6, 16)
    with pytest.raises(SpecError, match="at least one StageSpec"):
        NetworkSpec("x", 32, ())
    with pytest.raises(SpecError, match="se_rounding must be one of"):
        NetworkSpec("x", 32, (stage,), se_rounding="ceil")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=r"stages\[1\] must be a StageSpec"):
        NetworkSpec("x", 32, (stage, "mb"))  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"bn_eps must be > 0\.0"):
        NetworkSpec("x", 32, (stage,), bn_eps=0.0)


def test_specs_are_frozen_and_hashable() -> None:
    with pytest.raises(AttributeError):
        mnaszoo.MNASNET_A1.stem_channels = 16  # type: ignore[misc]
    assert len({mnaszoo.MNASNET_A1, mnaszoo.MNASNET_A1.replace(name="mnasnet_a1")}) == 1


@pytest.mark.parametrize("spec", list(mnaszoo.ARCHITECTURES.values()), ids=lambda s: s.name)
def test_json_round_trip(spec: NetworkSpec) -> None:
    data = json.loads(json.dumps(spec.to_dict()))
    assert NetworkSpec.from_dict(data) == spec


def test_from_dict_rejects_unknown_and_missing_keys() -> None:
    data = mnaszoo.MNASNET_B1.to_dict()
    with pytest.raises(SpecError, match=r"unknown keys \['stem'\]"):
        NetworkSpec.from_dict({**data, "stem": 32})
    stage = dict(data["stages"][0])
    del stage["kernel"]
    with pytest.raises(SpecError, match=r"lacks required keys \['kernel'\]"):
        StageSpec.from_dict(stage)


def test_tables_match_the_tf_reference_strings() -> None:
    # The authors' block strings (tensorflow/tpu mnasnet_models.py); small is checked separately.
    tf = {
        "mnasnet_a1": "r1_k3_s11_e1_i32_o16_noskip r2_k3_s22_e6_i16_o24 "
        "r3_k5_s22_e3_i24_o40_se0.25 r4_k3_s22_e6_i40_o80 r2_k3_s11_e6_i80_o112_se0.25 "
        "r3_k5_s22_e6_i112_o160_se0.25 r1_k3_s11_e6_i160_o320",
        "mnasnet_b1": "r1_k3_s11_e1_i32_o16_noskip r3_k3_s22_e3_i16_o24 r3_k5_s22_e3_i24_o40 "
        "r3_k5_s22_e6_i40_o80 r2_k3_s11_e6_i80_o96 r4_k5_s22_e6_i96_o192 "
        "r1_k3_s11_e6_i192_o320_noskip",
        "mnasnet_d1": "r1_k3_s11_e9_i32_o24 r3_k3_s22_e9_i24_o36 r5_k3_s22_e9_i36_o48 "
        "r4_k5_s22_e9_i48_o96 r5_k7_s11_e3_i96_o96 r3_k3_s22_e9_i96_o80 "
        "r1_k7_s11_e6_i80_o320_noskip",
        "mnasnet_d1_320": "r3_k5_s11_e6_i32_o24 r4_k7_s22_e9_i24_o36 r5_k5_s22_e9_i36_o48 "
        "r5_k7_s22_e6_i48_o96 r5_k3_s11_e9_i96_o144 r5_k5_s22_e6_i144_o160 "
        "r1_k7_s11_e9_i160_o320",
    }
    for name, strings in tf.items():
        spec = mnaszoo.ARCHITECTURES[name]
        assert mnaszoo.decode_stages(strings.split(), stem_channels=32) == spec.stages, name
        assert mnaszoo.encode_stages(spec) == strings.split(), name


def test_small_follows_timm_not_tf_on_the_first_residual() -> None:
    # TF declares i16 after an 8-channel stem; mnaszoo's table declares what the stem gives and
    # keeps the identity residual that timm's weights were trained with.
    tf_first = mnaszoo.decode_block("r1_k3_s11_e1_i16_o8")
    assert tf_first.in_channels == 16
    assert mnaszoo.MNASNET_SMALL.stages[0] == tf_first.stage
    assert mnaszoo.MNASNET_SMALL.stages[0].skip
