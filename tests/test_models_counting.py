"""Parameter and MAC counts of every variant against the published reference figures.

Reference figures: ../shared/reference/mnasnet-reference.md section 5 (timm 1.0.31 and torchvision
0.29.1 models and a PyTorch re-build of the TF specs, counted with FlopCounterMode; conv and linear
only), cross-checked against torchvision's ``num_params`` / ``_ops`` metadata.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import mnaszoo
from mnaszoo.models.counting import count_macs, count_params
from mnaszoo.models.registry import MODELS

# name: (parameters, MACs at 224 in millions rounded to 0.01; None where no figure is published)
REFERENCE = {
    "mnasnet_a1": (3_887_038, 311.58),
    "mnasnet_a1_035": (1_747_018, 61.68),
    "mnasnet_a1_050": (2_082_006, 103.16),
    "mnasnet_a1_075": (2_912_278, 223.45),
    "mnasnet_a1_140": (6_105_992, 586.32),
    "mnasnet_b1": (4_383_312, 314.42),
    "mnasnet_b1_050": (2_218_512, 104.46),
    "mnasnet_b1_075": (3_170_208, 215.49),
    "mnasnet_b1_130": (6_282_256, 526.36),
    "mnasnet_b1_140": (7_115_728, 588.80),
    "mnasnet_small": (2_030_264, 68.34),
    "mnasnet_d1": (3_638_404, 967.71),
    "mnasnet_d1_320": (6_932_240, 1807.73),
}


def test_every_registered_model_has_a_reference() -> None:
    assert set(REFERENCE) == set(MODELS)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_summary_matches_reference(name: str) -> None:
    params, macs = REFERENCE[name]
    summary = mnaszoo.describe(name)
    assert summary.params == params
    assert round(summary.macs / 1e6, 2) == pytest.approx(macs, abs=0.006)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_built_model_has_reference_params(name: str) -> None:
    model = mnaszoo.create(name)
    assert sum(p.numel() for p in model.parameters()) == REFERENCE[name][0]


def _measured_macs(model: torch.nn.Module, size: int, in_chans: int = 3) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, in_chans, size, size))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("mnasnet_a1", 224),
        ("mnasnet_b1_130", 224),
        ("mnasnet_small", 193),
        ("mnasnet_d1", 320),
        ("mnasnet_a1_035", 97),
    ],
)
def test_analytic_macs_equal_flop_counter(name: str, size: int) -> None:
    model = mnaszoo.create(name).eval()
    config = model.config
    assert count_macs(config.plan, size) == _measured_macs(model, size)


def test_counts_follow_options() -> None:
    model = mnaszoo.create("mnasnet_b1", num_classes=10, in_chans=1, depth_mult=1.5)
    plan = model.config.plan
    assert count_params(plan, num_classes=10, in_chans=1) == sum(
        p.numel() for p in model.parameters()
    )
    assert count_macs(plan, 160, num_classes=10, in_chans=1) == _measured_macs(model.eval(), 160, 1)


def test_a1_macs_at_lower_resolutions() -> None:
    # TF-replica figures at 192/160/128/96 (reference section 5).
    plan = mnaszoo.create("mnasnet_a1").config.plan
    measured = {size: round(count_macs(plan, size) / 1e6, 1) for size in (192, 160, 128, 96)}
    assert measured == {192: 229.3, 160: 159.7, 128: 102.8, 96: 58.5}


def test_describe_renders_a_table() -> None:
    text = str(mnaszoo.describe("mnasnet_a1", input_size=160))
    assert text.splitlines()[0] == "mnasnet_a1 (width x1, depth x1, 1000 classes) @ 160x160"
    assert "stages.2" in text and "6,10" in text  # SE widths of the first and repeated blocks
    assert text.splitlines()[-1].startswith("total: 3,887,038 parameters")


def test_describe_image_size_is_the_old_spelling_of_input_size() -> None:
    with pytest.warns(DeprecationWarning, match="use input_size="):
        old = mnaszoo.describe("mnasnet_a1", image_size=160)
    assert old.image_size == (160, 160)
    assert str(old) == str(mnaszoo.describe("mnasnet_a1", input_size=160))
    with pytest.raises(mnaszoo.InvalidArgumentError, match="give input_size= only"):
        mnaszoo.describe("mnasnet_a1", input_size=160, image_size=160)
