"""A strict codec for TF-style MnasNet block strings, e.g. ``r2_k3_s22_e6_i16_o24_se0.25``.

Tokens, separated by ``_``, in any order:

==========  ===========================================================  ==========
token       meaning                                                       required
==========  ===========================================================  ==========
``rN``      repeats                                                       yes
``kN``      kernel size (3, 5 or 7)                                       yes
``sNN``     stride as two equal digits, TF style (``s11``, ``s22``)       yes
``eN``      expansion ratio                                               yes
``iN``      input channels                                                yes
``oN``      output channels                                               yes
``seF``     squeeze-and-excitation ratio                                  no
``noskip``  no identity residual                                          no
``ds`` ...  block kind ``ds``, ``mb`` or ``conv``; TF infers it from
            ``e`` (``e1`` = depthwise-separable, else MBConv), so it is
            written only where that inference would be wrong              no
==========  ===========================================================  ==========

Unlike TF's decoder, which ignores unknown keys, every unknown, duplicated, missing or malformed
token raises a :class:`~mnaszoo.errors.SpecError` that quotes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ..errors import ArgumentTypeError, SpecError
from .specs import BlockKind, NetworkSpec, StageSpec

__all__ = ["BlockString", "decode_block", "decode_stages", "encode_block", "encode_stages"]

_NUMERIC_KEYS = ("r", "k", "s", "e", "i", "o", "se")
_REQUIRED_KEYS = ("r", "k", "s", "e", "i", "o")
_TOKEN = re.compile(r"^([a-z]+)(\d.*)?$")
_INT = re.compile(r"^\d+$")
_FLOAT = re.compile(r"^\d+(\.\d+)?$")


@dataclass(frozen=True)
class BlockString:
    """A decoded block string: the stage and the input width it declares."""

    stage: StageSpec
    in_channels: int


def _inferred_kind(expansion: float) -> BlockKind:
    return BlockKind.DS if expansion == 1 else BlockKind.MB


def _format_number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    # Decimal of the shortest repr gives the same digits without exponent notation ("1e-05").
    return format(Decimal(repr(float(value))), "f")


def encode_block(stage: StageSpec, in_channels: int) -> str:
    """Encode ``stage`` (whose first block receives ``in_channels``) as a TF-style block string.

    Args:
        stage: the stage to encode.
        in_channels: the input width of its first block (the ``i`` token).

    Returns:
        The block string; a kind token is added only where TF's inference from ``e`` would be
        wrong, ``noskip`` only for ``skip=False``.

    Raises:
        ArgumentTypeError: ``stage`` is not a :class:`~mnaszoo.models.specs.StageSpec`.

    Example:
        >>> from mnaszoo import MNASNET_A1
        >>> encode_block(MNASNET_A1.stages[2], 24)
        'r3_k5_s22_e3_i24_o40_se0.25'
    """
    if not isinstance(stage, StageSpec):
        raise ArgumentTypeError(f"stage must be a StageSpec, got {type(stage).__name__}.")
    tokens = [
        f"r{stage.repeats}",
        f"k{stage.kernel}",
        f"s{stage.stride}{stage.stride}",
        f"e{_format_number(stage.expansion)}",
        f"i{in_channels}",
        f"o{stage.out_channels}",
    ]
    if stage.se_ratio > 0:
        tokens.append(f"se{_format_number(stage.se_ratio)}")
    if not stage.skip:
        tokens.append("noskip")
    if stage.kind is not _inferred_kind(stage.expansion):
        tokens.append(stage.kind.value)
    return "_".join(tokens)


def _parse_value(text: str, key: str, token: str) -> str:
    pattern = _FLOAT if key in ("e", "se") else _INT
    if not pattern.match(text):
        kind = "a number" if key in ("e", "se") else "an integer"
        raise SpecError(f"Malformed token {token!r} in {text!r}: {key!r} takes {kind}.")
    return text


def decode_block(text: str) -> BlockString:
    """Decode one TF-style block string.

    Args:
        text: e.g. ``"r2_k3_s22_e6_i16_o24_se0.25"``.

    Returns:
        A :class:`BlockString`: the :class:`~mnaszoo.models.specs.StageSpec` and the input width the
        string declares.

    Raises:
        SpecError: an unknown, duplicated, missing or malformed token (quoted in the message), or
            values outside what :class:`~mnaszoo.models.specs.StageSpec` accepts.
        ArgumentTypeError: ``text`` is not a string.

    Example:
        >>> decoded = decode_block("r2_k3_s22_e6_i16_o24_se0.25")
        >>> decoded.in_channels, decoded.stage.repeats, decoded.stage.kind.value
        (16, 2, 'mb')
        >>> decode_block("r2_k3_s22_e6_i16_o24_x1")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        mnaszoo.errors.SpecError: Unknown token 'x1' in block string 'r2_k3_s22_e6_i16_o24_x1'; ...
    """
    if not isinstance(text, str):
        raise ArgumentTypeError(f"A block string must be a str, got {type(text).__name__}.")
    if not text or text != text.strip():
        raise SpecError(f"Malformed block string {text!r}: it is empty or has surrounding spaces.")
    values: dict[str, str] = {}
    flags: set[str] = set()
    kind: BlockKind | None = None
    kinds = {k.value for k in BlockKind}
    for token in text.split("_"):
        match = _TOKEN.match(token)
        if match is None:
            raise SpecError(f"Malformed token {token!r} in block string {text!r}.")
        key, value = match.group(1), match.group(2)
        if value is None and (key == "noskip" or key in kinds):
            if key in flags:
                raise SpecError(f"Duplicated token {token!r} in block string {text!r}.")
            flags.add(key)
            if key in kinds:
                if kind is not None:
                    raise SpecError(f"Two block kinds in block string {text!r}.")
                kind = BlockKind(key)
            continue
        if key not in _NUMERIC_KEYS:
            raise SpecError(
                f"Unknown token {token!r} in block string {text!r}; accepted tokens are"
                f" r, k, s, e, i, o (with a number), se, noskip and the kinds ds, mb, conv."
            )
        if value is None:
            raise SpecError(f"Malformed token {token!r} in block string {text!r}: no value.")
        if key in values:
            raise SpecError(f"Duplicated key {key!r} (token {token!r}) in block string {text!r}.")
        values[key] = _parse_value(value, key, token)
    missing = [key for key in _REQUIRED_KEYS if key not in values]
    if missing:
        raise SpecError(f"Block string {text!r} lacks the required tokens {missing}.")
    stride = values["s"]
    if len(stride) != 2 or stride[0] != stride[1]:
        raise SpecError(
            f"Malformed token 's{stride}' in block string {text!r}: strides are written as two"
            " equal digits, 's11' or 's22'."
        )
    expansion = float(values["e"])
    stage = StageSpec(
        kind=kind if kind is not None else _inferred_kind(expansion),
        repeats=int(values["r"]),
        kernel=int(values["k"]),
        stride=int(stride[0]),
        expansion=expansion,
        out_channels=int(values["o"]),
        se_ratio=float(values.get("se", 0.0)),
        skip="noskip" not in flags,
    )
    return BlockString(stage=stage, in_channels=int(values["i"]))


def encode_stages(spec: NetworkSpec) -> list[str]:
    """Encode every stage of ``spec`` (input widths are the previous stage's output).

    Args:
        spec: the network table.

    Returns:
        One block string per stage, as TF's ``mnasnet_models.py`` writes them.

    Example:
        >>> from mnaszoo import MNASNET_SMALL
        >>> encode_stages(MNASNET_SMALL)[:3]
        ['r1_k3_s11_e1_i8_o8', 'r1_k3_s22_e3_i8_o16', 'r2_k3_s22_e6_i16_o16']
    """
    in_channels = spec.stem_channels
    strings = []
    for stage in spec.stages:
        strings.append(encode_block(stage, in_channels))
        in_channels = stage.out_channels
    return strings


def decode_stages(
    strings: Sequence[str] | Iterable[str], *, stem_channels: int
) -> tuple[StageSpec, ...]:
    """Decode a list of block strings into stages, checking that widths chain from the stem.

    Args:
        strings: the block strings, input to output.
        stem_channels: the stem's output width, which the first string must declare as input.

    Returns:
        The stages, ready for :class:`~mnaszoo.models.specs.NetworkSpec`.

    Raises:
        SpecError: a string is malformed, or a stage's declared input differs from the previous
            output (TF's own ``mnasnet-small`` strings do this: its first block declares 16 inputs
            after an 8-channel stem; mnaszoo's table fixes the declaration).
        ArgumentTypeError: ``strings`` is a single string rather than a list.

    Example:
        >>> stages = decode_stages(
        ...     ["r1_k3_s11_e1_i16_o16", "r2_k5_s22_e6_i16_o24_se0.25"], stem_channels=16
        ... )
        >>> [(s.kind.value, s.repeats, s.out_channels) for s in stages]
        [('ds', 1, 16), ('mb', 2, 24)]
    """
    if isinstance(strings, str):
        raise ArgumentTypeError("decode_stages takes a list of block strings, not one string.")
    stages = []
    expected = stem_channels
    for position, text in enumerate(strings):
        decoded = decode_block(text)
        if decoded.in_channels != expected:
            source = "the stem" if position == 0 else f"stage {position - 1}"
            raise SpecError(
                f"Block string {text!r} (stage {position}) declares i{decoded.in_channels}, but"
                f" {source} outputs {expected} channels; declare i{expected}."
            )
        stages.append(decoded.stage)
        expected = decoded.stage.out_channels
    if not stages:
        raise SpecError("decode_stages needs at least one block string.")
    return tuple(stages)
