"""Predicting over a corpus on one machine: inputs, streaming, parts, resume, errors, the CLI.

The reference for every score is :func:`mnaszoo.predict` on the same files one image at a time
(its own, independent loop); embeddings are checked by running the model's classifier on them.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import mnaszoo
from mnaszoo.cli.main import main
from mnaszoo.errors import InvalidArgumentError, InvalidImageError
from mnaszoo.tasks.corpus import Corpus
from mnaszoo.tasks.parts import read_results
from mnaszoo.tasks.streaming import predict_batches, predict_to_file

LABELS = ["ant", "bee", "cat", "dog", "eel"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _jpeg(path: Path, seed: int, size: tuple[int, int] = (72, 56)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return mnaszoo.create("mnasnet_small", num_classes=len(LABELS)).eval()


@pytest.fixture(scope="module")
def checkpoint(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "model"
    mnaszoo.save_pretrained(model, folder, labels=LABELS)
    os.chmod(folder.parent, 0o755)
    return folder


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Nine JPEGs in a small tree (one hidden, one a non-image), sorted order a/..., b.jpg..."""
    root = tmp_path / "photos"
    for i in range(3):
        _jpeg(root / "a" / f"{i}.jpg", i)
    for i in range(3, 7):
        _jpeg(root / f"p{i}.JPG", i)
    _jpeg(root / "a" / "deep" / "z.png", 7)
    _jpeg(root / ".hidden" / "h.jpg", 8)
    (root / "notes.txt").write_text("not listed")
    return root


def _reference(paths: list[str], model: torch.nn.Module, topk: int = 3) -> list[Any]:
    return [mnaszoo.predict(path, model, topk=topk, device="cpu") for path in paths]


def _check_rows(
    rows: list[dict[str, Any]], paths: list[str], model: torch.nn.Module, named: bool = False
) -> None:
    assert [row["index"] for row in rows] == list(range(len(paths)))
    assert [row["path"] for row in rows] == paths
    for row, expected in zip(rows, _reference(paths, model), strict=True):
        assert row["error"] is None
        assert row["indices"] == [p.index for p in expected]
        assert row["scores"] == pytest.approx([p.score for p in expected], abs=1e-5)
        # The checkpoint stores the class names; the bare module has none.
        assert row["labels"] == [
            LABELS[i] if named else p.label for i, p in zip(row["indices"], expected, strict=True)
        ]


# ----------------------------------------------------------------------------- corpus


def test_a_folder_is_walked_recursively_in_sorted_order_skipping_hidden_and_non_images(
    photos: Path,
) -> None:
    names = [os.path.relpath(p, photos) for p in Corpus.of([photos]).paths()]
    assert names == [
        "a/0.jpg",
        "a/1.jpg",
        "a/2.jpg",
        "a/deep/z.png",
        *[f"p{i}.JPG" for i in range(3, 7)],
    ]


def test_a_symlink_loop_is_refused_not_walked_for_ever(photos: Path) -> None:
    (photos / "a" / "loop").symlink_to(photos, target_is_directory=True)
    with pytest.raises(InvalidArgumentError, match="twice"):
        list(Corpus.of([photos]).paths())


def test_a_link_to_a_folder_outside_the_tree_is_walked(photos: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.png").write_bytes((photos / "a" / "deep" / "z.png").read_bytes())
    (photos / "linked").symlink_to(outside, target_is_directory=True)
    assert len(list(Corpus.of([photos]).paths())) == 9


def test_list_files_and_tables_resolve_paths_relative_to_themselves(
    photos: Path, tmp_path: Path
) -> None:
    wanted = [photos / "p3.JPG", photos / "a" / "1.jpg"]
    listing = photos / "list.txt"
    listing.write_text("# two images\np3.JPG\n\n" + str(wanted[1]) + "\n")
    table = photos / "table.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "file"])
        writer.writerow([1, "p3.JPG"])
        writer.writerow([2, "a/1.jpg"])
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    pq.write_table(pa.table({"file": ["p3.JPG", "a/1.jpg"]}), photos / "table.parquet")
    for source in (f"@{listing}", str(table), str(photos / "table.parquet")):
        found = list(Corpus.of([source], path_column="file").paths())
        assert [Path(p).resolve() for p in found] == [p.resolve() for p in wanted], source


def test_a_missing_source_or_path_column_is_a_clear_error(photos: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"does not exist.*@LIST"):
        Corpus.of([photos / "nope"])
    with pytest.raises(InvalidArgumentError, match="list file"):
        Corpus.of(["@" + str(photos / "nope.txt")])
    table = photos / "t.csv"
    table.write_text("file\nx.jpg\n")
    with pytest.raises(InvalidArgumentError, match=r"no column 'path'.*--path-column"):
        list(Corpus.of([table]).paths())


# ----------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_the_file_holds_the_predictions_of_predict_in_corpus_order(
    photos: Path, tmp_path: Path, model: torch.nn.Module, suffix: str
) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    output = tmp_path / f"out{suffix}"
    summary = predict_to_file(
        [photos], output, model, topk=3, batch_size=3, part_size=4, device="cpu", progress=False
    )
    assert (summary.images, summary.errors, summary.skipped_parts) == (8, 0, 0)
    assert not output.with_name(output.name + ".parts").exists()
    _check_rows(read_results(output), list(Corpus.of([photos]).paths()), model)


@pytest.mark.parametrize(
    ("images", "batch_size", "part_size", "workers"),
    [(1, 1, 1, 0), (1, 8, 4096, 0), (4, 4, 4, 0), (5, 2, 3, 2), (4, 64, 1, 2)],
)
def test_edge_sizes_give_every_row_once(
    tmp_path: Path,
    model: torch.nn.Module,
    images: int,
    batch_size: int,
    part_size: int,
    workers: int,
) -> None:
    paths = [str(_jpeg(tmp_path / "in" / f"{i:02d}.jpg", i)) for i in range(images)]
    output = tmp_path / "out.jsonl"
    predict_to_file(
        [tmp_path / "in"],
        output,
        model,
        topk=3,
        batch_size=batch_size,
        part_size=part_size,
        workers=workers,
        device="cpu",
        progress=False,
    )
    _check_rows(read_results(output), paths, model)


def test_batches_from_the_iterator_api_match_the_file(photos: Path, model: torch.nn.Module) -> None:
    batches = list(predict_batches([photos], model, topk=3, batch_size=3, device="cpu"))
    assert [len(b["path"]) for b in batches] == [3, 3, 2]
    rows = [
        dict(zip(b, values, strict=True))
        for b in batches
        for values in zip(*b.values(), strict=True)
    ]
    _check_rows(rows, list(Corpus.of([photos]).paths()), model)


def test_embeddings_are_the_pooled_features_the_classifier_sees(
    photos: Path, tmp_path: Path, model: Any
) -> None:
    output = tmp_path / "out.jsonl"
    predict_to_file([photos], output, model, topk=5, embeddings=True, device="cpu", progress=False)
    rows = read_results(output)
    features = torch.tensor([row["embedding"] for row in rows])
    assert features.shape == (8, model.num_features)
    probabilities = model.classifier(features).softmax(dim=1)
    for row, expected in zip(rows, probabilities, strict=True):
        assert row["scores"] == pytest.approx(expected[row["indices"]].tolist(), abs=1e-5)


def test_a_bad_image_is_a_row_with_its_error_or_stops_the_job(
    photos: Path, tmp_path: Path, model: torch.nn.Module
) -> None:
    (photos / "a" / "1.jpg").write_bytes(b"\xff\xd8 truncated")
    (photos / "a" / "2.jpg").write_bytes(b"")
    output = tmp_path / "out.jsonl"
    summary = predict_to_file([photos], output, model, topk=3, batch_size=2, device="cpu")
    rows = read_results(output)
    assert summary.errors == 2 and len(rows) == 8
    assert [bool(row["error"]) for row in rows] == [False, True, True] + [False] * 5
    assert str(photos / "a" / "1.jpg") in rows[1]["error"]
    assert rows[1]["scores"] == rows[1]["labels"] == []
    good = [row["path"] for row in rows if not row["error"]]
    _check_rows(
        [dict(r, index=i) for i, r in enumerate(r for r in rows if not r["error"])], good, model
    )
    output.unlink()
    with pytest.raises(InvalidImageError, match=r"1\.jpg"):
        predict_to_file([photos], output, model, batch_size=2, on_error="fail", device="cpu")
    assert not output.exists()


def test_an_empty_corpus_gives_a_valid_empty_file_and_a_warning(
    tmp_path: Path, model: torch.nn.Module, caplog: pytest.LogCaptureFixture
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "empty").mkdir()
    output = tmp_path / "out.parquet"
    summary = predict_to_file([tmp_path / "empty"], output, model, device="cpu")
    assert summary.images == 0
    table = pq.read_table(output)
    assert table.num_rows == 0
    assert table.schema.names == ["index", "path", "labels", "indices", "scores", "error"]
    assert "No images found" in caplog.text


def test_a_different_job_cannot_resume_and_an_unfinished_one_is_not_overwritten(
    photos: Path, tmp_path: Path, model: torch.nn.Module
) -> None:
    output = tmp_path / "out.jsonl"
    parts = tmp_path / "out.jsonl.parts"
    (photos / "a" / "2.jpg").write_bytes(b"bad")
    with pytest.raises(InvalidImageError):
        predict_to_file([photos], output, model, batch_size=1, part_size=1, on_error="fail")
    assert sorted(p.name for p in parts.iterdir()) == [
        "manifest.json",
        "part-000000.jsonl",
        "part-000001.jsonl",
    ]
    with pytest.raises(InvalidArgumentError, match=r"unfinished job.*--resume"):
        predict_to_file([photos], output, model, batch_size=1, part_size=1)
    with pytest.raises(InvalidArgumentError, match=r"differs.*topk"):
        predict_to_file([photos], output, model, topk=2, part_size=1, resume=True)
    _jpeg(photos / "a" / "2.jpg", 2)  # mended, but the corpus fingerprint is the same
    summary = predict_to_file(
        [photos], output, model, topk=5, batch_size=1, part_size=1, resume=True
    )
    assert summary.skipped_parts == 2
    assert [row["index"] for row in read_results(output)] == list(range(8))


def test_the_output_is_checked_before_any_work(tmp_path: Path, photos: Path) -> None:
    # A model name that would need a download: the error must come first.
    with pytest.raises(InvalidArgumentError, match=r"directory .* does not exist"):
        predict_to_file([photos], tmp_path / "missing" / "out.jsonl", "mnasnet_a1")
    with pytest.raises(InvalidArgumentError, match=r"\*\.parquet or \*\.jsonl"):
        predict_to_file([photos], tmp_path / "out.csv", "mnasnet_a1")


# ----------------------------------------------------------------------------- CLI


def _cli(*argv: str, **options: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", **options.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "mnaszoo", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        **options,
    )


def test_cli_refuses_batch_options_without_output(
    photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(photos / "p3.JPG"), "--workers", "2", "--resume"]) == 1
    assert "--workers, --resume only apply with --output" in capsys.readouterr().err


def test_cli_writes_the_file_from_a_list_and_a_folder(
    photos: Path,
    tmp_path: Path,
    checkpoint: Path,
    model: torch.nn.Module,
    capsys: pytest.CaptureFixture[str],
) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(str(photos / "p4.JPG") + "\n")
    output = tmp_path / "out.jsonl"
    argv = [
        "predict",
        f"@{listing}",
        str(photos / "a"),
        "--checkpoint",
        str(checkpoint),
        "--output",
        str(output),
        "-k",
        "3",
        "--backend",
        "torch",
        "-j",
        "1",
        "-b",
        "2",
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith(f"{output}: 5 images, 0 errors")
    paths = [str(photos / "p4.JPG"), *list(Corpus.of([photos / "a"]).paths())]
    _check_rows(read_results(output), paths, model, named=True)


def test_cli_read_only_output_folder_is_refused_before_any_work(
    photos: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    command = [sys.executable, "-m", "mnaszoo", "predict", str(photos), "--model", "mnasnet_a1"]
    command += ["--output", str(folder / "o.jsonl")]
    if os.geteuid() == 0:
        # Root writes anywhere; without the capability to override permissions it cannot.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        command = [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override", *command]
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    # The model (which would need a download here) is never reached.
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("mnaszoo: error: Cannot write the predictions to"), (
        result.stderr
    )
    assert "Permission denied" in result.stderr
    assert list(folder.iterdir()) == []


@pytest.mark.slow
def test_cli_killed_with_sigkill_resumes_to_the_uninterrupted_result(
    tmp_path: Path, checkpoint: Path
) -> None:
    pytest.importorskip("pyarrow")
    for i in range(24):
        _jpeg(tmp_path / "in" / f"{i:02d}.jpg", i, size=(900, 700))
    common = [
        "predict",
        str(tmp_path / "in"),
        "--checkpoint",
        str(checkpoint),
        "-k",
        "3",
        "--backend",
        "torch",
        "-b",
        "1",
        "--part-size",
        "2",
    ]
    whole = tmp_path / "whole.parquet"
    assert _cli(*common, "--output", str(whole)).returncode == 0
    output = tmp_path / "out.parquet"
    parts = tmp_path / "out.parquet.parts"
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "mnaszoo", *common, "--output", str(output), "-j", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(parts.glob("part-*.parquet"))) < 3:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)  # the command and its decoding worker
    child.wait()
    written = len(list(parts.glob("part-*.parquet")))
    assert 3 <= written < 12 and not output.exists()
    rerun = _cli(*common, "--output", str(output), "--resume")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{written} parts from an earlier run" in rerun.stdout
    rows, expected = read_results(output), read_results(whole)
    assert [r["index"] for r in rows] == list(range(24))
    assert [r["path"] for r in rows] == [r["path"] for r in expected]
    for row, reference in zip(rows, expected, strict=True):
        assert row["indices"] == reference["indices"]
        assert row["scores"] == pytest.approx(reference["scores"], abs=1e-5)
    json.dumps(rows)  # plain values only
