"""Nothing lost, nothing half-written.

A full disk is simulated with ``OSError(ENOSPC)`` raised by the writer half-way through.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mnaszoo
from mnaszoo import _io
from mnaszoo.cli.main import main
from mnaszoo.errors import CacheNotWritableError, CorruptCheckpointError, InvalidArgumentError
from mnaszoo.weights import hub


def _small(num_classes: int = 3, seed: int = 0) -> mnaszoo.MnasNet:
    torch.manual_seed(seed)
    return mnaszoo.create("mnasnet_small", num_classes=num_classes).eval()


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_full_disk_mid_save_leaves_the_old_checkpoint_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "run"
    mnaszoo.save_pretrained(_small(), folder, labels=["ant", "bee", "cat"])
    (folder / "train.log").write_text("epoch 1\n")
    before = _contents(folder)

    def disk_full(path: Path, data: object) -> None:  # the config, after the weights
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(hub, "_write_json", disk_full)
    with pytest.raises(CacheNotWritableError, match="No space left on device"):
        mnaszoo.save_pretrained(_small(num_classes=4, seed=1), folder, overwrite=True)
    monkeypatch.undo()

    assert _contents(folder) == before  # old weights with the old config, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary directory
    loaded = mnaszoo.from_pretrained(folder)
    assert loaded.num_classes == 3 and loaded.weights_info.labels == ("ant", "bee", "cat")

    # The same save with room on the disk replaces both files and keeps the others.
    new = _small(num_classes=4, seed=1)
    mnaszoo.save_pretrained(new, folder, overwrite=True)
    assert (folder / "train.log").read_text() == "epoch 1\n"
    torch.testing.assert_close(
        mnaszoo.from_pretrained(folder).classifier.weight, new.classifier.weight
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_every_os_error_of_a_save_is_a_mnaszoo_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def quota(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr("safetensors.torch.save_file", quota)
    with pytest.raises(CacheNotWritableError, match="quota"):
        mnaszoo.save_pretrained(_small(), tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_an_inference_optimized_copy_is_not_saved_as_a_checkpoint(tmp_path: Path) -> None:
    fast = mnaszoo.optimize_for_inference(_small())
    with pytest.raises(InvalidArgumentError, match="Save the original model"):
        mnaszoo.save_pretrained(fast, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_written_files_get_the_permissions_of_the_umask(tmp_path: Path, mask: int) -> None:
    os.umask(mask)
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    folder = mnaszoo.save_pretrained(_small(), tmp_path / "run")
    assert stat.S_IMODE(folder.stat().st_mode) == dir_mode
    for name in ("config.json", "model.safetensors"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == file_mode, name
    # Every export, int8 model, ONNX cache file and search state goes through these two.
    _io.write_text_atomic(tmp_path / "state.json", "{}")
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == file_mode
    with _io.atomic_path(tmp_path / "model.pt2") as temp:
        temp.write_bytes(b"x")
    assert stat.S_IMODE((tmp_path / "model.pt2").stat().st_mode) == file_mode


# --------------------------------------------------------------------------- evaluate --json-out


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "data"
    for index, name in enumerate(("ant", "bee")):
        (folder / name).mkdir(parents=True)
        pixels = np.full((40, 40, 3), 60 + 100 * index, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name / "0.png")
    checkpoint = mnaszoo.save_pretrained(_small(num_classes=2), tmp_path / "ckpt")
    return folder, checkpoint


def test_evaluate_checks_json_out_before_evaluating(
    labelled: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, checkpoint = labelled

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluated before checking --json-out")

    monkeypatch.setattr("mnaszoo.tasks.evaluation.evaluate", never)
    out = tmp_path / "missing" / "result.json"
    code = main(["evaluate", str(folder), "-c", str(checkpoint), "-q", "--json-out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "--json-out" in err and "does not exist" in err


def test_evaluate_prints_its_result_even_when_json_out_fails_at_the_end(
    labelled: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, checkpoint = labelled

    def disk_full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("mnaszoo.cli._format.write_text_atomic", disk_full)
    out = tmp_path / "result.json"
    code = main(
        ["evaluate", str(folder), "-c", str(checkpoint), "-q", "--json", "--json-out", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert '"top1"' in captured.out  # the computed result is not thrown away
    assert "No space left on device" in captured.err and captured.err.count("\n") == 1


def test_a_directory_that_cannot_be_swapped_is_updated_file_by_file_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "run"
    mnaszoo.save_pretrained(_small(), folder)
    monkeypatch.chdir(folder)  # the working directory cannot be renamed away from the process
    new = _small(num_classes=4, seed=1)
    mnaszoo.save_pretrained(new, ".", overwrite=True)
    assert Path.cwd() == folder.resolve() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    torch.testing.assert_close(
        mnaszoo.from_pretrained(folder).classifier.weight, new.classifier.weight
    )
    # A pair torn by an interruption between the two files: the config names other weights.
    other = tmp_path / "other"
    mnaszoo.save_pretrained(_small(num_classes=4, seed=2), other)
    (folder / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(CorruptCheckpointError, match=r"not the weights its config\.json"):
        mnaszoo.from_pretrained(folder)
