"""Rename state dicts between mnaszoo's layout and timm's or torchvision's.

Conversion renames keys only: tensors are passed through untouched (same objects, no copies).
Every key goes through an explicit table, and a key that no rule maps raises
:class:`~mnaszoo.errors.IncompatibleWeightsError` naming it, so nothing is dropped silently.
torchvision's version-1 stem (32/16 channels at any width) uses the same keys; only the shapes
differ, which the model built to receive the weights must match.
"""

from __future__ import annotations

import re
import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ..errors import IncompatibleWeightsError, InvalidArgumentError
from .manifest import LAYOUTS, Layout

__all__ = ["LAYOUTS", "Layout", "detect_layout", "from_mnaszoo", "to_mnaszoo"]


# A key each layout always has (the stem convolution), used to recognise it.
_LAYOUT_MARKERS: tuple[tuple[Layout, str], ...] = (
    ("mnaszoo", "stem.conv.weight"),
    ("timm", "conv_stem.weight"),
    ("torchvision", "layers.0.weight"),
)

_CONV = frozenset({"weight"})
_BN = frozenset({"weight", "bias", "running_mean", "running_var", "num_batches_tracked"})
_AFFINE = frozenset({"weight", "bias"})  # SE 1x1 convolutions and the classifier

# Rows of (mnaszoo module path, publisher module path, parameter names the module has).
_Table = tuple[tuple[str, str, frozenset[str]], ...]

_TIMM_TOP: _Table = (
    ("stem.conv", "conv_stem", _CONV),
    ("stem.bn", "bn1", _BN),
    ("head.conv", "conv_head", _CONV),
    ("head.bn", "bn2", _BN),
    ("classifier", "classifier", _AFFINE),
)
_TIMM_SE: _Table = (
    ("se.reduce", "se.conv_reduce", _AFFINE),
    ("se.expand", "se.conv_expand", _AFFINE),
)
_TIMM_BLOCKS: dict[str, _Table] = {
    "ds": (
        ("dw.conv", "conv_dw", _CONV),
        ("dw.bn", "bn1", _BN),
        ("project.conv", "conv_pw", _CONV),
        ("project.bn", "bn2", _BN),
        *_TIMM_SE,
    ),
    "mb": (
        ("expand.conv", "conv_pw", _CONV),
        ("expand.bn", "bn1", _BN),
        ("dw.conv", "conv_dw", _CONV),
        ("dw.bn", "bn2", _BN),
        ("project.conv", "conv_pwl", _CONV),
        ("project.bn", "bn3", _BN),
        *_TIMM_SE,
    ),
}
# torchvision's MNASNet is one flat Sequential up to the first inverted-residual stack.
_TV_TOP: _Table = (
    ("stem.conv", "layers.0", _CONV),
    ("stem.bn", "layers.1", _BN),
    ("stages.0.0.dw.conv", "layers.3", _CONV),
    ("stages.0.0.dw.bn", "layers.4", _BN),
    ("stages.0.0.project.conv", "layers.6", _CONV),
    ("stages.0.0.project.bn", "layers.7", _BN),
    ("head.conv", "layers.14", _CONV),
    ("head.bn", "layers.15", _BN),
    ("classifier", "classifier.1", _AFFINE),
)
_TV_BLOCKS: dict[str, _Table] = {
    "mb": (
        ("expand.conv", "layers.0", _CONV),
        ("expand.bn", "layers.1", _BN),
        ("dw.conv", "layers.3", _CONV),
        ("dw.bn", "layers.4", _BN),
        ("project.conv", "layers.6", _CONV),
        ("project.bn", "layers.7", _BN),
    ),
}
_KIND_NAMES = {"ds": "depthwise-separable", "mb": "inverted-residual", "conv": "regular-conv"}


@dataclass(frozen=True)
class _Scheme:
    """How one publisher's module paths relate to mnaszoo's."""

    top: _Table  # whole-network modules
    blocks: dict[str, _Table]  # per block kind: module paths inside a block
    block_pattern: re.Pattern[str]  # publisher block module -> (stage, index, rest)
    block_format: str  # publisher block path from (stage, index)
    stage_shift: int  # publisher stage number minus mnaszoo stage number
    stages: range  # the mnaszoo stages held in publisher blocks
    markers: tuple[tuple[str, str], ...]  # (kind, sub-module only it has); "" matches any block
    accepted: str  # what the layout holds, for error messages


_SCHEMES: dict[str, _Scheme] = {
    "timm": _Scheme(
        top=_TIMM_TOP,
        blocks=_TIMM_BLOCKS,
        block_pattern=re.compile(r"blocks\.(\d+)\.(\d+)\.(.+)"),
        block_format="blocks.{}.{}",
        stage_shift=0,
        stages=range(sys.maxsize),
        markers=(("mb", "conv_pwl."), ("ds", "")),
        accepted="timm's EfficientNet layout: conv_stem, bn1, blocks.S.J.{conv_pw, bn1, conv_dw,"
        " bn2, se.conv_reduce, se.conv_expand, conv_pwl, bn3}, conv_head, bn2, classifier",
    ),
    "torchvision": _Scheme(
        top=_TV_TOP,
        blocks=_TV_BLOCKS,
        block_pattern=re.compile(r"layers\.(\d+)\.(\d+)\.(.+)"),
        block_format="layers.{}.{}",
        stage_shift=7,
        stages=range(1, 7),
        markers=(("mb", ""),),
        accepted="torchvision's MNASNet (MnasNet-B1): layers.0-7 (stem and one depthwise-separable"
        " block), layers.8-13.J.layers.{0,1,3,4,6,7} (inverted-residual blocks, no"
        " squeeze-and-excitation), layers.14-15 (head), classifier.1",
    ),
}
_ZOO_BLOCK = re.compile(r"stages\.(\d+)\.(\d+)\.(.+)")
_ZOO_MARKERS = (("conv", "conv."), ("mb", "expand."), ("ds", ""))

_Rows = dict[str, tuple[str, frozenset[str]]]


@dataclass(frozen=True)
class _Direction:
    """Renaming rules from one layout to another, by module path (parameter names are kept)."""

    source: str
    target: str
    top: _Rows
    blocks: dict[str, _Rows]
    pattern: re.Pattern[str]
    target_format: str
    shift: int
    stages: range
    markers: tuple[tuple[str, str], ...]
    accepted: str


def _rows(table: _Table, *, to_zoo: bool) -> _Rows:
    return {
        (pub if to_zoo else zoo): ((zoo if to_zoo else pub), names) for zoo, pub, names in table
    }


def _direction(layout: str, *, to_zoo: bool) -> _Direction:
    s = _SCHEMES[layout]
    shift = -s.stage_shift if to_zoo else s.stage_shift
    return _Direction(
        source=layout if to_zoo else "mnaszoo",
        target="mnaszoo" if to_zoo else layout,
        top=_rows(s.top, to_zoo=to_zoo),
        blocks={kind: _rows(table, to_zoo=to_zoo) for kind, table in s.blocks.items()},
        pattern=s.block_pattern if to_zoo else _ZOO_BLOCK,
        target_format="stages.{}.{}" if to_zoo else s.block_format,
        shift=shift,
        stages=range(s.stages.start - shift, s.stages.stop - shift) if to_zoo else s.stages,
        markers=s.markers if to_zoo else _ZOO_MARKERS,
        accepted=s.accepted,
    )


class _NoRuleError(Exception):
    """Internal: no rule maps a key (the argument says why)."""


def _block_kinds(keys: list[str], d: _Direction) -> dict[tuple[int, str], str]:
    """Each block's kind, from the sub-modules it has (e.g. timm's ``conv_pwl`` = inverted)."""
    rests: dict[tuple[int, str], list[str]] = {}
    for key in keys:
        match = d.pattern.fullmatch(key.rpartition(".")[0])
        if match:
            rests.setdefault((int(match[1]), match[2]), []).append(match[3] + ".")
    return {
        block: next(kind for kind, mark in d.markers if any(r.startswith(mark) for r in found))
        for block, found in rests.items()
    }


def _rename(key: str, d: _Direction, kinds: dict[tuple[int, str], str]) -> str:
    module, _, name = key.rpartition(".")
    if module in d.top:
        new_module, names = d.top[module]
    else:
        match = d.pattern.fullmatch(module)
        if match is None:
            raise _NoRuleError(f"not a {d.source} module path that maps to {d.target}")
        stage, index, rest = int(match[1]), match[2], match[3]
        if stage not in d.stages:
            raise _NoRuleError(f"stage {stage} is outside the blocks {d.target} can hold")
        kind = kinds[(stage, index)]
        if kind not in d.blocks:
            raise _NoRuleError(
                f"a {_KIND_NAMES[kind]} block, which {d.target} has no counterpart for"
            )
        if rest not in d.blocks[kind]:
            raise _NoRuleError(f"{rest!r} is not part of a {d.target} {_KIND_NAMES[kind]} block")
        new_rest, names = d.blocks[kind][rest]
        new_module = f"{d.target_format.format(stage + d.shift, index)}.{new_rest}"
    if name not in names:
        raise _NoRuleError(f"{module!r} has no parameter {name!r}")
    return f"{new_module}.{name}"


def _convert(state_dict: Mapping[str, torch.Tensor], d: _Direction) -> dict[str, torch.Tensor]:
    kinds = _block_kinds(list(state_dict), d)
    out: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for key, tensor in state_dict.items():
        try:
            out[_rename(key, d, kinds)] = tensor
        except _NoRuleError as why:
            unmapped.append(f"{key!r} ({why})")
    if unmapped:
        shown = "; ".join(unmapped[:5]) + ("; ..." if len(unmapped) > 5 else "")
        raise IncompatibleWeightsError(
            f"Cannot convert from the {d.source} layout to {d.target}: {len(unmapped)} key(s) have"
            f" no mapping: {shown}. Expected {d.accepted}. Check the layout argument"
            " (detect_layout tells it), or remove or rename the extra keys."
        )
    return out


def _check_layout(layout: object) -> Layout:
    for known in LAYOUTS:
        if layout == known:
            return known
    raise InvalidArgumentError(f"Unknown layout {layout!r}; accepted layouts are {list(LAYOUTS)}.")


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> Layout:
    """Tell which layout a state dict uses, from its stem convolution key.

    Args:
        state_dict: tensor names to tensors, wrapper prefixes already removed (see
            :func:`mnaszoo.weights.checkpoint.read_checkpoint`).

    Returns:
        ``"mnaszoo"`` (``stem.conv.weight``), ``"timm"`` (``conv_stem.weight``) or
        ``"torchvision"`` (``layers.0.weight``).

    Raises:
        IncompatibleWeightsError: none, or more than one, of those keys is present.
    """
    found = [layout for layout, key in _LAYOUT_MARKERS if key in state_dict]
    if len(found) == 1:
        return found[0]
    sample = ", ".join(repr(k) for k in list(state_dict)[:5]) or "none"
    accepted = ", ".join(f"{layout} ({key!r})" for layout, key in _LAYOUT_MARKERS)
    problem = f"matches several layouts {found}" if found else "matches no known layout"
    raise IncompatibleWeightsError(
        f"The state dict ({len(state_dict)} keys, first: {sample}) {problem}. Accepted layouts,"
        f" by stem key: {accepted}. Strip wrapper prefixes first (read_checkpoint does) or pass"
        " the layout explicitly."
    )


def to_mnaszoo(state_dict: Mapping[str, torch.Tensor], layout: Layout) -> dict[str, torch.Tensor]:
    """Rename a timm or torchvision state dict to mnaszoo's keys (tensors are not copied).

    Args:
        state_dict: the publisher's tensor names to tensors.
        layout: the layout ``state_dict`` uses (``"mnaszoo"`` returns it unchanged, as a dict).

    Returns:
        A dict with mnaszoo's keys, in the order of ``state_dict``.

    Raises:
        IncompatibleWeightsError: a key has no mapping (the message names it and why).
        InvalidArgumentError: ``layout`` is not one of :data:`LAYOUTS`.
    """
    if _check_layout(layout) == "mnaszoo":
        return dict(state_dict)
    return _convert(state_dict, _direction(layout, to_zoo=True))


def from_mnaszoo(
    state_dict: Mapping[str, torch.Tensor], layout: Layout, *, torchvision_version: int = 2
) -> dict[str, torch.Tensor]:
    """Rename a mnaszoo state dict to timm's or torchvision's keys (tensors are not copied).

    Args:
        state_dict: mnaszoo tensor names to tensors.
        layout: the layout to produce.
        torchvision_version: the ``_metadata`` version to record for torchvision: 2 (current
            layout), or 1 for weights of the 32/16-channel v1 stem at a width other than 1.0.

    Returns:
        A dict with the publisher's keys, in the order of ``state_dict``. For torchvision, an
        ``OrderedDict`` whose ``_metadata`` records the version, which ``MNASNET.load_state_dict``
        requires.

    Raises:
        IncompatibleWeightsError: a key has no counterpart in ``layout`` (e.g. squeeze-and-excite
            or regular-conv blocks for torchvision); the message names it.
        InvalidArgumentError: ``layout`` or ``torchvision_version`` is not accepted.
    """
    if _check_layout(layout) == "mnaszoo":
        return dict(state_dict)
    if torchvision_version not in (1, 2) or isinstance(torchvision_version, bool):
        raise InvalidArgumentError(
            f"torchvision_version must be 1 or 2 (torchvision accepts no other), got"
            f" {torchvision_version!r}."
        )
    converted = _convert(state_dict, _direction(layout, to_zoo=False))
    if layout != "torchvision":
        return converted
    out: OrderedDict[str, torch.Tensor] = OrderedDict(converted)
    out._metadata = {"": {"version": torchvision_version}}  # type: ignore[attr-defined]
    return out
