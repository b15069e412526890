"""optimize_for_inference: BatchNorm folding, channels_last, inference-only copies."""

from __future__ import annotations

import io

import pytest
import torch

import mnaszoo
from mnaszoo.deploy.optimize import InferenceOnlyError, is_inference_optimized

from .conftest import assert_close_to_scale
from .test_models_mnasnet import _randomise_bn


def _model(name: str, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model: torch.nn.Module = mnaszoo.create(name, **kwargs)  # type: ignore[call-overload]
    _randomise_bn(model)
    return model.eval()


@pytest.mark.parametrize("name", mnaszoo.list_models())
def test_fused_matches_plain_for_every_model(name: str) -> None:
    model = _model(name)
    fast = mnaszoo.optimize_for_inference(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        assert_close_to_scale(fast(x), expected, 1e-4)
        assert_close_to_scale(fast(x.to(memory_format=torch.channels_last)), expected, 1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())


def test_features_backbone_matches() -> None:
    model = _model("mnasnet_b1", features_only=True, out_indices=(1, 3, 4))
    fast = mnaszoo.optimize_for_inference(model, channels_last=False)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for got, want in zip(fast(x), model(x), strict=True):
            assert_close_to_scale(got, want, 1e-4)


def test_original_is_untouched_and_copy_is_eval() -> None:
    model = _model("mnasnet_small").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = mnaszoo.optimize_for_inference(model)
    assert model.training and not fast.training
    assert isinstance(model.stem.bn, torch.nn.BatchNorm2d) and type(model) is mnaszoo.MnasNet
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.stem.conv.weight.is_contiguous()
    assert fast.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.stem.conv.bias is not None and isinstance(fast.stem.bn, torch.nn.Identity)
    assert isinstance(fast, mnaszoo.MnasNet) and is_inference_optimized(fast)
    assert not is_inference_optimized(model)


def test_training_mode_is_refused() -> None:
    fast = mnaszoo.optimize_for_inference(_model("mnasnet_small"))
    with pytest.raises(InferenceOnlyError, match="cannot be trained"):
        fast.train()
    with pytest.raises(InferenceOnlyError):
        fast.train(True)
    assert fast.eval() is fast and not fast.training
    assert isinstance(InferenceOnlyError("x"), mnaszoo.MnaszooError)


def test_options_off_and_flags_checked() -> None:
    model = _model("mnasnet_small")
    plain = mnaszoo.optimize_for_inference(model, fuse_bn=False, channels_last=False)
    assert isinstance(plain.stem.bn, torch.nn.BatchNorm2d)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x))
    with pytest.raises(mnaszoo.ArgumentTypeError):
        mnaszoo.optimize_for_inference(model, fuse_bn=1)  # type: ignore[arg-type]
    with pytest.raises(mnaszoo.ArgumentTypeError, match="torch module"):
        mnaszoo.optimize_for_inference("mnasnet_a1")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_fused_model_scripts_exports_and_pickles() -> None:
    model = _model("mnasnet_small")
    fast = mnaszoo.optimize_for_inference(model)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = model(x)
        assert_close_to_scale(torch.jit.script(fast)(x), expected, 1e-4)
        assert_close_to_scale(torch.export.export(fast, (x,)).module()(x), expected, 1e-4)
        buffer = io.BytesIO()
        torch.save(fast, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        assert type(loaded) is type(fast)
        assert_close_to_scale(loaded(x), expected, 1e-4)
