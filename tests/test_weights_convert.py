"""Checkpoint reading and timm / torchvision layout conversion.

Parity runs against the offline fixtures in ``tests/fixtures/parity``: each holds a publisher's key
list and the logits the publisher's own code (timm / torchvision) computed on the deterministic
weights of :mod:`tests.support.synth` (see ``tests/fixtures/reference/make_parity_fixtures.py``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from safetensors.torch import save, save_file
from torch import nn

import mnaszoo
from mnaszoo.errors import (
    ArgumentTypeError,
    CorruptCheckpointError,
    IncompatibleWeightsError,
    InvalidArgumentError,
)
from mnaszoo.models.architectures import (
    MNASNET_A1,
    MNASNET_B1,
    MNASNET_B1_TORCHVISION_V1,
    MNASNET_D1,
    MNASNET_SMALL,
)
from mnaszoo.models.specs import NetworkSpec
from mnaszoo.weights.checkpoint import read_checkpoint
from mnaszoo.weights.convert import Layout, detect_layout, from_mnaszoo, to_mnaszoo

from .support.synth import spec_from_entries, state_dict_sha256, synth_input, synth_state_dict

PARITY = Path(__file__).parent / "fixtures" / "parity"

# Fixture -> the mnaszoo network that must reproduce the publisher's logits.
FIXTURE_MODELS: dict[str, tuple[NetworkSpec, float]] = {
    "timm_semnasnet_100": (MNASNET_A1, 1.0),
    "timm_semnasnet_075": (MNASNET_A1, 0.75),
    "timm_mnasnet_100": (MNASNET_B1, 1.0),
    "timm_mnasnet_small": (MNASNET_SMALL, 1.0),
    "torchvision_mnasnet0_5": (MNASNET_B1, 0.5),
    "torchvision_mnasnet0_75": (MNASNET_B1, 0.75),
    "torchvision_mnasnet1_0": (MNASNET_B1, 1.0),
    "torchvision_mnasnet1_3": (MNASNET_B1, 1.3),
    "torchvision_mnasnet0_5_v1": (MNASNET_B1_TORCHVISION_V1, 0.5),
    "torchvision_mnasnet0_75_v1": (MNASNET_B1_TORCHVISION_V1, 0.75),
}
SOURCES = sorted(FIXTURE_MODELS)


@functools.cache
def _fixture(source: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((PARITY / f"{source}.json").read_text(encoding="utf-8"))
    return info


def _publisher_state(source: str) -> OrderedDict[str, torch.Tensor]:
    return synth_state_dict(spec_from_entries(_fixture(source)["keys"]))


def _layout(source: str) -> Layout:
    publisher = _fixture(source)["publisher"]
    assert publisher in ("timm", "torchvision")
    return "timm" if publisher == "timm" else "torchvision"


def _build(source: str) -> mnaszoo.MnasNet:
    spec, width = FIXTURE_MODELS[source]
    return mnaszoo.build(spec, width_mult=width)


def test_every_fixture_is_covered() -> None:
    assert sorted(p.name.removesuffix(".json") for p in PARITY.glob("*.json")) == SOURCES


# --- parity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_converted_weights_reproduce_publisher_logits(source: str) -> None:
    info = _fixture(source)
    state = _publisher_state(source)
    # Catches drift in synth.py, which would make the golden logits meaningless.
    assert state_dict_sha256(state) == info["weights"]["state_dict_sha256"]
    layout = _layout(source)
    assert detect_layout(state) == layout
    model = _build(source)
    model.load_state_dict(to_mnaszoo(state, layout), strict=True)
    model.eval()
    spec = info["input"]
    x = synth_input(spec["batch"], spec["channels"], spec["size"])
    assert hashlib.sha256(x.numpy().tobytes()).hexdigest() == spec["sha256"]
    with torch.no_grad():
        logits = model(x).numpy()
    golden = np.load(PARITY / info["logits"]["file"], allow_pickle=False)
    error = float(np.abs(logits - golden).max())
    assert error <= 1e-4 * max(1.0, float(np.abs(golden).max())), f"{source}: max |diff| {error}"


@pytest.mark.parametrize("source", [s for s in SOURCES if s.startswith("torchvision")])
def test_torchvision_fixture_version_matches_spec(source: str) -> None:
    # The loader picks the v1 spec from _metadata version 1; the fixtures must agree.
    spec, _ = FIXTURE_MODELS[source]
    expected = 1 if spec is MNASNET_B1_TORCHVISION_V1 else 2
    assert _fixture(source)["torchvision_metadata_version"] == expected


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_from_mnaszoo_gives_publisher_keys_in_order(source: str) -> None:
    converted = from_mnaszoo(
        _build(source).state_dict(),
        _layout(source),
        torchvision_version=_fixture(source)["torchvision_metadata_version"] or 2,
    )
    entries = [
        [k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in converted.items()
    ]
    assert entries == _fixture(source)["keys"]
    if _layout(source) == "torchvision":
        version = _fixture(source)["torchvision_metadata_version"]
        assert converted._metadata == {"": {"version": version}}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("layout", "spec", "width"),
    [
        ("timm", MNASNET_A1, 1.0),
        ("timm", MNASNET_B1, 0.75),
        ("timm", MNASNET_SMALL, 1.0),
        ("timm", MNASNET_D1, 1.0),
        ("torchvision", MNASNET_B1, 0.5),
        ("torchvision", MNASNET_B1, 1.3),
        ("torchvision", MNASNET_B1_TORCHVISION_V1, 0.5),
        ("mnaszoo", MNASNET_A1, 1.0),
    ],
)
def test_round_trip_is_identity_without_copies(
    layout: Layout, spec: NetworkSpec, width: float
) -> None:
    state = mnaszoo.build(spec, width_mult=width).state_dict()
    back = to_mnaszoo(from_mnaszoo(state, layout), layout)
    assert list(back) == list(state)
    assert all(back[key] is state[key] for key in state)


def test_publisher_to_publisher_via_mnaszoo() -> None:
    timm_state = _publisher_state("timm_mnasnet_100")
    tv_state = from_mnaszoo(to_mnaszoo(timm_state, "timm"), "torchvision")
    assert [k for k, *_ in _fixture("torchvision_mnasnet1_0")["keys"]] == list(tv_state)


# --- conversion errors ----------------------------------------------------------------------


def _tensor() -> torch.Tensor:
    return torch.zeros(1)


@pytest.mark.parametrize(
    ("layout", "extra"),
    [
        ("timm", "backbone.extra.weight"),
        ("timm", "blocks.0.0.conv_dw.bias"),  # a parameter the module does not have
        ("timm", "blocks.1.0.se.fc.weight"),
        ("torchvision", "layers.2.weight"),  # layers.2 is a ReLU
        ("torchvision", "layers.14.0.layers.0.weight"),  # no stack there
        ("torchvision", "classifier.0.weight"),  # classifier.0 is the dropout
    ],
)
def test_to_mnaszoo_names_unmapped_keys(layout: Layout, extra: str) -> None:
    source = "timm_semnasnet_100" if layout == "timm" else "torchvision_mnasnet1_0"
    state = dict(_publisher_state(source))
    state[extra] = _tensor()
    with pytest.raises(IncompatibleWeightsError, match=f"'{extra}'"):
        to_mnaszoo(state, layout)


@pytest.mark.parametrize(
    ("spec", "key", "reason"),
    [
        (MNASNET_A1, "stages.2.0.se.reduce.weight", "'se.reduce' is not part of"),
        (MNASNET_D1, "stages.0.0.expand.conv.weight", "stage 0 is outside the blocks"),
        (MNASNET_SMALL, "stages.3.0.se.expand.bias", "'se.expand' is not part of"),
    ],
)
def test_from_mnaszoo_to_torchvision_rejects_what_it_cannot_hold(
    spec: NetworkSpec, key: str, reason: str
) -> None:
    with pytest.raises(IncompatibleWeightsError, match="torchvision") as caught:
        from_mnaszoo(mnaszoo.build(spec).state_dict(), "torchvision")
    assert f"'{key}' ({reason}" in str(caught.value)


def test_depthwise_block_after_stage_0_has_no_torchvision_counterpart() -> None:
    state = {"stages.1.0.dw.conv.weight": _tensor(), "stages.1.0.project.conv.weight": _tensor()}
    with pytest.raises(IncompatibleWeightsError, match="depthwise-separable block"):
        from_mnaszoo(state, "torchvision")


@pytest.mark.parametrize("layout", ["timm", "torchvision"])
def test_regular_conv_blocks_have_no_publisher_counterpart(layout: Layout) -> None:
    state = {"stem.conv.weight": _tensor(), "stages.1.0.conv.conv.weight": _tensor()}
    with pytest.raises(IncompatibleWeightsError, match=r"'stages\.1\.0\.conv\.conv\.weight'"):
        from_mnaszoo(state, layout)


def test_detect_layout_rejects_unknown_keys() -> None:
    state = {"backbone.conv1.weight": _tensor(), "fc.weight": _tensor()}
    with pytest.raises(IncompatibleWeightsError, match=r"backbone\.conv1\.weight") as caught:
        detect_layout(state)
    assert all(key in str(caught.value) for key in ("stem.conv.weight", "conv_stem.weight"))
    with pytest.raises(IncompatibleWeightsError, match="several layouts"):
        detect_layout({"stem.conv.weight": _tensor(), "conv_stem.weight": _tensor()})


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="'keras'"):
        to_mnaszoo({}, "keras")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="torchvision_version"):
        from_mnaszoo({}, "torchvision", torchvision_version=3)


# --- read_checkpoint ------------------------------------------------------------------------


def _small_state() -> OrderedDict[str, torch.Tensor]:
    return OrderedDict(
        (
            ("layers.0.weight", torch.arange(6.0).reshape(2, 3, 1, 1)),
            ("layers.1.bias", torch.ones(2)),
        )
    )


def _assert_same(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert list(actual) == list(expected)
    assert all(torch.equal(actual[k], expected[k]) for k in expected)


def test_read_safetensors_with_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(dict(_small_state()), str(path), metadata={"format": "pt", "arch": "x"})
    checkpoint = read_checkpoint(path)
    _assert_same(checkpoint.state_dict, dict(_small_state()))
    assert checkpoint.metadata == {"format": "pt", "arch": "x"}
    assert checkpoint.torchvision_version is None
    assert checkpoint.notes == ()


def test_weights_only_keeps_torchvision_metadata(tmp_path: Path) -> None:
    # Documents the torch behaviour read_checkpoint relies on: BUILD of an OrderedDict is allowed.
    state = _small_state()
    state._metadata = {"": {"version": 2}}  # type: ignore[attr-defined]
    torch.save(state, tmp_path / "a.pth")
    loaded = torch.load(tmp_path / "a.pth", weights_only=True)
    assert loaded._metadata == {"": {"version": 2}}


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("legacy", [False, True])
def test_read_torchvision_version(tmp_path: Path, version: int, legacy: bool) -> None:
    state = _small_state()
    state._metadata = OrderedDict([("", {"version": version})])  # type: ignore[attr-defined]
    torch.save(state, tmp_path / "tv.pth", _use_new_zipfile_serialization=not legacy)
    checkpoint = read_checkpoint(tmp_path / "tv.pth")
    assert checkpoint.torchvision_version == version
    assert checkpoint.metadata == {}
    _assert_same(checkpoint.state_dict, dict(_small_state()))


def test_missing_metadata_reads_as_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A plain dict (or a torch that dropped _metadata) still loads; the version is just unknown.
    state = _small_state()
    state._metadata = {"": {"version": 1}}  # type: ignore[attr-defined]
    torch.save(state, tmp_path / "tv.pth")
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: dict(real_load(*a, **k)))
    checkpoint = read_checkpoint(tmp_path / "tv.pth")
    assert checkpoint.torchvision_version is None
    _assert_same(checkpoint.state_dict, dict(_small_state()))


class _Versioned(nn.Module):
    _version = 2  # as torchvision's MNASNet; wrappers keep nn.Module's default of 1

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.BatchNorm2d(2))


def _compiled(model: nn.Module) -> nn.Module:
    # Wrapping only: the state dict of the OptimizedModule exists before anything compiles.
    return cast(nn.Module, torch.compile(model))


# torch 2.13's torch.compile warns about its own use of torch.jit.script_method.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    ("wrap", "prefix"),
    [
        (nn.DataParallel, "module."),
        (_compiled, "_orig_mod."),
        (lambda m: nn.DataParallel(_compiled(m)), "module._orig_mod."),
    ],
)
def test_wrapper_prefixes_are_stripped(tmp_path: Path, wrap: Any, prefix: str) -> None:
    model = _Versioned()
    state = wrap(model).state_dict()
    assert all(key.startswith(prefix) for key in state)
    torch.save(state, tmp_path / "wrapped.pth")
    checkpoint = read_checkpoint(tmp_path / "wrapped.pth")
    _assert_same(checkpoint.state_dict, dict(model.state_dict()))
    # The wrapper's own '' entry says 1; the wrapped model's says 2.
    assert checkpoint.torchvision_version == 2
    assert checkpoint.notes == (f"stripped the prefix {prefix!r} from every key",)


def test_model_prefix_is_kept_unless_every_key_has_it(tmp_path: Path) -> None:
    torch.save({"model.a": _tensor(), "b": _tensor()}, tmp_path / "m.pth")
    assert list(read_checkpoint(tmp_path / "m.pth").state_dict) == ["model.a", "b"]


@pytest.mark.parametrize("key", ["state_dict", "model", "model_state_dict", "state_dict_ema"])
def test_training_checkpoints_are_unwrapped(tmp_path: Path, key: str) -> None:
    inner = OrderedDict((f"model.{k}", v) for k, v in _small_state().items())
    inner._metadata = {"": {"version": 1}, "model": {"version": 2}}  # type: ignore[attr-defined]
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}
    torch.save({key: inner, "epoch": 7, "optimizer": optimizer}, tmp_path / "train.pth")
    checkpoint = read_checkpoint(tmp_path / "train.pth")
    _assert_same(checkpoint.state_dict, dict(_small_state()))
    assert checkpoint.torchvision_version == 2
    assert checkpoint.notes == (
        f"took the weights under {key!r} (ignored: 'epoch', 'optimizer')",
        "stripped the prefix 'model.' from every key",
    )


def test_plain_weights_are_preferred_to_ema(tmp_path: Path) -> None:
    ema = {k: v + 1 for k, v in _small_state().items()}
    torch.save({"state_dict_ema": ema, "state_dict": _small_state()}, tmp_path / "t.pth")
    checkpoint = read_checkpoint(tmp_path / "t.pth")
    _assert_same(checkpoint.state_dict, dict(_small_state()))
    assert checkpoint.notes == ("took the weights under 'state_dict' (ignored: 'state_dict_ema')",)


def test_checkpoint_round_trip_through_publisher_files(tmp_path: Path) -> None:
    # mnaszoo -> torchvision .pth and timm .safetensors -> read -> detect -> mnaszoo loads strictly.
    model = mnaszoo.build(MNASNET_B1, width_mult=0.5)
    state = model.state_dict()
    torch.save(from_mnaszoo(state, "torchvision"), tmp_path / "tv.pth")
    save_file(from_mnaszoo(state, "timm"), str(tmp_path / "timm.safetensors"))
    for name, layout, version in (("tv.pth", "torchvision", 2), ("timm.safetensors", "timm", None)):
        checkpoint = read_checkpoint(tmp_path / name)
        assert detect_layout(checkpoint.state_dict) == layout
        assert checkpoint.torchvision_version == version
        converted = to_mnaszoo(checkpoint.state_dict, layout)
        mnaszoo.build(MNASNET_B1, width_mult=0.5).load_state_dict(converted, strict=True)
        assert all(torch.equal(converted[k], state[k]) for k in state)


# --- read_checkpoint errors -----------------------------------------------------------------


class _Custom:
    """Stands for any object weights_only refuses to unpickle."""


def _valid_bytes(kind: str) -> bytes:
    if kind == "safetensors":
        return save(dict(_small_state()))
    stream = io.BytesIO()
    torch.save(_small_state(), stream, _use_new_zipfile_serialization=kind == "zip")
    return stream.getvalue()


LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 17736663\n"
)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("model.safetensors", LFS_POINTER.encode(), "Git-LFS pointer.*git lfs pull"),
        ("model.pth", b"\n<!DOCTYPE html>\n<html><body>Sign in</body></html>", "HTML page"),
        ("model.bin", b"<html lang='en'>\xe9</html>", "HTML page"),  # not even UTF-8
        ("model.pth", b'{"error": "Repository not found"}', "text file.*Repository not found"),
        ("model.pth", "\u20ac".encode() * 2000, "text file"),  # sniff window ends mid-character
        ("model.safetensors", b"", "empty"),
        ("model.pth", bytes(range(256)) * 8, "cannot be read as a PyTorch checkpoint"),
    ],
)
def test_non_checkpoints_are_recognised(
    tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match=match) as caught:
        read_checkpoint(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "name"),
    [("safetensors", "m.safetensors"), ("zip", "m.pth"), ("legacy", "m.pth")],
)
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_files(tmp_path: Path, kind: str, name: str, keep: float) -> None:
    data = _valid_bytes(kind)
    (tmp_path / name).write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CorruptCheckpointError, match="truncated or corrupt") as caught:
        read_checkpoint(tmp_path / name)
    assert caught.value.__cause__ is not None


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    torch.save({"weights": torch.ones(1), "config": _Custom()}, tmp_path / "full.pth")
    with pytest.raises(CorruptCheckpointError) as caught:
        read_checkpoint(tmp_path / "full.pth")
    message = str(caught.value)
    assert "_Custom" in message
    assert "weights_only" in message
    assert "torch.save(model.state_dict(), path)" in message
    assert "safetensors" in message


@pytest.mark.parametrize(
    ("module", "name", "refused"),
    [
        ("torch.nn.modules.linear", "Linear", True),  # a whole pickled model
        ("__main__", "Net", True),  # a class from the script that saved it
        ("mypackage.models", "Net", True),
        ("torch", "FloatStorag", False),  # a name cut short: truncation, not a refusal
        ("collections", "OrderedDic", False),
    ],
)
def test_refused_and_garbled_globals(tmp_path: Path, module: str, name: str, refused: bool) -> None:
    # A bare protocol-2 pickle whose first opcode loads the global (weights_only stops there).
    (tmp_path / "g.pth").write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")\x81.")
    with pytest.raises(CorruptCheckpointError) as caught:
        read_checkpoint(tmp_path / "g.pth")
    message = str(caught.value)
    assert f"{module}.{name}" in message
    assert ("weights_only" in message) is refused
    assert ("truncated or corrupt" in message) is not refused


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            {"epoch": 3, "arch": "mnasnet"},
            r"2 are not named tensors: 'epoch' \(int\), 'arch' \(str\)",
        ),
        ({"a": torch.ones(1), "step": 3}, r"1 are not named tensors: 'step' \(int\)"),
        ({}, "empty dict"),
        ({"state_dict": {"lr": 0.1}}, r"'state_dict' \(dict\)"),
        (torch.ones(3), "holds a Tensor"),
        ([torch.ones(3)], "holds a list"),
    ],
)
def test_files_without_a_state_dict(tmp_path: Path, content: object, match: str) -> None:
    torch.save(content, tmp_path / "x.pth")
    with pytest.raises(CorruptCheckpointError, match=match):
        read_checkpoint(tmp_path / "x.pth")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist") as caught:
        read_checkpoint(tmp_path / "nope.pth")
    assert "nope.pth" in str(caught.value)
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        read_checkpoint(tmp_path)
    with pytest.raises(ArgumentTypeError, match="NoneType"):
        read_checkpoint(None)  # type: ignore[arg-type]
