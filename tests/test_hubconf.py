"""hubconf.py: torch.hub.load(<this checkout>, name, source="local") builds mnaszoo's models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

import mnaszoo
from tests.support.served import Served, served  # noqa: F401  (the fixture)

ROOT = str(Path(__file__).parents[1])


def test_entry_points_list_every_model_and_peer_name() -> None:
    # torch.hub.list/help only read GitHub repositories; this is what they list from the module.
    spec = importlib.util.spec_from_file_location("hubconf", Path(ROOT) / "hubconf.py")
    assert spec is not None and spec.loader is not None
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    names = {f for f in dir(hubconf) if callable(getattr(hubconf, f)) and not f.startswith("_")}
    assert names == set(mnaszoo.list_models()) | {
        "mnasnet_050",
        "mnasnet_075",
        "mnasnet_100",
        "mnasnet_140",
        "semnasnet_050",
        "semnasnet_075",
        "semnasnet_100",
        "semnasnet_140",
        "mnasnet0_5",
        "mnasnet0_75",
        "mnasnet1_0",
        "mnasnet1_3",
    }
    assert "pretrained" in (hubconf.mnasnet_a1.__doc__ or "")


def test_load_without_weights() -> None:
    model = torch.hub.load(ROOT, "mnasnet_a1", source="local", pretrained=False, num_classes=10)
    assert isinstance(model, mnaszoo.MnasNet) and model.num_classes == 10
    peer = torch.hub.load(ROOT, "mnasnet1_0", source="local")
    assert (peer.config.spec.name, peer.config.width_mult) == ("mnasnet_b1", 1.0)


def test_load_with_weights(served: Served) -> None:  # noqa: F811
    model = torch.hub.load(ROOT, "mnasnet_small", source="local", pretrained=True)
    assert model.weights_info is not None and model.weights_info.id == "mnasnet_small.lamb_in1k"
    tv = torch.hub.load(ROOT, "mnasnet1_0", source="local", pretrained=True)
    assert tv.weights_info.id == "mnasnet_b1.tv_in1k"
