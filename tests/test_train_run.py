"""mnaszoo.train end to end: the output folder that predict, evaluate and export take as it is,
the recorded split, exact resumption after a full disk, early stopping and BatchNorm handling."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import mnaszoo
from mnaszoo.cli.main import main as cli
from mnaszoo.errors import CacheNotWritableError
from mnaszoo.tasks.training import run as run_module, state as state_module
from mnaszoo.tasks.training.data import load_datasets
from mnaszoo.weights.manifest import DEFAULT_PREPROCESSING

from .support.train_data import TINY, image_folder


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    # Same thread count in every run of a test: CPU kernels then give identical results.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_output_is_a_checkpoint_that_predict_evaluate_and_export_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = image_folder(tmp_path / "train", per_class=6)
    val = image_folder(tmp_path / "val", per_class=3, seed=1)
    out = tmp_path / "run"
    result = mnaszoo.train(train, out, val=val, recipe="standard", epochs=2, **TINY)

    model = mnaszoo.from_pretrained(out)
    assert model.weights_info is not None
    assert model.weights_info.labels == ("class0", "class1", "class2")
    assert model.weights_info.preprocessing.input_size == 32
    assert (out / "classes.txt").read_text() == "class0\nclass1\nclass2\n"

    # The recorded validation accuracy is what `evaluate` measures on the same folder.
    best = result.history[result.best_epoch - 1]
    recorded = best["ema_val_acc"] if best["ema_val_acc"] is not None else best["val_acc"]
    assert recorded == pytest.approx(result.best_val_acc)
    measured = mnaszoo.evaluate("mnasnet_small", val, checkpoint=out, progress=False)
    assert measured.top1 == pytest.approx(100 * result.best_val_acc)

    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    record = json.loads((out / "training.json").read_text())
    assert record["settings"]["recipe"]["name"] == "standard"
    assert record["settings"]["recipe"]["epochs"] == 2
    assert record["model"]["finetune"] is False and record["model"]["head_replaced"] is True
    assert record["results"]["best_epoch"] == result.best_epoch
    assert record["data"]["train_images"] == 18 and record["data"]["val_images"] == 9
    assert (out / "last" / "model.safetensors").is_file()
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 2
    pytest.importorskip("matplotlib")
    assert (out / "curves.png").stat().st_size > 0 and (out / "curves.svg").stat().st_size > 0

    capsys.readouterr()
    image = str(val / "class1" / "0.png")
    assert cli(["predict", image, "--checkpoint", str(out), "--json", "-k", "3"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert {p["label"] for p in predicted[0]["predictions"]} == {"class0", "class1", "class2"}
    pytest.importorskip("onnxruntime")
    assert cli(["export", str(out), str(tmp_path / "model.onnx")]) == 0
    assert (tmp_path / "model.onnx").stat().st_size > 0


def test_stratified_split_is_recorded_and_covers_every_image(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=3, per_class=5)
    preprocessing = mnaszoo.make_transform(DEFAULT_PREPROCESSING, input_size=32).preprocessing
    first = load_datasets(data, preprocessing, val_fraction=0.4, seed=3)
    again = load_datasets(data, preprocessing, val_fraction=0.4, seed=3)
    other = load_datasets(data, preprocessing, val_fraction=0.4, seed=4)
    record = first.record
    assert record["validation"] == again.record["validation"]
    assert record["validation"] != other.record["validation"]
    everything = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    assert sorted(record["train"] + record["validation"]) == everything
    assert not set(record["train"]) & set(record["validation"])
    for c in range(3):  # round(5 * 0.4) = 2 of every class
        assert sum(p.startswith(f"class{c}/") for p in record["validation"]) == 2
    assert first.train.pixels.dtype == torch.uint8 and first.train.pixels.shape[1:] == (3, 32, 32)


def weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]


@pytest.mark.slow
def test_full_disk_mid_checkpoint_keeps_the_last_state_and_resume_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = image_folder(tmp_path / "data", per_class=6)
    settings: dict[str, Any] = {**TINY, "recipe": "standard", "epochs": 3}
    mnaszoo.train(data, tmp_path / "whole", **settings)

    real_save = torch.save
    calls = {"n": 0}

    def full_disk(obj: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second epoch's state: write half of it, then fail
            handle.write(b"PK\x03\x04 partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(state_module.torch, "save", full_disk)
    out = tmp_path / "interrupted"
    with pytest.raises(CacheNotWritableError, match="No space left"):
        mnaszoo.train(data, out, **settings)
    monkeypatch.setattr(state_module.torch, "save", real_save)
    # The first epoch's state is intact, and nothing half-written was left beside it.
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt"]
    mnaszoo.from_pretrained(out)

    resumed = mnaszoo.train(data, out, resume=True, progress=False, tensorboard=False)
    assert resumed.epochs == 3
    whole, again = weights(tmp_path / "whole"), weights(out)
    assert max(float((whole[k].float() - again[k].float()).abs().max()) for k in whole) == 0.0
    final = load_file(str(out / "last" / "model.safetensors"))
    reference = load_file(str(tmp_path / "whole" / "last" / "model.safetensors"))
    assert all(torch.equal(final[k], reference[k]) for k in reference)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_patience_stops_a_plateau(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=4)
    monkeypatch.setattr(run_module, "evaluate", lambda *args, **kwargs: (0.7, 0.5))
    result = mnaszoo.train(data, tmp_path / "run", recipe="quick", epochs=6, patience=2, **TINY)
    # Epoch 1 sets the best; epochs 2 and 3 do not improve on it: stop before epoch 4.
    assert result.epochs == 3 and result.best_epoch == 1
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["results"]["stopped_early"] is True


@pytest.mark.slow
def test_fine_tuning_with_small_batches_freezes_batchnorm(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", per_class=4)
    base = tmp_path / "base"
    torch.manual_seed(0)
    start = mnaszoo.create("mnasnet_small", num_classes=3)
    start.train()
    with torch.no_grad():  # BatchNorm statistics that differ from their initial values
        start(torch.randn(8, 3, 32, 32))
    mnaszoo.save_pretrained(start, base, labels=["a", "b", "c"])
    out = tmp_path / "run"
    mnaszoo.train(
        data,
        out,
        model=str(base),
        recipe="quick",
        epochs=1,
        input_size=32,
        batch_size=4,
        progress=False,
        tensorboard=False,
    )
    record = json.loads((out / "training.json").read_text())
    assert record["settings"]["bn_frozen"] is True and record["model"]["finetune"] is True
    before = load_file(str(base / "model.safetensors"))
    after = load_file(str(out / "last" / "model.safetensors"))
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    convs = [k for k in before if k.endswith("conv.weight")]
    assert any(not torch.equal(before[k], after[k]) for k in convs)


@pytest.mark.slow
def test_distillation_from_a_trained_teacher(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", per_class=4)
    mnaszoo.train(data, tmp_path / "teacher", recipe="quick", epochs=1, **TINY)
    result = mnaszoo.train(
        data,
        tmp_path / "student",
        recipe="quick",
        epochs=1,
        teacher=str(tmp_path / "teacher"),
        **TINY,
    )
    record = json.loads((tmp_path / "student" / "training.json").read_text())
    assert record["settings"]["teacher"] == str(tmp_path / "teacher")
    assert result.epochs == 1


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from .support.hub_env import fast_retries, hf_hub_environment
    from .support.hub_server import HubServer

    fast_retries(monkeypatch)
    with (
        HubServer() as server,
        hf_hub_environment(server, tmp_path / "hf", monkeypatch=monkeypatch) as env,
    ):
        yield env


@pytest.mark.slow
def test_fine_tunes_a_model_from_the_hub(hub: Any, tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=4)
    torch.manual_seed(0)
    saved = mnaszoo.save_pretrained(
        mnaszoo.create("mnasnet_small", num_classes=5), tmp_path / "up", labels=list("abcde")
    )
    for file in sorted(saved.iterdir()):
        hub.server.add_hub_file(
            "me/tiny",
            file.name,
            file.read_bytes(),
            "0123456789abcdef0123456789abcdef01234567",
            lfs=file.suffix == ".safetensors",
        )
    settings = {k: v for k, v in TINY.items() if k not in ("model", "pretrained")}
    result = mnaszoo.train(
        data, tmp_path / "out", model="hf-hub:me/tiny", recipe="quick", epochs=1, **settings
    )
    record = json.loads((tmp_path / "out" / "training.json").read_text())
    assert record["model"]["kind"] == "hub" and record["model"]["finetune"] is True
    assert record["model"]["head_replaced"] is True and result.model.num_classes == 2


def test_plot_is_skipped_with_a_note_without_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    from mnaszoo.tasks.training.report import plot_curves

    rows = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "val_loss": 1.1 / e,
            "train_acc": 0.5,
            "val_acc": 0.4,
            "ema_val_acc": None,
        }
        for e in (1, 2)
    ]
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with caplog.at_level("INFO", logger="mnaszoo.train"):
        assert plot_curves(rows, tmp_path, "run") == []
    assert "matplotlib is not installed" in caplog.text and not list(tmp_path.iterdir())
    monkeypatch.undo()
    pytest.importorskip("matplotlib")
    written = plot_curves(rows, tmp_path, "run")
    assert [p.name for p in written] == ["curves.png", "curves.svg"]
    assert "<text" in (tmp_path / "curves.svg").read_text()  # text kept as text


def test_tensorboard_gets_every_number_of_an_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    from mnaszoo.tasks.training.report import TensorBoard

    scalars: list[tuple[str, float, int]] = []

    class Writer:  # torch.utils.tensorboard.SummaryWriter's interface, as far as it is used
        def __init__(self, log_dir: str) -> None:
            scalars.append(("dir", 0.0, 0) if log_dir == str(tmp_path) else ("wrong", 0.0, 0))

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            scalars.append((tag, value, step))

        def flush(self) -> None:
            pass

        def close(self) -> None:
            scalars.append(("closed", 0.0, 0))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    board = TensorBoard(tmp_path, enabled=True)
    board.log({"epoch": 3, "val_acc": 0.5, "ema_val_acc": None, "lr": 0.1})
    board.close()
    assert scalars == [("dir", 0.0, 0), ("val_acc", 0.5, 3), ("lr", 0.1, 3), ("closed", 0.0, 0)]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed
    quiet = TensorBoard(tmp_path, enabled=True)
    quiet.log({"epoch": 1, "val_acc": 0.5})
    quiet.close()
