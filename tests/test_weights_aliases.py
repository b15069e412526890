"""timm's and torchvision's names resolve to the same architecture and the same publisher's file.

The architecture equalities are checked against the recorded timm reference (parameter counts,
feature levels: tests/fixtures/reference/reference_models.json, made by timm's own code), and the
weights against the manifest entries' own publisher fields.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import mnaszoo
from mnaszoo.errors import InvalidArgumentError, UnknownModelError, UnknownWeightsError
from mnaszoo.weights.aliases import PEER_NAMES
from tests.support.served import Served, served  # noqa: F401  (the fixture)

ROOT = Path(__file__).parents[1]
REFERENCE = json.loads((ROOT / "tests/fixtures/reference/reference_models.json").read_text())
# torchvision's published parameter counts (MNASNetX_Weights.IMAGENET1K_V1.meta["num_params"]),
# from the project's MnasNet reference notes.
TORCHVISION_PARAMS = {
    "mnasnet0_5": 2_218_512,
    "mnasnet0_75": 3_170_208,
    "mnasnet1_0": 4_383_312,
    "mnasnet1_3": 6_282_256,
}


@pytest.mark.parametrize("name", sorted(n for n, p in PEER_NAMES.items() if p.peer == "timm"))
def test_timm_names_are_timms_architectures(name: str) -> None:
    timm = REFERENCE["timm"][name.split(".")[0]]
    model = mnaszoo.create(name, features_only=True)
    assert model.feature_info.get_dicts(keys=("num_chs", "reduction")) == [
        {"num_chs": f["num_chs"], "reduction": f["reduction"]} for f in timm["feature_info"]
    ]
    summary = mnaszoo.describe(mnaszoo.create(name).config)
    assert summary.params == timm["num_params"]


@pytest.mark.parametrize(
    "name", sorted(n for n, p in PEER_NAMES.items() if p.peer == "torchvision")
)
def test_torchvision_names_are_torchvisions_architectures(name: str) -> None:
    builder = PEER_NAMES[name].model
    expected = next(v for k, v in TORCHVISION_PARAMS.items() if PEER_NAMES[k].model == builder)
    assert mnaszoo.describe(mnaszoo.create(name).config).params == expected


@pytest.mark.parametrize("name", sorted(n for n, p in PEER_NAMES.items() if p.weights))
def test_weights_are_the_same_publishers(name: str) -> None:
    peer = PEER_NAMES[name]
    assert peer.weights is not None
    record = mnaszoo.get_weights(peer.weights)
    assert record.model == peer.model
    assert record.publisher.startswith(peer.peer)
    if peer.peer == "timm":  # timm's repo is named after timm's model name
        assert record.source.repo_id.startswith(f"timm/{name.split('.')[0]}.")  # type: ignore[union-attr]
    else:
        enum = re.search(r"\((MNASNet\d_\d+_Weights)\.", record.publisher)
        assert enum is not None and (not peer.names_weights or name.startswith(enum.group(1) + "."))


def test_peer_names_load_their_publishers_file(served: Served) -> None:  # noqa: F811
    for name, weights_id in [
        ("mnasnet1_0", "mnasnet_b1.tv_in1k"),
        ("MNASNet1_0_Weights.IMAGENET1K_V1", "mnasnet_b1.tv_in1k"),
        ("mnasnet_100", "mnasnet_b1.rmsp_in1k"),
        ("mnasnet_100.rmsp_in1k", "mnasnet_b1.rmsp_in1k"),
        ("semnasnet_075.rmsp_in1k", "mnasnet_a1_075.rmsp_in1k"),
        ("mnasnet_b1.tv_in1k", "mnasnet_b1.tv_in1k"),  # mnaszoo's own ids are names too
    ]:
        model = mnaszoo.create(name, pretrained=True)
        assert model.weights_info is not None and model.weights_info.id == weights_id, name
    # The default of mnaszoo's own name is the best top-1, here timm's; the peer name is exact.
    assert mnaszoo.create("mnasnet_b1", pretrained=True).weights_info.id == (  # type: ignore[union-attr]
        "mnasnet_b1.rmsp_in1k"
    )
    # A torchvision weights name as pretrained= on mnaszoo's name.
    model = mnaszoo.create("mnasnet_b1", pretrained="MNASNet1_0_Weights.DEFAULT")
    assert model.weights_info.id == "mnasnet_b1.tv_in1k"  # type: ignore[union-attr]


def test_weights_names_without_pretrained_build_the_architecture() -> None:
    model = mnaszoo.create("MNASNet0_75_Weights.IMAGENET1K_V1")
    assert (model.config.spec.name, model.config.width_mult, model.weights_info) == (
        "mnasnet_b1",
        0.75,
        None,
    )


def test_peer_names_without_weights_say_where_weights_are() -> None:
    with pytest.raises(UnknownWeightsError, match=r"timm publishes no pretrained weights.*tv_in1k"):
        mnaszoo.create("mnasnet_075", pretrained=True)
    with pytest.raises(UnknownWeightsError, match="no weights tagged 'ra_in1k'"):
        mnaszoo.create("semnasnet_100.ra_in1k", pretrained=True)
    with pytest.raises(InvalidArgumentError, match="are for 'mnasnet_b1'"):
        mnaszoo.create("mnasnet_a1", pretrained="MNASNet1_0_Weights.IMAGENET1K_V1")
    with pytest.raises(UnknownModelError):
        mnaszoo.create("mnasnet2_0")


def test_migration_table_lists_every_peer_name() -> None:
    page = (ROOT / "docs/coming-from-peers.md").read_text("utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \| `([^`]+)` \| ([^|]+) \|", page, re.M)
    listed = {name: (peer, model, weights.strip()) for name, peer, model, weights in rows}
    expected = {
        name: (p.peer, p.model, f"`{p.weights}`" if p.weights else "none published")
        for name, p in PEER_NAMES.items()
    }
    assert listed == expected
