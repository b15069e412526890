"""The TF-style block-string codec: strict errors and the round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from mnaszoo import BlockKind, SpecError, StageSpec, decode_block, decode_stages, encode_block
from mnaszoo.errors import ArgumentTypeError


def test_decode_full_string() -> None:
    decoded = decode_block("r2_k5_s22_e6_i16_o24_se0.25_noskip")
    assert decoded.in_channels == 16
    assert decoded.stage == StageSpec(BlockKind.MB, 2, 5, 2, 6, 24, se_ratio=0.25, skip=False)


def test_expansion_one_is_depthwise_separable_unless_told() -> None:
    assert decode_block("r1_k3_s11_e1_i32_o16").stage.kind is BlockKind.DS
    assert decode_block("r1_k3_s11_e1_i32_o16_mb").stage.kind is BlockKind.MB
    assert decode_block("r1_k3_s22_e1_i32_o16_conv").stage.kind is BlockKind.CONV
    assert encode_block(StageSpec("conv", 1, 3, 2, 1, 16), 32) == "r1_k3_s22_e1_i32_o16_conv"


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("r2_k3_s22_e6_i16_o24_sx0.25", "'sx0.25'"),  # TF silently ignores this typo
        ("r2_k3_s2_e6_i16_o24", "'s2'"),
        ("r2_k3_s21_e6_i16_o24", "'s21'"),
        ("r2_k3_s22_e6_i16_o24_r3", "'r3'"),
        ("r2_k3_s22_e6_i16", "['o']"),
        ("r2_k3_s22_e6_i16_o2x", "'o2x'"),
        ("r2_k3_s22_e6_i16_o24_", "''"),
        ("r2_k3_s22_e6_i16_o24_noskip_noskip", "'noskip'"),
        ("r2_k3_s22_e6_i16_o24_se", "'se'"),
        ("R2_k3_s22_e6_i16_o24", "'R2'"),
        ("r2_k3_s22_e6.5.1_i16_o24", "'e6.5.1'"),
    ],
)
def test_malformed_strings_quote_the_token(text: str, quoted: str) -> None:
    with pytest.raises(SpecError) as info:
        decode_block(text)
    assert quoted in str(info.value)
    assert repr(text) in str(info.value) or quoted in str(info.value)


def test_values_are_validated_by_the_spec() -> None:
    with pytest.raises(SpecError, match="kernel must be one of"):
        decode_block("r1_k4_s11_e6_i16_o24")
    with pytest.raises(SpecError, match="Two block kinds"):
        decode_block("r1_k3_s11_e6_i16_o24_mb_ds")
    with pytest.raises(ArgumentTypeError):
        decode_block(b"r1_k3_s11_e6_i16_o24")  # type: ignore[arg-type]


def test_decode_stages_checks_the_chain() -> None:
    with pytest.raises(SpecError, match=r"declares i16, but the stem outputs 8 channels"):
        decode_stages(["r1_k3_s11_e1_i16_o8"], stem_channels=8)
    with pytest.raises(SpecError, match=r"stage 0 outputs 24"):
        decode_stages(["r1_k3_s11_e6_i8_o24", "r1_k3_s11_e6_i16_o24"], stem_channels=8)
    with pytest.raises(ArgumentTypeError):
        decode_stages("r1_k3_s11_e6_i8_o24", stem_channels=8)


stages = st.builds(
    StageSpec,
    kind=st.sampled_from(list(BlockKind)),
    repeats=st.integers(1, 12),
    kernel=st.sampled_from([3, 5, 7]),
    stride=st.sampled_from([1, 2]),
    expansion=st.just(1.0),
    out_channels=st.integers(1, 2048),
    se_ratio=st.one_of(st.just(0.0), st.floats(1e-6, 0.99, allow_nan=False)),
    skip=st.booleans(),
)
mb_stages = st.builds(
    StageSpec,
    kind=st.just(BlockKind.MB),
    repeats=st.integers(1, 12),
    kernel=st.sampled_from([3, 5, 7]),
    stride=st.sampled_from([1, 2]),
    expansion=st.one_of(st.integers(1, 12), st.floats(1.0, 12.0, allow_nan=False)),
    out_channels=st.integers(1, 2048),
    se_ratio=st.one_of(st.just(0.0), st.floats(1e-6, 0.99, allow_nan=False)),
    skip=st.booleans(),
)


@given(stage=st.one_of(stages, mb_stages), in_channels=st.integers(1, 4096))
def test_round_trip(stage: StageSpec, in_channels: int) -> None:
    text = encode_block(stage, in_channels)
    decoded = decode_block(text)
    assert decoded.stage == stage
    assert decoded.in_channels == in_channels
    assert encode_block(decoded.stage, decoded.in_channels) == text
