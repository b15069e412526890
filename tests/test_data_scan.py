"""The one folder scanner (``mnaszoo.data.scan``): loops, bounds, permissions, order.

Trees are built in ``tmp_path`` with real directory symlinks; results are compared with the
file names written, not with the scanner's own output.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mnaszoo
from mnaszoo.data.scan import scan_class_folders, scan_files
from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError


def _png(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def _relative(root: Path, paths: list[str]) -> list[str]:
    return [Path(p).relative_to(root).as_posix() for p in paths]


def test_files_are_sorted_hidden_skipped_and_suffixes_any_case(tmp_path: Path) -> None:
    for name in ("b/2.PNG", "a/1.jpg", "a/sub/0.JpEg", "a/.hidden.jpg", ".cache/x.jpg"):
        _png(tmp_path / name)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    assert _relative(tmp_path, scan_files(tmp_path)) == ["a/1.jpg", "a/sub/0.JpEg", "b/2.PNG"]
    everything = _relative(tmp_path, scan_files(tmp_path, extensions=None))
    assert everything == ["a/1.jpg", "a/notes.txt", "a/sub/0.JpEg", "b/2.PNG"]


def test_a_link_to_dot_is_a_loop_not_a_class_counted_many_times(tmp_path: Path) -> None:
    _png(tmp_path / "cat" / "1.png")
    os.symlink(".", tmp_path / "cat" / "again")
    with pytest.raises(InvalidArgumentError, match="symlink loop") as info:
        scan_files(tmp_path)
    assert "again" in str(info.value) and "Remove the link" in str(info.value)


def test_two_links_to_the_parent_fail_at_once(tmp_path: Path) -> None:
    _png(tmp_path / "cat" / "1.png")
    os.symlink("..", tmp_path / "cat" / "up1")
    os.symlink("..", tmp_path / "cat" / "up2")
    with pytest.raises(InvalidArgumentError, match="symlink loop"):
        scan_class_folders(tmp_path)


def test_two_links_to_one_folder_are_refused_but_one_link_is_followed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _png(store / "cats" / "1.png")
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(store / "cats", data / "cat")  # a class folder kept elsewhere: followed
    found = scan_class_folders(data)
    assert found.classes == ("cat",) and _relative(data, list(found.files[0])) == ["cat/1.png"]
    os.symlink(store / "cats", data / "kitten")
    with pytest.raises(InvalidArgumentError, match="the same folder as"):
        scan_class_folders(data)


def test_depth_and_file_count_are_bounded(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "b" / "c" / "d" / "1.png")
    assert len(scan_files(tmp_path, max_depth=4)) == 1
    with pytest.raises(InvalidArgumentError, match="more than 3 folders deep"):
        scan_files(tmp_path, max_depth=3)
    for index in range(5):
        _png(tmp_path / "many" / f"{index}.png")
    with pytest.raises(InvalidArgumentError, match="More than 4 files"):
        scan_files(tmp_path, max_files=4)


def test_an_unreadable_folder_is_an_error_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _png(tmp_path / "cat" / "1.png")
    _png(tmp_path / "dog" / "1.png")
    real = os.scandir

    def scandir(path: str) -> object:  # root reads every folder: deny one as chmod 000 would
        if os.path.basename(path) == "dog":
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(InvalidArgumentError, match=r"Cannot read the folder .*dog.*Permission"):
        scan_class_folders(tmp_path)


def test_bad_roots_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        scan_files(tmp_path / "missing")
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(InvalidArgumentError, match="is not a directory"):
        scan_files(tmp_path / "file.jpg")
    with pytest.raises(ArgumentTypeError):
        scan_files(None)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="not one string"):
        scan_files(tmp_path, extensions=".jpg")
    with pytest.raises(InvalidArgumentError, match="max_files"):
        scan_files(tmp_path, max_files=0)


def test_class_folders_count_loose_files_and_empty_classes(tmp_path: Path) -> None:
    _png(tmp_path / "loose.png")
    (tmp_path / "empty").mkdir()
    _png(tmp_path / "full" / "x" / "1.png")
    found = scan_class_folders(tmp_path)
    assert found.classes == ("empty", "full") and found.loose == 1
    assert [len(files) for files in found.files] == [0, 1]


def test_evaluate_refuses_a_looping_folder_instead_of_counting_a_class_again(
    tmp_path: Path,
) -> None:
    model = mnaszoo.create("mnasnet_small", num_classes=2).eval()
    for name in ("a", "b"):
        _png(tmp_path / name / "1.png", 100)
    os.symlink(".", tmp_path / "a" / "loop")
    with pytest.raises(InvalidArgumentError, match="symlink loop"):
        mnaszoo.evaluate(model, tmp_path, progress=False, device="cpu")


def test_the_calibration_folder_of_an_export_uses_the_scanner(tmp_path: Path) -> None:
    from mnaszoo.cli.export import _calibration

    model = mnaszoo.create("mnasnet_small", num_classes=2).eval()
    _png(tmp_path / "img" / "1.png")
    os.symlink("..", tmp_path / "img" / "up")
    with pytest.raises(InvalidArgumentError, match="symlink loop"):
        _calibration(model, str(tmp_path), 8, 32)
