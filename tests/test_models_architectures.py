"""Every block of mnaszoo's plans against timm's built models, recorded as a fixture.

``tests/fixtures/reference/reference_models.json`` was written by
``tests/fixtures/reference/make_parity_fixtures.py`` from timm 1.0.31 / torchvision 0.29.1 models
(see that script); CI reads the JSON and needs neither library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mnaszoo
from mnaszoo.models.plan import resolve_plan

REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "reference" / "reference_models.json").read_text()
)
TIMM_TO_MNASZOO = {
    "semnasnet_050": (mnaszoo.MNASNET_A1, 0.5),
    "semnasnet_075": (mnaszoo.MNASNET_A1, 0.75),
    "semnasnet_100": (mnaszoo.MNASNET_A1, 1.0),
    "semnasnet_140": (mnaszoo.MNASNET_A1, 1.4),
    "mnasnet_050": (mnaszoo.MNASNET_B1, 0.5),
    "mnasnet_075": (mnaszoo.MNASNET_B1, 0.75),
    "mnasnet_100": (mnaszoo.MNASNET_B1, 1.0),
    "mnasnet_140": (mnaszoo.MNASNET_B1, 1.4),
    "mnasnet_small": (mnaszoo.MNASNET_SMALL, 1.0),
}


def test_fixture_covers_every_timm_model() -> None:
    assert set(REFERENCE["timm"]) == set(TIMM_TO_MNASZOO)


@pytest.mark.parametrize("timm_name", sorted(TIMM_TO_MNASZOO))
def test_blocks_match_timm(timm_name: str) -> None:
    spec, width = TIMM_TO_MNASZOO[timm_name]
    timm: dict[str, Any] = REFERENCE["timm"][timm_name]
    plan = resolve_plan(spec, width)
    assert plan.stem_channels == timm["stem_chs"]
    assert plan.head_channels == timm["head_chs"]
    ours = [
        {
            "name": f"blocks.{b.stage}.{b.index}",
            "in_chs": b.in_channels,
            "exp_chs": b.mid_channels if b.kind is mnaszoo.BlockKind.MB else None,
            "out_chs": b.out_channels,
            "kernel": b.kernel,
            "stride": b.stride,
            "se_reduced_chs": b.se_channels or None,
            "has_skip": b.residual,
        }
        for b in plan.blocks
    ]
    theirs = [{key: block[key] for key in ours[0]} for block in timm["blocks"]]
    assert ours == theirs


@pytest.mark.parametrize("timm_name", sorted(TIMM_TO_MNASZOO))
def test_counts_and_features_match_timm(timm_name: str) -> None:
    spec, width = TIMM_TO_MNASZOO[timm_name]
    timm: dict[str, Any] = REFERENCE["timm"][timm_name]
    summary = mnaszoo.describe(mnaszoo.ModelConfig.resolve(spec, width_mult=width))
    assert (summary.params, summary.macs) == (timm["num_params"], timm["macs_224"])
    model = mnaszoo.build(spec, width_mult=width, features_only=True)
    assert [(i.num_chs, i.reduction, f"blocks.{i.stage}") for i in model.feature_info] == [
        (f["num_chs"], f["reduction"], f["module"]) for f in timm["feature_info"]
    ]


@pytest.mark.parametrize(
    ("tv_name", "name"),
    [
        ("mnasnet0_5", "mnasnet_b1_050"),
        ("mnasnet0_75", "mnasnet_b1_075"),
        ("mnasnet1_0", "mnasnet_b1"),
        ("mnasnet1_3", "mnasnet_b1_130"),
    ],
)
def test_counts_match_torchvision(tv_name: str, name: str) -> None:
    summary = mnaszoo.describe(name)
    reference = REFERENCE["torchvision"][tv_name]
    assert (summary.params, summary.macs) == (reference["num_params"], reference["macs_224"])
