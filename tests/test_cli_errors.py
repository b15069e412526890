"""Every command-line failure is one line."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import mnaszoo
from mnaszoo.cli.main import main
from mnaszoo.data.labels import read_class_file
from mnaszoo.errors import CorruptCheckpointError

ROOT = Path(__file__).resolve().parents[1]


def _small(**kwargs: object) -> mnaszoo.MnasNet:
    torch.manual_seed(0)
    kwargs.setdefault("num_classes", 3)
    return mnaszoo.create("mnasnet_small", **kwargs).eval()  # type: ignore[arg-type, return-value]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(path)
    return path


def _one_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("mnaszoo: error: "), err
    assert "Traceback" not in err
    return err


def test_device_meta_is_one_line(
    capsys: pytest.CaptureFixture[str], image: Path, tmp_path: Path
) -> None:
    checkpoint = mnaszoo.save_pretrained(_small(), tmp_path / "ckpt")
    err = _one_line(
        capsys, "predict", str(image), "-c", str(checkpoint), "-k", "1", "--device", "meta"
    )
    assert "--device 'meta' holds no data" in err


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c.pop("architecture"), "no 'architecture' object"),
        (lambda c: c.update(architecture=None), "no 'architecture' object"),
        (lambda c: c.update(labels=5), "'labels': 5"),
        (lambda c: c.update(labels=["a"]), "has 1 names but the model has 3 classes"),
        (lambda c: c["architecture"].pop("spec"), "unusable 'architecture'"),
    ],
)
def test_a_damaged_checkpoint_config_is_one_line(
    capsys: pytest.CaptureFixture[str], image: Path, tmp_path: Path, edit: object, expected: str
) -> None:
    checkpoint = mnaszoo.save_pretrained(_small(), tmp_path / "ckpt")
    config = json.loads((checkpoint / "config.json").read_text())
    edit(config)  # type: ignore[operator]
    (checkpoint / "config.json").write_text(json.dumps(config))
    err = _one_line(capsys, "predict", str(image), "-c", str(checkpoint), "-k", "1")
    assert expected in err
    with pytest.raises(CorruptCheckpointError):
        mnaszoo.from_pretrained(checkpoint)


def test_models_of_other_input_channels_and_without_classifier(
    capsys: pytest.CaptureFixture[str], image: Path, tmp_path: Path
) -> None:
    grey = mnaszoo.save_pretrained(_small(in_chans=1), tmp_path / "grey")
    assert main(["predict", str(image), "-c", str(grey), "-k", "1", "--backend", "torch"]) == 0
    assert "class_" in capsys.readouterr().out
    # The grey model sees the image's grey version: the same as feeding it directly.
    model = mnaszoo.from_pretrained(grey)
    transform = mnaszoo.make_transform(model)
    expected = model(transform(image).mean(0, keepdim=True)[None]).softmax(1).max().item()
    got = mnaszoo.predict(image, model, topk=1, backend="torch")[0].score
    assert got == pytest.approx(expected, rel=1e-5)

    four = mnaszoo.save_pretrained(_small(in_chans=4), tmp_path / "four")
    err = _one_line(capsys, "predict", str(image), "-c", str(four), "-k", "1")
    assert "takes 4 input channels" in err
    headless = mnaszoo.save_pretrained(_small(num_classes=0), tmp_path / "headless")
    err = _one_line(capsys, "predict", str(image), "-c", str(headless))
    assert "needs a model with a classifier" in err and "topk" not in err


def test_messages_use_command_line_words(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    err = _one_line(capsys, "download", "mnasnet_small", "--cache-dir", str(tmp_path / "c"))
    assert "<model>" not in err and "mnaszoo download mnasnet_small" in err
    for api_word in ("checkpoint=", "cache_dir=", "mnaszoo.create"):
        assert api_word not in err
    assert "--checkpoint" in err


def test_a_bom_in_a_class_file_is_not_part_of_a_label(tmp_path: Path) -> None:
    names = tmp_path / "classes.txt"
    names.write_bytes("\ufeffant\nbee\ncat\n".encode())
    assert read_class_file(names, 3) == ("ant", "bee", "cat")


def test_checkpoint_formats_are_diagnosed_by_content(tmp_path: Path) -> None:
    model = _small()
    state = model.state_dict()
    misnamed = tmp_path / "weights.pth"  # a safetensors file with a PyTorch name
    save_file({k: v.contiguous() for k, v in state.items()}, str(misnamed))
    loaded = mnaszoo.create("mnasnet_small", checkpoint=misnamed)
    torch.testing.assert_close(loaded.classifier.weight, model.classifier.weight)

    plain = tmp_path / "weights.pkl"
    with plain.open("wb") as handle:
        pickle.dump(dict(state), handle, protocol=4)
    with pytest.raises(CorruptCheckpointError, match="plain Python pickle") as excinfo:
        mnaszoo.create("mnasnet_small", checkpoint=plain)
    assert "truncated" not in str(excinfo.value)


@pytest.mark.slow
def test_the_first_onnx_export_is_quiet_with_quiet(image: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    checkpoint = mnaszoo.save_pretrained(_small(), tmp_path / "ckpt")
    env = {**os.environ, "MNASZOO_CACHE": str(tmp_path / "cache")}
    argv = ["predict", str(image), "-c", str(checkpoint), "-k", "1", "--backend", "onnxruntime"]
    done = subprocess.run(
        [sys.executable, "-m", "mnaszoo", *argv, "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert list((tmp_path / "cache" / "onnx").glob("*.onnx"))  # it did export


def test_evaluate_with_both_ray_options_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (40, 30)).save(tmp_path / name / "1.png")
    err = _one_line(
        capsys, "evaluate", str(tmp_path), "-m", "mnasnet_small", "--ray", "--ray-address", "auto"
    )
    assert "Give --ray (a local cluster) or --ray-address, not both." in err


def test_evaluate_on_ray_with_a_gpu_device_is_refused_before_any_work(tmp_path: Path) -> None:
    from mnaszoo.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="Ray workers' CPUs"):
        mnaszoo.evaluate(_small(), tmp_path / "missing", ray="local", device="cuda")
    with pytest.raises(InvalidArgumentError, match="ray must be 'local'"):
        mnaszoo.evaluate(_small(), tmp_path / "missing", ray="")
