"""Every data size either trains or is refused before any latency is measured (mnaszoo.search on
image folders, ProxyTrainer, finalize): the smallest folders, uneven classes, fewer images than a
batch, empty validation classes, mixed image modes; and the CLI's refusals of bad tables and
flags. Each refusal names the smallest size that works and leaves no output folder behind."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image
from torch import nn

from mnaszoo.cli.main import main
from mnaszoo.errors import InvalidArgumentError, SearchStateError
from mnaszoo.search.proxy.image_data import load_image_folder_proxy
from mnaszoo.search.proxy.trainer import ProxyTrainer

# A search as small as it gets: latency measured at 32 px with no calibration, trained at 16 px.
QUICK = ["--budget", "2", "--strategy", "random", "--calibrate", "0", "--input-size", "32"]
QUICK += ["--proxy-size", "16", "--no-progress"]


def _folder(root: Path, counts: list[int], modes: tuple[str, ...] = ("RGB",)) -> Path:
    """One subfolder per class with ``counts[i]`` tiny images, cycling through ``modes``."""
    rng = np.random.default_rng(len(counts))
    for label, count in enumerate(counts):
        folder = root / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 90, (14, 18, 3), dtype=np.uint8)
            pixels[..., label % 3] += 150
            mode = modes[i % len(modes)]
            if mode == "RGB":
                Image.fromarray(pixels).save(folder / f"{i}.jpg")
            elif mode == "L":
                Image.fromarray(pixels[..., label % 3]).save(folder / f"{i}.png")
            elif mode == "RGBA":
                Image.fromarray(np.dstack([pixels, pixels[..., :1]])).save(folder / f"{i}.png")
            else:  # 16-bit grey
                Image.fromarray(pixels[..., label % 3].astype(np.uint16) * 257).save(
                    folder / f"{i}.png"
                )
    return root


def _refused(capsys: pytest.CaptureFixture[str], out: Path, argv: list[str], match: str) -> None:
    assert main(["search", str(out), *argv, *QUICK]) == 1
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not out.exists()  # refused before anything was measured or written


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        ([1, 1, 1], "every class needs at least 2"),
        ([5, 1], "every class needs at least 2"),
        ([12], "at least 2 classes"),
    ],
)
def test_too_small_folders_are_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], counts: list[int], match: str
) -> None:
    data = _folder(tmp_path / "data", counts)
    _refused(capsys, tmp_path / "out", ["--data", str(data)], match)


def test_a_class_without_a_readable_image_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folder(tmp_path / "data", [4, 4])
    (data / "class2").mkdir()
    (data / "class2" / "broken.jpg").write_bytes(b"not an image")
    _refused(capsys, tmp_path / "out", ["--data", str(data)], "no readable images")


def test_validation_folders_must_match_and_have_every_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folder(tmp_path / "data", [4, 4, 4])
    other = _folder(tmp_path / "other", [2, 2])
    _refused(capsys, tmp_path / "out", ["--data", str(data), "--val", str(other)], "same class")
    bare = _folder(tmp_path / "bare", [2, 2])
    (bare / "class2").mkdir()  # the class exists but holds nothing to validate on
    _refused(capsys, tmp_path / "out", ["--data", str(data), "--val", str(bare)], "at least 1")


def test_validation_equal_to_training_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = _folder(tmp_path / "data", [3, 3])
    with caplog.at_level(logging.WARNING):
        task = load_image_folder_proxy(data, val=data, image_size=16)
    assert "memorisation" in caplog.text
    assert task.train[0].shape[0] == task.val[0].shape[0] == 6


def test_a_missing_table_is_refused_unless_asked_to_measure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folder(tmp_path / "data", [3, 3])
    missing = tmp_path / "tabel.json"
    argv = ["--data", str(data), "--table", str(missing)]
    _refused(capsys, tmp_path / "out", argv, "--new-table")
    assert not missing.exists()


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--proxy-size", "8"), ("--input-size", "15"), ("--val-fraction", "1")],
)
def test_out_of_range_flags_are_refused_under_their_own_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    data = _folder(tmp_path / "data", [3, 3])
    assert main(["search", str(tmp_path / "out"), "--data", str(data), *QUICK, flag, value]) == 2
    assert f"argument {flag}:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content",
    [
        "[" * 100_000 + "]" * 100_000,
        None,  # a valid table with an entry of 1e300 ms
    ],
)
def test_damaged_tables_are_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None
) -> None:
    from mnaszoo.search.latency.context_table import ContextLatencyTable

    fixture = Path(__file__).parent / "fixtures" / "search_trials" / "images_table.json"
    table = tmp_path / "table.json"
    if content is None:
        data = json.loads(fixture.read_text(encoding="utf-8"))
        key = next(iter(data["entries"]))
        data["entries"][key]["ms"] = 1e300
        content = json.dumps(data)
    table.write_text(content, encoding="utf-8")
    with pytest.raises(SearchStateError, match=r"(?i)latency table"):
        ContextLatencyTable.load(table)
    data_dir = _folder(tmp_path / "data", [3, 3])
    argv = ["--data", str(data_dir), "--table", str(table)]
    assert main(["search", str(tmp_path / "out"), *argv, *QUICK]) == 1
    assert "Traceback" not in capsys.readouterr().err


class _Tiny(nn.Module):
    """Conv, BatchNorm, pool, linear: the parts of a MnasNet that care about batch sizes."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.fc = nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


@settings(max_examples=40, deadline=None)
@given(
    images=st.integers(2, 70),
    classes=st.integers(2, 4),
    batch=st.integers(2, 80),
    epochs=st.integers(1, 9),
)
def test_proxy_training_works_for_every_size(
    images: int, classes: int, batch: int, epochs: int
) -> None:
    generator = torch.Generator().manual_seed(images)
    labels = torch.arange(images) % classes
    train = (torch.randn(images, 3, 8, 8, generator=generator), labels)
    val = (torch.randn(3, 3, 8, 8, generator=generator), torch.arange(3) % classes)
    trainer = ProxyTrainer(train, val, epochs=epochs, batch_size=batch, threads=1)
    accuracy = trainer(_Tiny(classes))
    assert accuracy in {0.0, 1 / 3, 2 / 3, 1.0}


def test_proxy_training_refuses_what_cannot_train() -> None:
    one = (torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.int64))
    two = (torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(InvalidArgumentError, match="at least 2"):
        ProxyTrainer(one, two)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        ProxyTrainer(two, two, batch_size=1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("counts", "extra"),
    [
        # The default 3 epochs on 64 training images or fewer, and finalize's 9 epochs, used to
        # end in a ZeroDivisionError of the learning-rate schedule.
        ([12, 12, 12], ["--finalize", "1", "--finalize-epochs", "9"]),
        ([30, 2, 3], []),  # very uneven classes
        ([3, 3], ["--finalize", "1", "--finalize-epochs", "1"]),  # fewer images than a batch
    ],
)
def test_small_folders_search_and_finalize(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    one_thread: None,
    counts: list[int],
    extra: list[str],
) -> None:
    data = _folder(tmp_path / "data", counts, modes=("RGB", "L", "RGBA", "I;16"))
    out = tmp_path / "out"
    assert main(["search", str(out), "--data", str(data), *QUICK, *extra]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["trials"] == 2 and len(summary["task"]["classes"]) == len(counts)
    # The printed summary describes the network searched: its classes, not ImageNet's 1000.
    assert f"{len(counts)} classes)" in printed and "1000 classes" not in printed
    if extra:
        assert (out / "final" / "config.json").is_file()
