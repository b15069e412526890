"""Deterministic synthetic weights and inputs for checkpoint-parity tests.

The parity fixtures under ``tests/fixtures/parity`` were produced by running the publishers' own
code (timm / torchvision) on weights made by this module. The tests rebuild exactly the same
weights without timm or torchvision, convert them with mnaszoo's converters and compare logits.

Bit-for-bit reproducibility across torch / numpy versions and machines is the point, so no random
number generator is used. Each value is a closed-form function of (key name, flat index):

* ``seed = sha256(key name)`` (first 8 bytes, little endian): stable across processes, unlike
  Python's ``hash()``.
* ``z_i = mix64(seed + (i + 1) * GOLDEN)`` with the SplitMix64 finaliser, computed in exact
  wrapping ``uint64`` arithmetic.
* ``s_i = 2 * (z_i >> 11) / 2**53 - 1``: exactly representable in float64, uniform on
  ``[-1, 1)``.

All further arithmetic (scaling, ``abs``, ``sqrt``) is done in IEEE float64, whose basic operations
are correctly rounded, then cast once to float32. Transcendental functions (``sin``, ``exp``) are
deliberately avoided: their last bit may differ between libm / SIMD implementations.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import cast

import numpy as np
import torch

__all__ = [
    "KINDS",
    "kind_for_key",
    "spec_from_entries",
    "state_dict_sha256",
    "synth_input",
    "synth_state_dict",
    "synth_tensor",
    "synth_unit",
]

KINDS: frozenset[str] = frozenset(
    {
        "conv",
        "linear_weight",
        "bias",
        "bn_weight",
        "bn_bias",
        "bn_mean",
        "bn_var",
        "bn_count",
    }
)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

_BN_SUFFIXES: dict[str, str] = {
    "running_mean": "bn_mean",
    "running_var": "bn_var",
    "num_batches_tracked": "bn_count",
}

_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "int64": torch.int64}


def _seed(name: str) -> int:
    """Return a stable 64-bit seed for ``name`` (first 8 bytes of its SHA-256, little endian)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def synth_unit(name: str, n: int) -> np.ndarray:
    """Return ``n`` deterministic float64 values, uniform on ``[-1, 1)``, keyed by ``name``.

    The values are exact dyadic rationals (multiples of ``2**-52``), identical on every platform.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    idx = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(_seed(name)) + idx * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * (2.0**-53)
    out: np.ndarray = 2.0 * u - 1.0
    return out


def _fan_in(shape: tuple[int, ...]) -> int:
    return math.prod(shape[1:]) if len(shape) > 1 else max(math.prod(shape), 1)


def synth_tensor(name: str, shape: tuple[int, ...], kind: str) -> torch.Tensor:
    """Return a deterministic tensor for state-dict key ``name``.

    Args:
        name: state-dict key; it selects the value stream (different keys, different values).
        shape: tensor shape.
        kind: one of :data:`KINDS`:

            * ``conv`` / ``linear_weight``: ``s * sqrt(3 / fan_in)`` with
              ``fan_in = prod(shape[1:])``, i.e. uniform with std ``1 / sqrt(fan_in)``. (He scale,
              std ``sqrt(2 / fan_in)``, blows activations up ~1e5x over a MnasNet because eval-mode
              BN with synthetic statistics does not renormalise; this keeps them O(1).)
            * ``bias``: ``0.1 * s``.
            * ``bn_weight``: ``1 + 0.2 * s``; ``bn_bias``: ``0.1 * s``; ``bn_mean``: ``0.1 * s``.
            * ``bn_var``: ``0.5 + 0.4 * |s|`` (always positive).
            * ``bn_count``: int64 tensor of the given shape (normally ``()``) in ``[0, 100000)``.

    Returns:
        A contiguous float32 tensor (int64 for ``bn_count``) that owns its memory.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")
    shape = tuple(int(d) for d in shape)
    n = math.prod(shape)
    s = synth_unit(name, n)
    if kind == "bn_count":
        counts = np.floor((s + 1.0) * 50000.0).astype(np.int64).reshape(shape)
        return torch.from_numpy(counts.copy())
    if kind in ("conv", "linear_weight"):
        values = s * math.sqrt(3.0 / _fan_in(shape))
    elif kind == "bn_weight":
        values = 1.0 + 0.2 * s
    elif kind == "bn_var":
        values = 0.5 + 0.4 * np.abs(s)
    else:  # bias, bn_bias, bn_mean
        values = 0.1 * s
    out = np.ascontiguousarray(values.astype(np.float32).reshape(shape))
    return torch.from_numpy(out.copy())


def _module_prefix(key: str) -> str:
    return key.rpartition(".")[0]


def kind_for_key(key: str, shape: Sequence[int], keys: Collection[str] | None = None) -> str:
    """Infer the :func:`synth_tensor` kind of a PyTorch state-dict entry.

    Rules (first match wins):

    * ``*.running_mean`` / ``*.running_var`` / ``*.num_batches_tracked`` -> BN statistics.
    * 1-D ``*.weight`` / ``*.bias`` whose module has a ``running_mean`` or ``running_var`` key in
      ``keys`` -> ``bn_weight`` / ``bn_bias``. Without ``keys``, a 1-D ``weight`` is taken to be a
      norm scale (``bn_weight``) and a 1-D ``bias`` a plain ``bias``.
    * other 1-D tensors -> ``bias``; 2-D -> ``linear_weight``; 3-D or more -> ``conv``.

    Args:
        key: state-dict key, e.g. ``"blocks.1.0.bn2.weight"`` or ``"layers.8.0.layers.0.weight"``.
        shape: tensor shape.
        keys: the full key set of the state dict (context for BN affine parameters).
    """
    leaf = key.rpartition(".")[2]
    if leaf in _BN_SUFFIXES:
        return _BN_SUFFIXES[leaf]
    ndim = len(shape)
    if ndim == 1:
        if keys is not None:
            prefix = _module_prefix(key)
            dot = f"{prefix}." if prefix else ""
            is_bn = f"{dot}running_mean" in keys or f"{dot}running_var" in keys
            if leaf == "weight":
                return "bn_weight" if is_bn else "bias"
            if leaf == "bias":
                return "bn_bias" if is_bn else "bias"
            return "bias"
        return "bn_weight" if leaf == "weight" else "bias"
    if ndim == 2:
        return "linear_weight"
    if ndim >= 3:
        return "conv"
    raise ValueError(f"cannot infer kind for scalar key {key!r}")


def synth_state_dict(
    shapes: Mapping[str, tuple[tuple[int, ...], str]],
) -> OrderedDict[str, torch.Tensor]:
    """Synthesise a full state dict from ``{key: (shape, dtype)}`` (insertion order is kept).

    ``dtype`` is ``"float32"`` or ``"int64"``; kinds are inferred with :func:`kind_for_key` using
    the whole key set as context.
    """
    keys = frozenset(shapes)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, (shape, dtype) in shapes.items():
        if dtype not in _DTYPES:
            raise ValueError(f"{key}: unsupported dtype {dtype!r}")
        shape_t = tuple(int(d) for d in shape)
        kind = kind_for_key(key, shape_t, keys)
        tensor = synth_tensor(key, shape_t, kind)
        if tensor.dtype != _DTYPES[dtype]:
            raise ValueError(f"{key}: kind {kind} gives {tensor.dtype}, spec says {dtype}")
        out[key] = tensor
    return out


def spec_from_entries(
    entries: Iterable[Sequence[object]],
) -> OrderedDict[str, tuple[tuple[int, ...], str]]:
    """Turn a fixture's ``[[key, shape, dtype], ...]`` list into a :func:`synth_state_dict` spec."""
    spec: OrderedDict[str, tuple[tuple[int, ...], str]] = OrderedDict()
    for entry in entries:
        key, shape, dtype = entry
        if not isinstance(key, str) or not isinstance(dtype, str):
            raise TypeError(f"bad fixture entry {entry!r}")
        if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) for d in shape):
            raise TypeError(f"bad shape in fixture entry {entry!r}")
        spec[key] = (tuple(cast("list[int]", shape)), dtype)
    return spec


def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over keys, dtypes, shapes and raw bytes of every tensor, in iteration order."""
    h = hashlib.sha256()
    for key, tensor in state_dict.items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype!s}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def synth_input(batch: int, channels: int, size: int) -> torch.Tensor:
    """Deterministic float32 ``(batch, channels, size, size)`` input, uniform on ``[-2, 2)``.

    Roughly the range of ImageNet-normalised images. The stream depends only on
    ``(channels, size)``, so ``synth_input(1, c, s)`` equals ``synth_input(2, c, s)[:1]``.
    """
    n = batch * channels * size * size
    s = synth_unit(f"synth_input/c{channels}/s{size}", n)
    values = (2.0 * s).astype(np.float32).reshape(batch, channels, size, size)
    return torch.from_numpy(np.ascontiguousarray(values).copy())
