"""Every module's train/eval flag is given back by predict, export and evaluate.

A model being fine-tuned often keeps a part in eval mode on purpose (a frozen BatchNorm); the
caller's flags are compared module by module before and after each call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import mnaszoo
from mnaszoo._modes import eval_mode


def _half_frozen() -> tuple[nn.Module, dict[str, bool]]:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=2).train()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms[:3]:  # a frozen stem, as a fine-tuning script leaves it
        norm.eval()
    return model, {name: m.training for name, m in model.named_modules()}


def _flags(model: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


def test_eval_mode_restores_each_flag_even_after_an_error() -> None:
    model, before = _half_frozen()
    inside: list[bool] = []

    def fail() -> None:
        with eval_mode(model):
            inside.extend(_flags(model).values())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert not any(inside) and _flags(model) == before


def test_predict_gives_every_module_its_mode_back() -> None:
    model, before = _half_frozen()
    mnaszoo.predict(np.zeros((40, 40, 3), dtype=np.uint8), model, topk=1)
    assert _flags(model) == before


def test_export_gives_every_module_its_mode_back(tmp_path: Path) -> None:
    model, before = _half_frozen()
    mnaszoo.export(model, tmp_path / "m.pt2", "pt2", input_size=64)
    assert _flags(model) == before


def test_evaluate_gives_every_module_its_mode_back(tmp_path: Path) -> None:
    model, before = _half_frozen()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (40, 40)).save(tmp_path / name / "1.png")
    mnaszoo.evaluate(model, tmp_path, progress=False, device="cpu")
    assert _flags(model) == before
