"""Pretrained loading end to end: the real manifest's entries, served by a loopback Hub/URL
server in their publishers' exact file formats, downloaded, verified, converted and compared with
logits computed by the publishers' own code (timm, torchvision) on the same weights."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo.errors import (
    IncompatibleWeightsError,
    IntegrityError,
    InvalidArgumentError,
    WeightsNotCachedError,
)

from .support.publishers import ParityCase, load_case, publisher_bytes
from .support.served import FIXTURE_OF, Served


def _assert_parity(model: torch.nn.Module, case: ParityCase) -> None:
    with torch.no_grad():
        logits = model(case.inputs)
    error = float((logits - case.logits).abs().max())
    assert error <= case.tolerance(), f"{case.name}: max |diff| {error:.3g}"


@pytest.mark.parametrize("weights_id", sorted(FIXTURE_OF))
def test_every_manifest_entry_reproduces_its_publisher(served: Served, weights_id: str) -> None:
    record = mnaszoo.get_weights(weights_id)
    model = mnaszoo.create(record.model, pretrained=record.tag)
    assert not model.training
    assert model.weights_info == record
    _assert_parity(model, load_case(FIXTURE_OF[weights_id]))


def test_cached_load_makes_no_request(served: Served) -> None:
    first = mnaszoo.create("mnasnet_small", pretrained=True)
    mnaszoo.create("mnasnet_b1_075", pretrained="tv_in1k")
    served.server.stop()
    served.server.clear_log()
    second = mnaszoo.create("mnasnet_small", pretrained=True)
    mnaszoo.create("mnasnet_b1_075", pretrained="tv_in1k")
    assert served.server.requests == []
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    served.env.set_offline(True)
    with pytest.raises(WeightsNotCachedError) as info:
        mnaszoo.create("mnasnet_b1_130", pretrained=True)
    assert "mnaszoo-cache" in str(info.value)


def test_url_weights_load_offline_once_cached(served: Served) -> None:
    mnaszoo.create("mnasnet_b1_075", pretrained=True)
    served.env.set_offline(True)
    served.server.clear_log()
    model = mnaszoo.create("mnasnet_b1_075", pretrained=True)
    assert served.server.requests == []
    _assert_parity(model, load_case("torchvision_mnasnet0_75"))


def test_corrupted_download_is_rejected(served: Served) -> None:
    served.server.corrupt("timm/mnasnet_100.rmsp_in1k/pytorch_model.bin")
    with pytest.raises(IntegrityError):
        mnaszoo.create("mnasnet_b1", pretrained="rmsp_in1k")
    served.server.clear_faults()
    _assert_parity(
        mnaszoo.create("mnasnet_b1", pretrained="rmsp_in1k"), load_case("timm_mnasnet_100")
    )


def test_new_head_keeps_the_backbone(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    reference = mnaszoo.create("mnasnet_a1", pretrained=True)
    with caplog.at_level(logging.WARNING, logger="mnaszoo"):
        model = mnaszoo.create("mnasnet_a1", pretrained=True, num_classes=10)
    assert "freshly initialised" in caplog.text and "1000 classes and the model 10" in caplog.text
    assert model.classifier.weight.shape == (10, 1280)
    x = load_case("timm_semnasnet_100").inputs
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), reference.forward_features(x))


def test_features_only_and_in_chans(served: Served) -> None:
    full = mnaszoo.create("mnasnet_b1", pretrained="tv_in1k")
    backbone = mnaszoo.create(
        "mnasnet_b1", pretrained="tv_in1k", features_only=True, out_indices=(2, 4)
    )
    x = load_case("torchvision_mnasnet1_0").inputs
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[1], full.stages(full.stem(x)))
        grey = mnaszoo.create("mnasnet_b1", pretrained="tv_in1k", in_chans=1)
        # A grey image repeated over RGB and the summed stem give the same output.
        torch.testing.assert_close(
            grey(x[:, :1]), full(x[:, :1].repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-4
        )


def test_weights_fix_the_architecture(served: Served) -> None:
    with pytest.raises(InvalidArgumentError, match=r"width_mult=0\.5 conflicts"):
        mnaszoo.create("mnasnet_a1", pretrained=True, width_mult=0.5)
    with pytest.raises(InvalidArgumentError, match="are for 'mnasnet_b1', not 'mnasnet_a1'"):
        mnaszoo.create("mnasnet_a1", pretrained="mnasnet_b1.tv_in1k")
    with pytest.raises(InvalidArgumentError, match="either pretrained"):
        mnaszoo.create("mnasnet_a1", pretrained=True, checkpoint="x.pth")


def _write(path: Path, case: ParityCase) -> Path:
    path.write_bytes(publisher_bytes(case, path.name))
    return path


def test_local_checkpoints_in_every_layout(tmp_path: Path) -> None:
    timm = load_case("timm_semnasnet_075")
    model = mnaszoo.create("mnasnet_a1_075", checkpoint=_write(tmp_path / "a.safetensors", timm))
    _assert_parity(model, timm)
    tv = load_case("torchvision_mnasnet1_3")
    _assert_parity(mnaszoo.create("mnasnet_b1_130", checkpoint=_write(tmp_path / "b.pth", tv)), tv)
    # A mnaszoo-layout file with a DDP prefix, as a training script saves it.
    wrapped = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": wrapped, "epoch": 3}, tmp_path / "train.pth")
    _assert_parity(mnaszoo.create("mnasnet_a1_075", checkpoint=tmp_path / "train.pth"), timm)


def test_torchvision_version1_checkpoint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    case = load_case("torchvision_mnasnet0_5_v1")
    with caplog.at_level(logging.WARNING, logger="mnaszoo"):
        model = mnaszoo.create("mnasnet_b1_050", checkpoint=_write(tmp_path / "v1.pth", case))
    assert model.config.spec.name == "mnasnet_b1_torchvision_v1"
    assert "version-1" in caplog.text
    _assert_parity(model, case)


@pytest.mark.parametrize(
    ("fixture", "model", "causes"),
    [
        (
            "timm_semnasnet_100",
            "mnasnet_b1",
            ["these weights fit 'mnasnet_a1'", "squeeze-and-excitation"],
        ),
        (
            "torchvision_mnasnet0_75",
            "mnasnet_b1",
            ["these weights fit 'mnasnet_b1_075'", "another width_mult"],
        ),
    ],
)
def test_mismatch_names_the_likely_cause(
    tmp_path: Path, fixture: str, model: str, causes: list[str]
) -> None:
    path = _write(tmp_path / "w.pth", load_case(fixture))
    with pytest.raises(IncompatibleWeightsError) as info:
        mnaszoo.create(model, checkpoint=path)
    for cause in causes:
        assert cause in str(info.value)
    assert "stem.conv.weight: model" in str(info.value) or "missing" in str(info.value)
