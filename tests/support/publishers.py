"""Checkpoint files in each publisher's exact format, from the parity fixtures.

The fixtures (tests/fixtures/parity/*.json) hold a publisher's key list and golden logits computed
by the publisher's own code (timm / torchvision) on weights from :mod:`tests.support.synth`; this
module writes those weights the way the publisher ships them:

- timm on the Hub: ``model.safetensors`` (``safetensors.torch.save_file``, metadata
  ``{"format": "pt"}``) or ``pytorch_model.bin`` (``torch.save`` of the state dict);
- torchvision: ``torch.save`` of the ``OrderedDict`` from ``state_dict()``, which carries
  ``_metadata[""] = {"version": N}``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .synth import spec_from_entries, state_dict_sha256, synth_input, synth_state_dict

PARITY = Path(__file__).parents[1] / "fixtures" / "parity"


@dataclass(frozen=True, eq=False)
class ParityCase:
    """A fixture: publisher state dict, input and golden logits."""

    name: str
    publisher: str
    state_dict: OrderedDict[str, torch.Tensor]
    torchvision_version: int | None
    inputs: torch.Tensor
    logits: torch.Tensor

    def tolerance(self) -> float:
        """Allowed max |difference|: 1e-4 relative to the logits' scale (at least 1e-4)."""
        return 1e-4 * max(1.0, float(self.logits.abs().max()))


@functools.cache
def load_case(name: str) -> ParityCase:
    """Load ``tests/fixtures/parity/<name>.json`` and check the synthetic weights' hash."""
    meta = json.loads((PARITY / f"{name}.json").read_text())
    state = synth_state_dict(spec_from_entries(meta["keys"]))
    if state_dict_sha256(state) != meta["weights"]["state_dict_sha256"]:
        raise AssertionError(f"{name}: synth.py no longer reproduces the fixture's weights")
    spec = meta["input"]
    inputs = synth_input(spec["batch"], spec["channels"], spec["size"])
    logits = torch.from_numpy(np.load(PARITY / meta["logits"]["file"], allow_pickle=False))
    return ParityCase(
        name=name,
        publisher=meta["publisher"],
        state_dict=state,
        torchvision_version=meta.get("torchvision_metadata_version"),
        inputs=inputs,
        logits=logits,
    )


@functools.cache
def publisher_bytes(case: ParityCase, filename: str) -> bytes:
    """The file as its publisher ships it (format chosen by ``filename``'s extension)."""
    if filename.endswith(".safetensors"):
        from safetensors.torch import save as save_safetensors

        return save_safetensors(dict(case.state_dict), metadata={"format": "pt"})
    state: OrderedDict[str, torch.Tensor] = OrderedDict(case.state_dict)
    if case.publisher == "torchvision":
        # torchvision's state_dict() OrderedDict carries the module versions; only the root
        # entry matters to MNASNet._load_from_state_dict.
        state._metadata = OrderedDict({"": {"version": case.torchvision_version or 2}})  # type: ignore[attr-defined]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
