"""``mnaszoo._io.replace_directory``: only ever removes what it wrote itself, refuses folders of
another kind, and works on mount points, full disks and read-only file systems.

Used by ``latency-kit --overwrite``, ``save_pretrained`` and checked by ``export`` before it
works. Mount points, full and read-only disks are real tmpfs mounts (skipped where mounting
is not permitted).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo import _io
from mnaszoo.cli.main import main
from mnaszoo.errors import CacheNotWritableError, InvalidArgumentError, WriteError
from mnaszoo.search.space import SearchSpace

TINY = SearchSpace(
    ops=("mb3",), kernels=(3,), se_ratios=(0.0,), skips=(True,), filters=(1.0,), layers=(0,)
)


def _mount(folder: Path, options: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "volume", "size=16m")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "small", "size=64k")


def _small(num_classes: int = 3, seed: int = 0) -> mnaszoo.MnasNet:
    torch.manual_seed(seed)
    return mnaszoo.create("mnasnet_small", num_classes=num_classes).eval()


def _kit(folder: Path, overwrite: bool = False) -> Path:
    pytest.importorskip("onnx")
    from mnaszoo.search.latency.kit import write_latency_kit

    return write_latency_kit(
        folder, space=TINY, input_size=32, num_classes=4, calibration=3, overwrite=overwrite
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------- latency kit


def test_latency_kit_overwrite_never_deletes_a_folder_that_is_not_a_kit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "photos" / "holiday.jpg").write_bytes(b"precious")
    (home / "notes.txt").write_text("mine")
    before = _tree(home)
    code = main(["latency-kit", str(home), "--overwrite", "--input-size", "32"])
    err = capsys.readouterr().err
    assert code == 1 and "does not hold a latency kit" in err and "never deletes" in err
    assert _tree(home) == before


def test_latency_kit_overwrite_replaces_only_the_kit_files(tmp_path: Path) -> None:
    kit = _kit(tmp_path / "kit")
    (kit / "table.json").write_text('{"measured": "on the phone"}')  # the kit's result
    (kit / "blocks" / "my-notes.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="already holds a latency kit"):
        _kit(kit)
    manifest = json.loads((kit / "manifest.json").read_text())
    stale = kit / manifest["calibration"][0]["file"]
    (kit / "networks" / "stale.onnx").write_bytes(b"x")  # not the kit's: kept
    _kit(kit, overwrite=True)
    assert (kit / "table.json").read_text() == '{"measured": "on the phone"}'
    assert (kit / "blocks" / "my-notes.txt").read_text() == "mine"
    assert (kit / "networks" / "stale.onnx").read_bytes() == b"x"
    assert stale.exists()  # rewritten by the new kit (same seeded names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kit"]  # nothing staged left


def test_a_crafted_manifest_cannot_make_a_replace_remove_files_outside(tmp_path: Path) -> None:
    kit = _kit(tmp_path / "kit")
    victim = tmp_path / "victim.txt"
    victim.write_text("outside")
    manifest = json.loads((kit / "manifest.json").read_text())
    manifest["entries"].append({"key": "x", "file": "../victim.txt", "input_shape": [1]})
    manifest["entries"].append({"key": "y", "file": str(victim), "input_shape": [1]})
    (kit / "manifest.json").write_text(json.dumps(manifest))
    _kit(kit, overwrite=True)
    assert victim.read_text() == "outside"


def test_latency_kit_on_a_mount_point_keeps_the_mount(mount_point: Path) -> None:
    (mount_point / "lost+found").mkdir()
    with pytest.raises(InvalidArgumentError, match="does not hold a latency kit"):
        _kit(mount_point, overwrite=True)
    (mount_point / "lost+found").rmdir()
    _kit(mount_point)
    (mount_point / "table.json").write_text("{}")
    _kit(mount_point, overwrite=True)  # the mount point itself cannot be renamed
    assert os.path.ismount(mount_point)
    assert (mount_point / "manifest.json").exists() and (mount_point / "table.json").exists()
    assert not [p for p in mount_point.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------------------- save_pretrained


def test_save_pretrained_into_a_mount_point(mount_point: Path) -> None:
    mnaszoo.save_pretrained(_small(), mount_point)
    new = _small(num_classes=4, seed=1)
    mnaszoo.save_pretrained(new, mount_point, overwrite=True)
    assert os.path.ismount(mount_point)
    assert sorted(p.name for p in mount_point.iterdir()) == [
        "README.md",
        "architecture.svg",
        "config.json",
        "model.safetensors",
    ]
    torch.testing.assert_close(
        mnaszoo.from_pretrained(mount_point).classifier.weight, new.classifier.weight
    )


def test_save_pretrained_on_a_full_disk_is_a_mnaszoo_error(full_disk: Path) -> None:
    model = mnaszoo.create("mnasnet_a1")  # 17 MB of weights on a 64 kB disk
    with pytest.raises(CacheNotWritableError, match="No space left on device") as info:
        mnaszoo.save_pretrained(model, full_disk / "run")
    assert "SafetensorError" not in str(info.value) and "Free some space" in str(info.value)
    assert list(full_disk.iterdir()) == []  # nothing half-written


def test_save_pretrained_on_a_read_only_file_system(tmp_path: Path) -> None:
    for _ in _mount(tmp_path / "ro", "ro,size=1m"):
        with pytest.raises(CacheNotWritableError, match="Read-only file system"):
            mnaszoo.save_pretrained(_small(), tmp_path / "ro" / "run")


def test_save_pretrained_never_replaces_a_file_it_did_not_write(tmp_path: Path) -> None:
    folder = tmp_path / "hf-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    for overwrite in (False, True):
        with pytest.raises(InvalidArgumentError, match=r"'config.json'.*did\s+not write"):
            mnaszoo.save_pretrained(_small(), folder, overwrite=overwrite)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]
    assert (folder / "config.json").read_text() == '{"model_type": "bert"}'
    # A folder holding other files (a training run's log) gets the checkpoint beside them.
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").write_text("epoch 1")
    mnaszoo.save_pretrained(_small(), run)
    assert sorted(p.name for p in run.iterdir()) == [
        "README.md",
        "architecture.svg",
        "config.json",
        "model.safetensors",
        "train.log",
    ]
    # A model card of the user's own stays, unless overwrite=True says it may be replaced.
    (run / "README.md").write_text("# my notes")
    mnaszoo.save_pretrained(_small(seed=1), run, overwrite=True)
    assert (run / "README.md").read_text() != "# my notes"
    (run / "README.md").write_text("# my notes")
    mnaszoo.save_pretrained(_small(seed=2), run)
    assert (run / "README.md").read_text() == "# my notes"
    assert (run / "train.log").read_text() == "epoch 1"


def test_save_pretrained_onto_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").write_text("a file")
    with pytest.raises(InvalidArgumentError, match="it is a file, not a folder"):
        mnaszoo.save_pretrained(_small(), tmp_path / "model")
    assert (tmp_path / "model").read_text() == "a file"


# ----------------------------------------------------------------------------------- export


def test_onnx_export_onto_a_directory_is_refused_before_exporting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported before checking the target")

    monkeypatch.setattr("mnaszoo.deploy.exporting.export_onnx", never)
    (tmp_path / "out").mkdir()
    start = time.perf_counter()
    with pytest.raises(InvalidArgumentError, match="it is a directory") as info:
        mnaszoo.export(_small(), tmp_path / "out", "onnx")
    assert time.perf_counter() - start < 5 and ".tmp" not in str(info.value)
    assert list((tmp_path / "out").iterdir()) == []


def test_export_on_a_full_disk_names_the_target_not_a_temporary_file(full_disk: Path) -> None:
    target = full_disk / "a1.pt2"
    with pytest.raises(WriteError, match="No space left on device") as info:
        mnaszoo.export(mnaszoo.create("mnasnet_a1"), target, "pt2", input_size=64)
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert list(full_disk.iterdir()) == []


def test_the_primitive_stages_beside_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    def owned(folder: Path) -> set[str] | None:
        return {"a.txt"} if (folder / "a.txt").exists() else None

    def fill(staging: Path) -> None:
        (staging / "a.txt").write_text("new")
        raise OSError(errno.EIO, "Input/output error")

    folder = tmp_path / "thing"
    folder.mkdir()
    (folder / "a.txt").write_text("old")
    with pytest.raises(OSError, match="Input/output"):
        _io.replace_directory(folder, fill, kind="a thing", owned=owned)
    assert (folder / "a.txt").read_text() == "old" and sorted(tmp_path.iterdir()) == [folder]
