"""The model's surface: key layout, heads, features, options, and deployment paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo import MnasNet, MnasNetFeatures

from .conftest import assert_close_to_scale
from .support.served import Served, served  # noqa: F401  (the fixture)

KEYS = Path(__file__).parent / "fixtures" / "keys"


def _eval_model(name: str = "mnasnet_a1", **kwargs: object) -> MnasNet:
    torch.manual_seed(0)
    model = mnaszoo.create(name, **kwargs)  # type: ignore[call-overload]
    _randomise_bn(model)
    return model.eval()


def _randomise_bn(model: torch.nn.Module) -> None:
    # Fresh BN layers are identities in eval; give them statistics so that tests see real numerics.
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


@pytest.mark.parametrize("name", ["mnasnet_a1", "mnasnet_b1", "mnasnet_small", "mnasnet_d1"])
def test_state_dict_keys_are_pinned(name: str) -> None:
    golden = [
        line.split(" ", 1)
        for line in (KEYS / f"{name}.txt").read_text().splitlines()
        if not line.startswith("#")
    ]
    state = mnaszoo.create(name).state_dict()
    assert [(key, str(tuple(value.shape))) for key, value in state.items()] == [
        (key, shape) for key, shape in golden
    ]


def test_conv_block_layout() -> None:
    spec = mnaszoo.NetworkSpec(
        "tiny", 8, (mnaszoo.StageSpec("conv", 2, 3, 2, 1, 16, se_ratio=0.5),)
    )
    keys = [k for k in mnaszoo.build(spec).state_dict() if k.startswith("stages.0.1.")]
    assert keys[:2] == ["stages.0.1.conv.conv.weight", "stages.0.1.conv.bn.weight"]
    assert "stages.0.1.se.reduce.weight" in keys


def test_create_prints_the_documented_shape() -> None:
    model = mnaszoo.create("mnasnet_a1")
    assert model(torch.randn(1, 3, 224, 224)).shape == torch.Size([1, 1000])


def test_forward_features_and_head() -> None:
    model = _eval_model()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, model.num_features, 7, 7) and model.num_features == 1280
        pooled = model.forward_head(features, pre_logits=True)
        torch.testing.assert_close(pooled, features.mean((2, 3)))
        torch.testing.assert_close(model.forward_head(features), model.classifier(pooled))
        torch.testing.assert_close(model(x), model.forward_head(features))


def test_reset_classifier() -> None:
    model = _eval_model()
    backbone = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("class")}
    model.reset_classifier(7)
    assert model.num_classes == 7 and model.config.num_classes == 7
    assert model(torch.randn(1, 3, 96, 96)).shape == (1, 7)
    for key, value in backbone.items():
        torch.testing.assert_close(model.state_dict()[key], value)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 96, 96)).shape == (1, 1280)
    with pytest.raises(mnaszoo.InvalidArgumentError, match="num_classes must be >= 0"):
        model.reset_classifier(-1)


def test_in_chans_and_num_classes() -> None:
    model = mnaszoo.create("mnasnet_small", in_chans=1, num_classes=10)
    assert model.stem.conv.weight.shape[1] == 1
    assert model(torch.randn(3, 1, 64, 64)).shape == (3, 10)


def test_bn_settings_and_dropout_are_applied() -> None:
    model = mnaszoo.create("mnasnet_b1", bn_eps=1e-3, bn_momentum=0.0003, drop_rate=0.3)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {(bn.eps, bn.momentum) for bn in bns} == {(1e-3, 0.0003)}
    assert model.dropout.p == 0.3
    assert mnaszoo.create("mnasnet_b1").dropout.p == 0.2  # the paper's default
    assert {
        m.eps for m in mnaszoo.create("mnasnet_d1").modules() if isinstance(m, torch.nn.BatchNorm2d)
    } == {1e-3}  # TF's, for the TF-only D1


def test_drop_path_is_linear_and_training_only() -> None:
    model = _eval_model("mnasnet_b1", drop_path_rate=0.4)
    rates = [m.drop_path.p for stage in model.stages for m in stage if m.has_residual]
    assert rates == sorted(rates) and 0 < rates[-1] < 0.4
    x = torch.randn(8, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))  # eval: deterministic
        model.train()
        torch.manual_seed(0)
        first = model.forward_features(x)
        torch.manual_seed(1)
        second = model.forward_features(x)
    assert not torch.allclose(first, second)


def test_batch_equals_items() -> None:
    model = _eval_model("mnasnet_small")
    x = torch.randn(4, 3, 128, 128)
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(4)])
    # Different batch sizes may pick different conv kernels: equal up to float rounding.
    assert_close_to_scale(batched, single, 1e-5)


def test_channels_last_and_bf16_autocast() -> None:
    model = _eval_model("mnasnet_a1")
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        reference = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        assert_close_to_scale(model_cl(x.to(memory_format=torch.channels_last)), reference, 1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16
    # bf16 keeps ~3 significant digits through ~50 layers: a few percent of the logit scale
    # where the CPU has bf16 instructions (AVX-512), up to ~9% where it emulates them (AVX2).
    assert_close_to_scale(low, reference, 0.1)
    # The logits still point the same way and pick the same class.
    similarity = torch.nn.functional.cosine_similarity(low.float(), reference, dim=1)
    assert bool((similarity > 0.99).all()), similarity
    assert torch.equal(low.float().argmax(1), reference.argmax(1))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_matches_eager() -> None:
    model = _eval_model("mnasnet_a1", drop_path_rate=0.1)
    scripted = torch.jit.script(model)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))
        features = torch.jit.script(mnaszoo.create("mnasnet_small", features_only=True).eval())
        assert [f.shape[1] for f in features(x)] == [8, 16, 16, 32, 144]


def test_torch_export_matches_eager() -> None:
    model = _eval_model("mnasnet_b1")
    x = torch.randn(2, 3, 96, 96)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def _reductions(name: str, **kwargs: object) -> tuple[MnasNetFeatures, list[torch.Tensor]]:
    model = mnaszoo.create(name, features_only=True, **kwargs)  # type: ignore[call-overload]
    with torch.no_grad():
        return model, model.eval()(torch.randn(1, 3, 224, 224))


@pytest.mark.parametrize("name", mnaszoo.list_models())
def test_features_only_levels(name: str) -> None:
    model, outputs = _reductions(name)
    assert [info.reduction for info in model.feature_info] == [2, 4, 8, 16, 32]
    for info, output in zip(model.feature_info, outputs, strict=True):
        assert output.shape == (1, info.num_chs, 224 // info.reduction, 224 // info.reduction)
    classifier = mnaszoo.create(name)
    assert classifier.feature_info == model.feature_info
    # The backbone's weights are the classifier's stem and stages.
    keys = [k for k in classifier.state_dict() if k.startswith(("stem.", "stages."))]
    assert list(model.state_dict()) == keys


def test_a1_feature_taps_match_timm() -> None:
    # timm semnasnet_100 features_only: channels (16, 24, 40, 112, 320) from stages 0, 1, 2, 4, 6.
    model = mnaszoo.create("mnasnet_a1", features_only=True)
    assert [(i.num_chs, i.stage) for i in model.feature_info] == [
        (16, 0),
        (24, 1),
        (40, 2),
        (112, 4),
        (320, 6),
    ]


def test_out_indices_select_levels_and_trim_stages() -> None:
    model, outputs = _reductions("mnasnet_b1", out_indices=(1, 2))
    assert [o.shape[1] for o in outputs] == [24, 40]
    assert len(model.stages) == 3  # nothing after the last requested level is built
    _, outputs = _reductions("mnasnet_b1", out_indices=(-1,))
    assert [o.shape[1:] for o in outputs] == [(320, 7, 7)]


@pytest.mark.parametrize(
    ("out_indices", "error", "message"),
    [
        ((5,), mnaszoo.InvalidArgumentError, "item 5 is out of range; this model has 5 feature"),
        ((), mnaszoo.InvalidArgumentError, "must not be empty"),
        ((2, 1), mnaszoo.InvalidArgumentError, "increasing without repeats"),
        ("1,2", mnaszoo.ArgumentTypeError, "out_indices must be a tuple of ints"),
        ((1.0,), mnaszoo.ArgumentTypeError, "out_indices item must be an int"),
    ],
)
def test_out_indices_errors(out_indices: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        mnaszoo.create("mnasnet_a1", features_only=True, out_indices=out_indices)  # type: ignore[arg-type]


def test_out_indices_need_features_only() -> None:
    with pytest.raises(mnaszoo.InvalidArgumentError, match="only applies with features_only"):
        mnaszoo.create("mnasnet_a1", out_indices=(1,))  # type: ignore[call-overload]


def test_gradients_reach_every_parameter() -> None:
    model = mnaszoo.create("mnasnet_a1_050", num_classes=5, drop_path_rate=0.1).train()
    loss = model(torch.randn(2, 3, 64, 64)).logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


# --- timm's surface: feature_info object, forward_intermediates, pruning, classifier, cfg -------

_TIMM_REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures/reference/reference_models.json").read_text()
)["timm"]


@pytest.mark.parametrize(
    ("timm_name", "name"),
    [
        ("semnasnet_100", "mnasnet_a1"),
        ("mnasnet_100", "mnasnet_b1"),
        ("mnasnet_small", "mnasnet_small"),
    ],
)
def test_feature_info_answers_as_timms(timm_name: str, name: str) -> None:
    timm = _TIMM_REFERENCE[timm_name]["feature_info"]  # timm's own get_dicts(), recorded
    info = mnaszoo.create(name, features_only=True).feature_info
    assert info.channels() == [f["num_chs"] for f in timm]
    assert info.reduction() == [f["reduction"] for f in timm]
    # Our modules are named stages.<s> where timm's are blocks.<s>; stage and index agree.
    assert info.module_name() == [f["module"].replace("blocks.", "stages.") for f in timm]
    assert [
        {k: d[k] for k in ("num_chs", "reduction", "stage", "index")} for d in info.get_dicts()
    ] == [{k: f[k] for k in ("num_chs", "reduction", "stage", "index")} for f in timm]
    picked = mnaszoo.create(name, features_only=True, out_indices=(1, 3)).feature_info
    # Without idx: the selected levels; with idx: any level of the network (timm's semantics).
    assert picked.channels() == [timm[1]["num_chs"], timm[3]["num_chs"]]
    assert picked.channels(0) == timm[0]["num_chs"] and picked.reduction(-1) == 32
    assert picked.get_dicts(keys=("module",), idx=[0, 4]) == [
        {"module": "stages.0"},
        {"module": "stages.6"},
    ]
    assert len(picked) == 2 and picked[0].num_chs == timm[1]["num_chs"]  # still a tuple
    with pytest.raises(mnaszoo.InvalidArgumentError, match="out of range"):
        picked.channels(5)


def test_forward_intermediates_matches_the_feature_backbone() -> None:
    model = _eval_model("mnasnet_a1")
    backbone = mnaszoo.create("mnasnet_a1", features_only=True).eval()
    backbone.load_state_dict(
        {k: v for k, v in model.state_dict().items() if k.startswith(("stem.", "stages."))}
    )
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        expected = backbone(x)
        assert torch.equal(final, model.forward_features(x))
        assert all(torch.equal(a, b) for a, b in zip(maps, expected, strict=True))
        # indices: an int takes the last n levels, a sequence picks (negative from the end).
        last2 = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [m.shape[1] for m in last2] == [112, 320]
        picked = model.forward_intermediates(x, indices=[0, -1], intermediates_only=True)
        assert torch.equal(picked[0], expected[0]) and torch.equal(picked[1], expected[4])
        # stop_early: the final output is the deepest selected level's map, no head.
        early, early_maps = model.forward_intermediates(x, indices=[1], stop_early=True)
        assert torch.equal(early, expected[1]) and torch.equal(early_maps[0], expected[1])
        assert model.forward_intermediates(x, norm=True)[0].shape == final.shape
    for bad, error in [
        ({"indices": 6}, mnaszoo.InvalidArgumentError),
        ({"indices": [5]}, mnaszoo.InvalidArgumentError),
        ({"indices": []}, mnaszoo.InvalidArgumentError),
        ({"indices": "1"}, mnaszoo.ArgumentTypeError),
        ({"output_fmt": "NHWC"}, mnaszoo.InvalidArgumentError),
    ]:
        with pytest.raises(error):
            model.forward_intermediates(x, **bad)  # type: ignore[arg-type]


def test_prune_intermediate_layers() -> None:
    model = _eval_model("mnasnet_b1")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        wanted = model.forward_intermediates(x, indices=[0, 2], intermediates_only=True)
    assert model.prune_intermediate_layers([0, 2]) == [0, 2]
    assert len(model.stages) == 3 and isinstance(model.head, torch.nn.Identity)
    assert model.num_classes == 0 and isinstance(model.get_classifier(), torch.nn.Identity)
    with torch.no_grad():
        got = model.forward_intermediates(x, indices=[0, 2], intermediates_only=True)
    assert all(torch.equal(a, b) for a, b in zip(got, wanted, strict=True))
    # Keeping the last level keeps the head unless asked otherwise (timm's prune_norm).
    whole = mnaszoo.create("mnasnet_small")
    whole.prune_intermediate_layers(indices=1, prune_head=False)
    assert not isinstance(whole.head, torch.nn.Identity) and whole.num_classes == 1000


def test_get_classifier_and_pretrained_cfg() -> None:
    model = mnaszoo.create("mnasnet_small", num_classes=7)
    assert model.get_classifier() is model.classifier and model.get_classifier().out_features == 7
    cfg = model.pretrained_cfg
    assert cfg["num_classes"] == 7 and cfg["input_size"] == (3, 224, 224)
    assert cfg["first_conv"] == "stem.conv" and cfg["classifier"] == "classifier"
    assert dict(model.named_modules())[cfg["first_conv"]] is model.stem.conv
    assert cfg["tag"] is None and cfg["crop_pct"] == 0.875 and cfg["pool_size"] == (7, 7)


def test_pretrained_cfg_carries_the_weights_recipe(served: Served) -> None:  # noqa: F811
    model = mnaszoo.create("mnasnet1_3", pretrained=True)
    cfg = model.pretrained_cfg
    # torchvision's recipe: resize 232, crop 224, bilinear (MNASNet1_3_Weights.IMAGENET1K_V1).
    assert (cfg["resize_size"], cfg["input_size"], cfg["interpolation"]) == (
        232,
        (3, 224, 224),
        "bilinear",
    )
    assert cfg["crop_pct"] == round(224 / 232, 4) and cfg["tag"] == "tv_in1k"
    assert "PR #6019" in cfg["recipe"] and cfg["metrics"][0]["top1"] == 76.506
    assert cfg["license"] == "bsd-3-clause"
    timm_model = mnaszoo.create("semnasnet_100", pretrained=True)
    assert timm_model.pretrained_cfg["hf_hub_id"] == "timm/semnasnet_100.rmsp_in1k"
    assert mnaszoo.create("mnasnet_a1", features_only=True).pretrained_cfg["architecture"] == (
        "mnasnet_a1"
    )
