"""Fine-tuning helpers (mnaszoo.tasks.finetune), gradient checkpointing and examples/finetune.py."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import pickle
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

import mnaszoo
from mnaszoo.tasks.finetune import (
    FINETUNE_BN_MOMENTUM,
    EvalModeBatchNorm2d,
    count_parameters,
    freeze,
    freeze_bn,
    param_groups,
    set_bn_momentum,
    stage_names,
    unfreeze,
)

EXAMPLE = Path(__file__).parents[1] / "examples" / "finetune.py"


def load_example() -> ModuleType:
    """Import examples/finetune.py as a module (it is a script, not part of the package)."""
    name = "mnaszoo_finetune_example"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def small(num_classes: int = 10, **kwargs: Any) -> mnaszoo.MnasNet:
    torch.manual_seed(0)
    return mnaszoo.create("mnasnet_small", num_classes=num_classes, **kwargs)


def bn_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def train_step(model: nn.Module, size: int = 32, lr: float = 0.1) -> None:
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    x = torch.randn(8, 3, size, size)
    loss = F.cross_entropy(model(x), torch.arange(8) % 10)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------- freeze


def test_stage_names() -> None:
    model = small()
    names = stage_names(model)
    assert names == (
        "stem",
        *(f"stages.{i}" for i in range(len(model.stages))),
        "head",
        "classifier",
    )
    features = mnaszoo.create("mnasnet_small", features_only=True, out_indices=(1,))
    assert stage_names(features) == ("stem", "stages.0", "stages.1")


def test_freeze_up_to_a_stage_freezes_parameters_and_bn_statistics() -> None:
    model = small()
    keys = list(model.state_dict())
    freeze(model, 2)
    frozen = ("stem.", "stages.0.", "stages.1.", "stages.2.")
    for name, parameter in model.named_parameters():
        assert parameter.requires_grad == (not name.startswith(frozen)), name
    assert list(model.state_dict()) == keys  # same checkpoint layout
    for name, layer in model.named_modules():
        if isinstance(layer, nn.BatchNorm2d):
            assert isinstance(layer, EvalModeBatchNorm2d) == name.startswith(frozen), name

    model.train()  # must not switch the frozen BatchNorm layers back to training
    assert not model.stem.bn.training and not any(m.training for m in bn_layers(model.stages[2]))
    assert model.head.bn.training and all(m.training for m in bn_layers(model.stages[3]))

    before = snapshot(model)
    train_step(model)
    after = snapshot(model)
    for key in before:
        changed = not torch.equal(before[key], after[key])
        if key.startswith(frozen):
            assert not changed, f"{key} changed although frozen"
        elif key.endswith(("running_mean", "running_var", "head.conv.weight", "classifier.bias")):
            assert changed, f"{key} did not train"


def test_freeze_head_is_a_linear_probe_and_classifier_freezes_all() -> None:
    model = small()
    freeze(model, "head")
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "classifier.weight",
        "classifier.bias",
    ]
    assert count_parameters(model) == (1280 * 10 + 10, sum(p.numel() for p in model.parameters()))
    assert not any(m.training for m in bn_layers(model.train()))
    freeze(model, "classifier")
    assert count_parameters(model)[0] == 0
    with pytest.raises(mnaszoo.InvalidArgumentError, match="no trainable parameters"):
        param_groups(model, lr=0.1, weight_decay=0.0)


def test_freeze_accepts_part_names_and_only_adds() -> None:
    model = small()
    freeze(model, "stem")
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == [
        "stem.conv.weight",
        "stem.bn.weight",
        "stem.bn.bias",
    ]
    freeze(model, "stages.1")
    freeze(model, 0)  # a smaller prefix does not unfreeze stages.1
    assert not any(p.requires_grad for p in model.stages[1].parameters())
    assert all(p.requires_grad for p in model.stages[2].parameters())


@pytest.mark.parametrize(
    ("up_to_stage", "error", "message"),
    [
        (-1, mnaszoo.InvalidArgumentError, r"out of range; accepted: a stage index 0\.\.6"),
        (7, mnaszoo.InvalidArgumentError, "Use 'stem' to freeze only the stem"),
        ("stages.9", mnaszoo.InvalidArgumentError, "is not a part; accepted: .*'head'"),
        ("block", mnaszoo.InvalidArgumentError, "'stem', 'stages.0'"),
        (True, mnaszoo.ArgumentTypeError, "must be an int or a str, got bool"),
        (2.0, mnaszoo.ArgumentTypeError, "must be an int or a str, got float"),
    ],
)
def test_freeze_rejects_bad_stages(up_to_stage: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        freeze(small(), up_to_stage)


def test_helpers_reject_wrapped_or_foreign_models() -> None:
    class Wrapper(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    with pytest.raises(mnaszoo.ArgumentTypeError, match=r"Wrapper\.module.*before wrapping"):
        freeze(Wrapper(small()), 1)
    with pytest.raises(mnaszoo.ArgumentTypeError, match="takes a MnasNet"):
        param_groups(nn.Linear(2, 2), lr=0.1, weight_decay=0.0)  # type: ignore[arg-type]
    for function in (freeze_bn, unfreeze):
        with pytest.raises(mnaszoo.ArgumentTypeError, match="takes a torch module"):
            function("model")  # type: ignore[arg-type]
    with pytest.raises(mnaszoo.ArgumentTypeError, match=r"must be nn\.BatchNorm2d"):
        freeze_bn(nn.Sequential(nn.BatchNorm1d(3)))


def test_unfreeze_restores_everything() -> None:
    model = small()
    reference = snapshot(model)
    freeze(model, 4)
    freeze_bn(model)
    model.eval()
    unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())
    assert all(type(m) is nn.BatchNorm2d for m in bn_layers(model))
    assert not any(m.training for m in bn_layers(model))  # follows the model's mode: eval
    model.train()
    assert all(m.training for m in bn_layers(model))
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_frozen_models_copy_pickle_script_and_save(tmp_path: Path) -> None:
    model = small()
    freeze(model, 3)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    expected = model(x)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert isinstance(clone.stem.bn, EvalModeBatchNorm2d)
        assert not clone.train().stem.bn.training
        torch.testing.assert_close(clone.eval()(x), expected)
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), expected)
    mnaszoo.save_pretrained(model, tmp_path)
    loaded = mnaszoo.from_pretrained(tmp_path)
    torch.testing.assert_close(loaded(x), expected)


def test_freeze_bn_freezes_statistics_and_affine_only() -> None:
    model = small()
    freeze_bn(model)
    for name, parameter in model.named_parameters():
        assert parameter.requires_grad == (".bn." not in name and not name.startswith("stem.bn")), (
            name
        )
    before = snapshot(model)
    train_step(model)
    after = snapshot(model)
    assert all(torch.equal(before[k], after[k]) for k in before if ".bn." in k)
    assert not torch.equal(before["head.conv.weight"], after["head.conv.weight"])


def test_freeze_also_handles_sync_batchnorm() -> None:
    model = small()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    freeze(converted, "stem")
    assert isinstance(converted.stem.bn, EvalModeBatchNorm2d)
    assert not converted.train().stem.bn.training
    unfreeze(converted)
    assert type(converted.stem.bn) is nn.SyncBatchNorm


# --------------------------------------------------------------------------- BN momentum


def test_set_bn_momentum() -> None:
    model = small()
    assert model.stem.bn.momentum == pytest.approx(0.01)
    count = set_bn_momentum(model, FINETUNE_BN_MOMENTUM)
    assert count == len(bn_layers(model)) > 0
    assert {m.momentum for m in bn_layers(model)} == {FINETUNE_BN_MOMENTUM}
    with pytest.raises(mnaszoo.InvalidArgumentError, match="TensorFlow's decay convention"):
        set_bn_momentum(model, 0.99)
    with pytest.raises(mnaszoo.InvalidArgumentError, match=r">= 0\.0"):
        set_bn_momentum(model, -0.1)
    with pytest.raises(mnaszoo.ArgumentTypeError, match="must be a number"):
        set_bn_momentum(model, "0.1")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- param groups


def _lr_of(groups: list[dict[str, Any]]) -> dict[int, tuple[float, float, str]]:
    return {id(p): (g["lr"], g["weight_decay"], g["name"]) for g in groups for p in g["params"]}


def test_param_groups_decay_and_head_multiplier() -> None:
    model = small()
    groups = param_groups(model, lr=0.01, weight_decay=0.05, head_lr_mult=10.0)
    assert [g["name"] for g in groups] == [
        "body/decay",
        "body/no_decay",
        "classifier/decay",
        "classifier/no_decay",
    ]
    by_id = _lr_of(groups)
    assert len(by_id) == sum(len(g["params"]) for g in groups)  # each parameter once
    named = dict(model.named_parameters())
    assert set(by_id) == {id(p) for p in named.values()}
    for name, parameter in named.items():
        lr, decay, _ = by_id[id(parameter)]
        no_decay = name.endswith(".bias") or ".bn." in name
        assert decay == (0.0 if no_decay else 0.05), name
        assert lr == pytest.approx(0.1 if name.startswith("classifier.") else 0.01), name
    optimizer = torch.optim.AdamW(groups)  # accepted as is
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01, 0.01, 0.1, 0.1])


def test_param_groups_layer_decay() -> None:
    model = small()
    num_blocks = sum(len(stage) for stage in model.stages)
    groups = param_groups(model, lr=1.0, weight_decay=0.0, head_lr_mult=2.0, layer_decay=0.5)
    by_name = {g["name"].split("/")[0]: g["lr"] for g in groups}
    max_depth = num_blocks + 2
    assert by_name["stem"] == pytest.approx(0.5**max_depth)  # deepest from the head
    assert by_name["stages.0.0"] == pytest.approx(0.5 ** (max_depth - 1))
    assert by_name["head"] == pytest.approx(0.5)
    assert by_name["classifier"] == pytest.approx(2.0)
    lrs = [g["lr"] for g in groups]
    assert lrs == sorted(lrs)  # shallow to deep, rates growing toward the head
    assert all(g["lr_scale"] == pytest.approx(g["lr"]) for g in groups)


def test_param_groups_skip_frozen_parameters() -> None:
    model = small()
    freeze(model, 5)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(_lr_of(param_groups(model, lr=0.1, weight_decay=0.01))) == trainable


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": 0.0}, mnaszoo.InvalidArgumentError, "lr must be > 0.0"),
        ({"lr": "1e-3"}, mnaszoo.ArgumentTypeError, "lr must be a number"),
        ({"weight_decay": -1.0}, mnaszoo.InvalidArgumentError, "weight_decay must be >= 0.0"),
        ({"head_lr_mult": 0}, mnaszoo.InvalidArgumentError, "head_lr_mult must be > 0.0"),
        ({"layer_decay": 0.0}, mnaszoo.InvalidArgumentError, "layer_decay must be > 0.0"),
        ({"layer_decay": 1.5}, mnaszoo.InvalidArgumentError, "layer_decay must be <= 1.0"),
    ],
)
def test_param_groups_validate(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"lr": 0.1, "weight_decay": 0.0, **kwargs}
    with pytest.raises(error, match=message):
        param_groups(small(), **arguments)


# --------------------------------------------------------------------------- checkpointing


def test_grad_checkpointing_gives_the_same_step() -> None:
    plain = small(drop_path_rate=0.2)
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_grad_checkpointing()
    assert checkpointed.grad_checkpointing and not plain.grad_checkpointing
    x, y = torch.randn(6, 3, 64, 64), torch.arange(6)
    for model in (plain, checkpointed):
        model.train()
        torch.manual_seed(1)  # the same drop-path masks
        F.cross_entropy(model(x), y).backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0, msg=name)
    # BatchNorm statistics are updated once, not again during recomputation.
    for key, value in plain.state_dict().items():
        assert torch.equal(value, checkpointed.state_dict()[key]), key


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_grad_checkpointing_is_training_only_and_scripts() -> None:
    model = small()
    model.set_grad_checkpointing(True)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    expected = model(x)
    torch.testing.assert_close(torch.jit.script(model)(x), expected)
    with torch.no_grad():
        model.train()(x)  # no gradients: runs without checkpointing
    model.set_grad_checkpointing(False)
    assert not model.grad_checkpointing
    with pytest.raises(mnaszoo.ArgumentTypeError, match="enable must be True or False"):
        model.set_grad_checkpointing(1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the example


def example_args(output: Path, *extra: str) -> list[str]:
    return [
        "--model",
        "mnasnet_small",
        "--input-size",
        "32",
        "--batch-size",
        "32",
        "--no-progress",
        "--samples",
        "3",
        "--output",
        str(output),
        *extra,
    ]


def test_example_learns_digits(tmp_path: Path) -> None:
    """A short run on a subset of the digits: the loss falls and accuracy is far above chance."""
    example = load_example()
    output = tmp_path / "run"
    args = example.parse_args(
        example_args(output, "--limit", "500", "--epochs", "10", "--label-smoothing", "0")
    )
    result = example.run(args)
    history = result.metrics["history"]
    assert len(history) == 10
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert history[-1]["val_loss"] < 0.7 * history[0]["val_loss"]
    assert result.metrics["final_val_acc"] >= 0.5  # chance is 0.1
    assert result.metrics["val_images"] == 100 and result.metrics["train_images"] == 400

    # The output directory: a save_pretrained checkpoint, class names, state, metrics, samples.
    assert (output / "classes.txt").read_text().split() == [str(d) for d in range(10)]
    saved = json.loads((output / "metrics.json").read_text())
    assert saved["final_val_acc"] == result.metrics["final_val_acc"]
    loaded = mnaszoo.from_pretrained(output)
    assert loaded.weights_info is not None
    assert loaded.weights_info.preprocessing.input_size == 32
    assert loaded.weights_info.labels == tuple(str(d) for d in range(10))

    # `mnaszoo predict --checkpoint ... --classes ...` classifies a saved 8x8 PNG as the model.
    from mnaszoo.cli import main as cli

    samples = sorted((output / "samples").glob("*.png"))
    assert len(samples) == 3
    stdout = io.StringIO()
    with redirect_stdout(stdout):
        status = cli.main(
            [
                "predict",
                str(samples[0]),
                "--checkpoint",
                str(output),
                "--classes",
                str(output / "classes.txt"),
                "--topk",
                "1",
                "--json",
            ]
        )
    assert status == 0
    predicted = json.loads(stdout.getvalue())[0]["predictions"][0]
    data = example.load_digits_data(32, 0.2, 0, 500)
    image, _ = data.val[0]
    expected = int(result.model.eval()(image[None]).argmax())
    assert (predicted["label"], predicted["index"]) == (str(expected), expected)


def test_example_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    example = load_example()
    common = ["--limit", "200", "--epochs", "3", "--drop-path-rate", "0.1"]
    full = example.run(example.parse_args(example_args(tmp_path / "full", *common)))
    first = example.run(
        example.parse_args(example_args(tmp_path / "cut", *common)), stop_after_epoch=1
    )
    assert len(first.metrics["history"]) == 1
    with pytest.raises(SystemExit, match="--resume to continue"):
        example.run(example.parse_args(example_args(tmp_path / "cut", *common)))
    resumed = example.run(example.parse_args(example_args(tmp_path / "cut", *common, "--resume")))
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key

    def without_times(rows: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in rows]

    assert without_times(resumed.metrics["history"]) == without_times(full.metrics["history"])
    state = torch.load(tmp_path / "cut" / "training_state.pt", weights_only=True)
    assert state["epoch"] == 3 and set(state) >= {"optimizer", "scheduler", "scaler", "rng"}


def test_example_on_an_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    example = load_example()
    root = tmp_path / "shapes"
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 12), ("val", 4)):
        for label, name in enumerate(("dark", "light")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                level = 40 + 150 * label + int(torch.randint(0, 40, (1,), generator=generator))
                Image.new("RGB", (40, 30), (level,) * 3).save(folder / f"{i}.png")
    output = tmp_path / "run"
    args = example.parse_args(
        [
            "--data",
            str(root),
            "--input-size",
            "32",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--freeze",
            "3",
            "--head-lr-mult",
            "5",
            "--layer-decay",
            "0.9",
            "--grad-checkpointing",
            "--output",
            str(output),
            "--no-progress",
        ]
    )
    result = example.run(args)
    assert result.metrics["classes"] == 2
    assert result.metrics["train_images"] == 24 and result.metrics["val_images"] == 8
    assert result.metrics["trainable_params"] < result.metrics["params"]
    assert (output / "classes.txt").read_text().split() == ["dark", "light"]
    preprocessing = mnaszoo.from_pretrained(output).weights_info.preprocessing
    assert (preprocessing.input_size, preprocessing.resize) == (32, 36)  # ImageNet ratio kept


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--val-fraction", "1"], "--val-fraction must lie strictly between 0 and 1"),
        (["--limit", "5"], "--limit must be at least 20"),
        (["--model", "mnasnet_z9"], "invalid choice"),
    ],
)
def test_example_rejects_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        load_example().parse_args(argv)
    assert message in capsys.readouterr().err
