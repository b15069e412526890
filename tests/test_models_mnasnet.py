"""The model's surface: key layout, heads, features, options, and deployment paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo import MnasNet, MnasNetFeatures

from .conftest import assert_close_to_scale

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
