"""create("hf-hub:OWNER/REPO[@REVISION]"): any Hub repository holding a MnasNet checkpoint.

Each repository is served by the loopback Hub in its publisher's exact format (timm's
model.safetensors + config.json, torchvision's torch.save'd .pth, mnaszoo's save_pretrained
folder); the synthetic weights' golden logits were computed by timm's and torchvision's own code
(tests/fixtures/parity), so a wrong conversion or architecture cannot pass.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo.errors import (
    CorruptCheckpointError,
    IncompatibleWeightsError,
    InvalidArgumentError,
    WeightsNotCachedError,
)
from tests.support.hub_env import HubEnv, fast_retries, hf_hub_environment
from tests.support.hub_server import HubServer, sha256_hex
from tests.support.publishers import load_case, publisher_bytes

FIRST = "1111111111111111111111111111111111111111"
SECOND = "2222222222222222222222222222222222222222"

TIMM_CONFIG = {
    "architecture": "semnasnet_100",
    "num_classes": 1000,
    "num_features": 1280,
    "pretrained_cfg": {
        "tag": "rmsp_in1k",
        "custom_load": False,
        "input_size": [3, 224, 224],
        "fixed_input_size": False,
        "interpolation": "bicubic",
        "crop_pct": 0.875,
        "crop_mode": "center",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "num_classes": 1000,
        "pool_size": [7, 7],
        "first_conv": "conv_stem",
        "classifier": "classifier",
        "license": "apache-2.0",
    },
}


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubEnv]:
    fast_retries(monkeypatch)
    with (
        HubServer() as server,
        hf_hub_environment(server, tmp_path / "hf", monkeypatch=monkeypatch) as env,
    ):
        yield env


def _config_bytes(data: dict[str, object]) -> bytes:
    return json.dumps(data, indent=2).encode()


def _logits_match(model: torch.nn.Module, case_name: str) -> None:
    case = load_case(case_name)
    with torch.no_grad():
        out = model(case.inputs)
    assert (out - case.logits).abs().max().item() <= case.tolerance()


def test_timm_repo_with_config(hub: HubEnv) -> None:
    case = load_case("timm_semnasnet_100")
    weights = publisher_bytes(case, "model.safetensors")
    hub.server.add_hub_file("fan/semnasnet-ft", "model.safetensors", weights, FIRST)
    hub.server.add_hub_file(
        "fan/semnasnet-ft", "config.json", _config_bytes(TIMM_CONFIG), FIRST, lfs=False
    )
    model = mnaszoo.create("hf-hub:fan/semnasnet-ft", pretrained=True)
    assert model.config.spec.name == "mnasnet_a1" and model.config.width_mult == 1.0
    _logits_match(model, "timm_semnasnet_100")
    info = model.weights_info
    assert info is not None and info.source.revision == FIRST  # type: ignore[union-attr]
    assert info.sha256 == sha256_hex(weights) and info.layout == "timm"
    assert info.preprocessing.interpolation == "bicubic" and info.preprocessing.crop_pct == 0.875
    assert model.provenance is not None
    assert model.provenance["files"]["model.safetensors"] == sha256_hex(weights)
    assert model.provenance["revision"] == FIRST and "timm" in model.provenance["conversion"]


def test_torchvision_pth_without_config_is_recognised_by_its_shapes(hub: HubEnv) -> None:
    case = load_case("torchvision_mnasnet0_75")
    data = publisher_bytes(case, "mnasnet0_75-7090bc5f.pth")
    hub.server.add_hub_file("someone/tv-mnasnet", "mnasnet0_75-7090bc5f.pth", data, FIRST)
    model = mnaszoo.create("hf-hub:someone/tv-mnasnet", pretrained=True)
    assert (model.config.spec.name, model.config.width_mult) == ("mnasnet_b1", 0.75)
    _logits_match(model, "torchvision_mnasnet0_75")


def test_torchvision_version_1_checkpoint(hub: HubEnv) -> None:
    case = load_case("torchvision_mnasnet0_5_v1")
    data = publisher_bytes(case, "weights.pth")
    hub.server.add_hub_file("someone/tv-v1", "weights.pth", data, FIRST)
    model = mnaszoo.create("hf-hub:someone/tv-v1", pretrained=True)
    assert model.config.spec.name == "mnasnet_b1_torchvision_v1"
    _logits_match(model, "torchvision_mnasnet0_5_v1")


def test_timm_pytorch_model_bin_and_num_classes(hub: HubEnv) -> None:
    case = load_case("timm_mnasnet_small")
    data = publisher_bytes(case, "pytorch_model.bin")
    hub.server.add_hub_file("fan/small", "pytorch_model.bin", data, FIRST)
    config = dict(TIMM_CONFIG, architecture="mnasnet_small.lamb_in1k")
    hub.server.add_hub_file("fan/small", "config.json", _config_bytes(config), FIRST, lfs=False)
    model = mnaszoo.create("hf-hub:fan/small", pretrained=True)
    _logits_match(model, "timm_mnasnet_small")
    fresh = mnaszoo.create("hf-hub:fan/small", pretrained=True, num_classes=5)
    assert fresh.num_classes == 5
    backbone = mnaszoo.create("hf-hub:fan/small", pretrained=True, features_only=True)
    assert backbone.feature_info.channels() == [8, 16, 16, 32, 144]


def test_mnaszoo_folder_on_the_hub(hub: HubEnv, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=3).eval()
    folder = mnaszoo.save_pretrained(model, tmp_path / "saved", labels=["a", "b", "c"])
    for file in sorted(folder.iterdir()):
        lfs = file.suffix == ".safetensors"
        hub.server.add_hub_file("me/tiny", file.name, file.read_bytes(), FIRST, lfs=lfs)
    loaded = mnaszoo.create("hf-hub:me/tiny", pretrained=True)
    assert loaded.config == model.config
    assert loaded.weights_info is not None and loaded.weights_info.labels == ("a", "b", "c")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    same = mnaszoo.from_pretrained("hf-hub:me/tiny")
    assert same.config == model.config


def test_a_saved_grayscale_model_keeps_its_input_channels(hub: HubEnv, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=2, in_chans=1).eval()
    folder = mnaszoo.save_pretrained(model, tmp_path / "gray")
    for file in sorted(folder.iterdir()):
        lfs = file.suffix == ".safetensors"
        hub.server.add_hub_file("me/gray", file.name, file.read_bytes(), FIRST, lfs=lfs)
    loaded = mnaszoo.create("hf-hub:me/gray", pretrained=True)
    assert loaded.config.in_chans == 1
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert mnaszoo.create("hf-hub:me/gray", pretrained=True, in_chans=3).config.in_chans == 3


def test_revisions_are_pinned_and_recorded(hub: HubEnv) -> None:
    first = publisher_bytes(load_case("timm_semnasnet_100"), "model.safetensors")
    second = publisher_bytes(load_case("timm_semnasnet_075"), "model.safetensors")
    hub.server.add_hub_file("fan/moving", "model.safetensors", first, FIRST)
    hub.server.add_hub_file("fan/moving", "model.safetensors", second, SECOND)
    old = mnaszoo.create(f"hf-hub:fan/moving@{FIRST}", pretrained=True)
    assert old.config.width_mult == 1.0 and old.weights_info.source.revision == FIRST  # type: ignore[union-attr]
    new = mnaszoo.create("hf-hub:fan/moving", pretrained=True)
    assert new.config.width_mult == 0.75 and new.weights_info.source.revision == SECOND  # type: ignore[union-attr]
    _logits_match(new, "timm_semnasnet_075")
    also = mnaszoo.create("hf-hub:fan/moving", pretrained=True, revision=FIRST)
    assert also.weights_info.source.revision == FIRST  # type: ignore[union-attr]
    # Offline, the cached snapshot of the branch is found again, with the same commit.
    hub.set_offline()
    cached = mnaszoo.create("hf-hub:fan/moving", pretrained=True)
    assert cached.weights_info.source.revision == SECOND  # type: ignore[union-attr]
    with pytest.raises(WeightsNotCachedError, match="not in the cache"):
        mnaszoo.create("hf-hub:fan/never", pretrained=True)


def test_architecture_only(hub: HubEnv) -> None:
    hub.server.add_hub_file(
        "fan/cfg-only", "config.json", _config_bytes(TIMM_CONFIG), FIRST, lfs=False
    )
    model = mnaszoo.create("hf-hub:fan/cfg-only")
    assert model.config.spec.name == "mnasnet_a1" and model.weights_info is None
    assert [r.path for r in hub.server.requests if r.path.endswith(".safetensors")] == []


def test_not_a_mnasnet(hub: HubEnv) -> None:
    from safetensors.torch import save

    resnet = save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)})
    hub.server.add_hub_file("other/resnet", "model.safetensors", resnet, FIRST)
    with pytest.raises(IncompatibleWeightsError, match="is not a MnasNet checkpoint"):
        mnaszoo.create("hf-hub:other/resnet", pretrained=True)
    config = _config_bytes({"architecture": "resnet50", "num_classes": 1000})
    hub.server.add_hub_file("other/resnet", "config.json", config, SECOND, lfs=False)
    with pytest.raises(IncompatibleWeightsError, match="'resnet50', which is not a MnasNet"):
        mnaszoo.create("hf-hub:other/resnet", pretrained=True)


def test_tensors_that_do_not_fit(hub: HubEnv) -> None:
    # timm's config says semnasnet_100, the file holds mnasnet_100 (B1): caught before loading.
    data = publisher_bytes(load_case("timm_mnasnet_100"), "model.safetensors")
    hub.server.add_hub_file("fan/mixed", "model.safetensors", data, FIRST)
    hub.server.add_hub_file(
        "fan/mixed", "config.json", _config_bytes(TIMM_CONFIG), FIRST, lfs=False
    )
    with pytest.raises(IncompatibleWeightsError, match="does not fit"):
        mnaszoo.create("hf-hub:fan/mixed", pretrained=True)
    # Without a config, a MnasNet whose shapes fit no known architecture is named as such.
    state = dict(load_case("timm_mnasnet_100").state_dict)
    state["conv_head.weight"] = torch.zeros(1000, 320, 1, 1)
    state["bn2.weight"] = state["bn2.bias"] = torch.zeros(1000)
    state["bn2.running_mean"] = state["bn2.running_var"] = torch.zeros(1000)
    state["classifier.weight"] = torch.zeros(1000, 1000)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    hub.server.add_hub_file("fan/odd", "odd.pth", buffer.getvalue(), FIRST)
    with pytest.raises(IncompatibleWeightsError, match="fit no MnasNet"):
        mnaszoo.create("hf-hub:fan/odd", pretrained=True)


class Payload:
    """Not a tensor: torch.load(weights_only=True) refuses to rebuild it."""


def test_unsafe_pickles_and_odd_repositories(hub: HubEnv) -> None:
    buffer = io.BytesIO()
    torch.save({"model": Payload()}, buffer)
    hub.server.add_hub_file("bad/pickle", "model.pth", buffer.getvalue(), FIRST)
    with pytest.raises(CorruptCheckpointError):
        mnaszoo.create("hf-hub:bad/pickle", pretrained=True)
    hub.server.add_hub_file("bad/empty", "README.md", b"# nothing\n", FIRST, lfs=False)
    with pytest.raises(IncompatibleWeightsError, match="no weights file"):
        mnaszoo.create("hf-hub:bad/empty", pretrained=True)
    hub.server.add_hub_file("bad/two", "a.pth", b"x", FIRST)
    hub.server.add_hub_file("bad/two", "b.pth", b"y", FIRST)
    with pytest.raises(IncompatibleWeightsError, match="several weights files"):
        mnaszoo.create("hf-hub:bad/two", pretrained=True)


@pytest.mark.parametrize("name", ["hf-hub:", "hf-hub:noslash", "hf-hub:a/b@", "hf-hub:a/b/c"])
def test_bad_hub_names(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="hf-hub:OWNER/REPO"):
        mnaszoo.create(name, pretrained=True)


def test_conflicting_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="give it once"):
        mnaszoo.create(f"hf-hub:a/b@{FIRST}", pretrained=True, revision=SECOND)
    with pytest.raises(InvalidArgumentError, match="one checkpoint"):
        mnaszoo.create("hf-hub:a/b", pretrained="rmsp_in1k")
    with pytest.raises(InvalidArgumentError, match="hf-hub: names only"):
        mnaszoo.create("mnasnet_a1", revision=FIRST)
