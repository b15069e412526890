"""mnaszoo's checkpoint format: save_pretrained, from_pretrained (local and Hub), push_to_hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import mnaszoo
from mnaszoo.errors import (
    CorruptCheckpointError,
    IncompatibleWeightsError,
    InvalidArgumentError,
)

from .support.hub_env import HubEnv, fast_retries, hf_hub_environment
from .support.hub_server import HubServer

REVISION = "0123456789abcdef0123456789abcdef01234567"


def _trained(name: str = "mnasnet_small", **kwargs: Any) -> mnaszoo.MnasNet:
    torch.manual_seed(0)
    model = mnaszoo.create(name, **kwargs)
    model.train()
    with torch.no_grad():  # give BN non-trivial statistics
        model(torch.randn(4, 3, 64, 64))
    return model.eval()


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_round_trip(tmp_path: Path) -> None:
    model = _trained(num_classes=3, drop_path_rate=0.1)
    mnaszoo.save_pretrained(model, tmp_path / "ckpt", labels=["cat", "dog", "fox"])
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "README.md",
        "architecture.svg",
        "config.json",
        "model.safetensors",
    ]
    loaded = mnaszoo.from_pretrained(tmp_path / "ckpt")
    assert not loaded.training
    assert loaded.config == model.config
    assert loaded.weights_info is not None and loaded.weights_info.labels == ("cat", "dog", "fox")
    _same_outputs(model, loaded)


def test_config_rebuilds_without_the_registry(tmp_path: Path) -> None:
    spec = mnaszoo.NetworkSpec(
        "custom",
        16,
        (mnaszoo.StageSpec("conv", 1, 3, 2, 1, 24), mnaszoo.StageSpec("mb", 2, 7, 2, 4, 32, 0.5)),
    )
    model = mnaszoo.build(spec, width_mult=1.5, num_classes=5, bn_eps=1e-3)
    mnaszoo.save_pretrained(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architecture"]["spec"]["name"] == "custom"
    _same_outputs(model.eval(), mnaszoo.from_pretrained(tmp_path))


def test_channels_last_model_saves(tmp_path: Path) -> None:
    model = _trained().to(memory_format=torch.channels_last)
    mnaszoo.save_pretrained(model, tmp_path)
    # Same values, compared in one memory format (kernels differ between formats).
    _same_outputs(
        model.to(memory_format=torch.contiguous_format), mnaszoo.from_pretrained(tmp_path)
    )


def test_another_architecture_is_not_overwritten(tmp_path: Path) -> None:
    mnaszoo.save_pretrained(_trained("mnasnet_small"), tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(InvalidArgumentError, match="already holds a mnasnet_small checkpoint"):
        mnaszoo.save_pretrained(_trained("mnasnet_b1_050"), tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    mnaszoo.save_pretrained(
        _trained("mnasnet_small"), tmp_path
    )  # same architecture: a newer checkpoint
    mnaszoo.save_pretrained(_trained("mnasnet_b1_050"), tmp_path, overwrite=True)
    assert mnaszoo.from_pretrained(tmp_path).config.spec.name == "mnasnet_b1"


def test_failed_write_leaves_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _trained()
    mnaszoo.save_pretrained(model, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_save(tensors: dict[str, torch.Tensor], filename: str, metadata: Any) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        mnaszoo.save_pretrained(_trained(), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_bad_directories(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"local directory .* does not exist"):
        mnaszoo.from_pretrained(tmp_path / "nothing" / "here")  # a path: never sent to the Hub
    with pytest.raises(InvalidArgumentError, match="neither a directory written by"):
        mnaszoo.from_pretrained("nothing-here")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CorruptCheckpointError, match=r"lacks model\.safetensors"):
        mnaszoo.from_pretrained(tmp_path)
    mnaszoo.save_pretrained(_trained(), tmp_path / "ok")
    (tmp_path / "ok" / "config.json").write_text('{"library_name": "timm"}')
    with pytest.raises(CorruptCheckpointError, match="is not a mnaszoo config"):
        mnaszoo.from_pretrained(tmp_path / "ok")
    with pytest.raises(InvalidArgumentError, match="labels has 2 names but the model has 1000"):
        mnaszoo.save_pretrained(_trained(), tmp_path / "labels", labels=["a", "b"])


def test_mismatched_weights_are_refused(tmp_path: Path) -> None:
    mnaszoo.save_pretrained(_trained(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["architecture"]["width_mult"] = 0.5
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(IncompatibleWeightsError, match="these weights fit 'mnasnet_small'"):
        mnaszoo.from_pretrained(tmp_path)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubEnv]:
    fast_retries(monkeypatch)
    with (
        HubServer() as server,
        hf_hub_environment(server, tmp_path / "hf", monkeypatch=monkeypatch) as env,
    ):
        yield env


def test_from_hub_and_push(hub: HubEnv) -> None:
    # A real upload: huggingface_hub's create_repo, README metadata check, preupload and commit
    # requests go to the loopback Hub (tests/support/hub_uploads.py), which stores the commit.
    hub.server.accept_uploads = True
    model = _trained(num_classes=2)
    url = mnaszoo.push_to_hub(model, "me/tiny", private=True, labels=["no", "yes"], token="hf_t")
    posts = [(r.path, r.status) for r in hub.server.requests if r.method == "POST"]
    assert ("/api/repos/create", 200) in posts and ("/api/validate-yaml", 200) in posts
    assert posts[-1] == ("/api/models/me/tiny/commit/main", 200)
    revision = url.rsplit("/", 1)[1]
    # Private: only the creator's token reads it.
    with pytest.raises(mnaszoo.WeightsError):
        mnaszoo.from_pretrained("me/tiny", revision=revision)
    loaded = mnaszoo.from_pretrained("me/tiny", revision=revision, token="hf_t")
    _same_outputs(model, loaded)
    assert loaded.weights_info is not None and loaded.weights_info.labels == ("no", "yes")
    assert loaded.provenance is not None and loaded.provenance["revision"] == revision
    card = hub.repo_cache("me/tiny") / "snapshots" / revision / "README.md"
    assert not card.exists()  # the card is not needed to load; it is on the Hub:
    from huggingface_hub import hf_hub_download

    text = Path(
        hf_hub_download("me/tiny", "README.md", revision=revision, token="hf_t")
    ).read_text()
    assert "mnaszoo.from_pretrained('me/tiny')" in text and "library_name: mnaszoo" in text
    # The method form pushes a new commit to the same repository.
    url2 = loaded.push_to_hub("me/tiny", token="hf_t", commit_message="again")
    assert url2 != url
    hub.server.stop()
    _same_outputs(model, mnaszoo.from_pretrained("me/tiny", revision=revision, token="hf_t"))
