"""timm's and torchvision's names for the same models and weights (checked against both).

A peer name stands for a registered mnaszoo model and, where its publisher ships weights for it,
the manifest entry holding exactly those weights: ``create("mnasnet1_0", pretrained=True)``
loads torchvision's file, ``create("mnasnet_100", pretrained=True)`` timm's. A peer model name
whose publisher has no weights maps to the architecture only, and asking it for weights says
where weights of that architecture do exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["PEER_NAMES", "PeerName", "peer_name"]

Peer = Literal["timm", "torchvision"]


@dataclass(frozen=True)
class PeerName:
    """One name a peer library uses, and what it is in mnaszoo.

    Attributes:
        name: the peer's spelling (``"semnasnet_100"``, ``"MNASNet1_0_Weights.IMAGENET1K_V1"``).
        peer: ``"timm"`` or ``"torchvision"``.
        model: the registered mnaszoo model with the same architecture.
        weights: the mnaszoo weights id of the file this peer publishes under the name
            (``None``: the peer publishes no weights for it).
        names_weights: whether the name picks weights (a timm ``model.tag`` or a torchvision
            weights enum) rather than only an architecture.
    """

    name: str
    peer: Peer
    model: str
    weights: str | None
    names_weights: bool = False


def _table() -> dict[str, PeerName]:
    # (peer name, peer, mnaszoo model, mnaszoo weights or None). The architecture equalities are
    # those of the reference's parameter table (timm mnasnet_* = torchvision mnasnetX_Y = B1,
    # timm semnasnet_* = A1); the weights are the manifest entry whose file that peer serves.
    models: list[tuple[str, Peer, str, str | None]] = [
        ("mnasnet_050", "timm", "mnasnet_b1_050", None),
        ("mnasnet_075", "timm", "mnasnet_b1_075", None),
        ("mnasnet_100", "timm", "mnasnet_b1", "mnasnet_b1.rmsp_in1k"),
        ("mnasnet_140", "timm", "mnasnet_b1_140", None),
        ("semnasnet_050", "timm", "mnasnet_a1_050", None),
        ("semnasnet_075", "timm", "mnasnet_a1_075", "mnasnet_a1_075.rmsp_in1k"),
        ("semnasnet_100", "timm", "mnasnet_a1", "mnasnet_a1.rmsp_in1k"),
        ("semnasnet_140", "timm", "mnasnet_a1_140", None),
        ("mnasnet0_5", "torchvision", "mnasnet_b1_050", "mnasnet_b1_050.tv_in1k"),
        ("mnasnet0_75", "torchvision", "mnasnet_b1_075", "mnasnet_b1_075.tv_in1k"),
        ("mnasnet1_0", "torchvision", "mnasnet_b1", "mnasnet_b1.tv_in1k"),
        ("mnasnet1_3", "torchvision", "mnasnet_b1_130", "mnasnet_b1_130.tv_in1k"),
    ]
    weights: list[tuple[str, Peer, str, str]] = [
        ("mnasnet_100.rmsp_in1k", "timm", "mnasnet_b1", "mnasnet_b1.rmsp_in1k"),
        ("semnasnet_075.rmsp_in1k", "timm", "mnasnet_a1_075", "mnasnet_a1_075.rmsp_in1k"),
        ("semnasnet_100.rmsp_in1k", "timm", "mnasnet_a1", "mnasnet_a1.rmsp_in1k"),
    ]
    for enum, model, weights_id in (
        ("MNASNet0_5_Weights", "mnasnet_b1_050", "mnasnet_b1_050.tv_in1k"),
        ("MNASNet0_75_Weights", "mnasnet_b1_075", "mnasnet_b1_075.tv_in1k"),
        ("MNASNet1_0_Weights", "mnasnet_b1", "mnasnet_b1.tv_in1k"),
        ("MNASNet1_3_Weights", "mnasnet_b1_130", "mnasnet_b1_130.tv_in1k"),
    ):
        # torchvision's DEFAULT is IMAGENET1K_V1 for all four (the only weights each has).
        for member in ("IMAGENET1K_V1", "DEFAULT"):
            weights.append((f"{enum}.{member}", "torchvision", model, weights_id))
    table = {name: PeerName(name, peer, model, w) for name, peer, model, w in models}
    for name, peer, model, w in weights:
        table[name] = PeerName(name, peer, model, w, names_weights=True)
    return table


PEER_NAMES = MappingProxyType(_table())
"""Every timm and torchvision name mnaszoo understands, by name (read-only)."""


def peer_name(name: str) -> PeerName | None:
    """The peer name ``name`` (exact spelling), or ``None`` when it is not one."""
    return PEER_NAMES.get(name)
