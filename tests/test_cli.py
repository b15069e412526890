"""The ``mnaszoo`` command, in process (``main([...])``) and as a real subprocess, against the
loopback Hub (synthetic weights: predictions on the photos are checked for structure,
determinism and equality with the Python API, not for their labels)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo.cli.main import main
from mnaszoo.data.labels import imagenet_synsets
from mnaszoo.tasks.evaluation import evaluate
from mnaszoo.tasks.prediction import clear_model_cache, format_predictions, predict

from .support.publishers import load_case, publisher_bytes
from .support.served import Served

PHOTOS = sorted((Path(__file__).parent / "fixtures" / "images").glob("*.jpg"))
PHOTO = str(PHOTOS[0])


@pytest.fixture(autouse=True)
def _fresh_models() -> Iterator[None]:
    clear_model_cache()  # each test has its own server and cache
    yield
    clear_model_cache()


@pytest.fixture
def checkpoint(tmp_path: Path) -> str:
    """A local mnaszoo-layout checkpoint of mnasnet_small (random weights, no download)."""
    torch.manual_seed(0)
    path = tmp_path / "small.pth"
    torch.save(mnaszoo.create("mnasnet_small").state_dict(), path)
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("mnaszoo: error:")]


def _subprocess(*argv: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [script] if script else [sys.executable, "-m", "mnaszoo"]
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )


# ----------------------------------------------------------------------------- list / info


def test_list_shows_models_counts_and_weights(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "list")
    assert code == 0 and err == ""
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("mnasnet")}
    assert set(rows) == set(mnaszoo.list_models())
    assert rows["mnasnet_a1"].split() == [
        "mnasnet_a1",
        "3,887,038",
        "311.58M",
        "mnasnet_a1.rmsp_in1k",
        "*",
        "75.452",
        "92.608",
    ]
    assert "2,030,264" in rows["mnasnet_small"] and "68.34M" in rows["mnasnet_small"]
    assert rows["mnasnet_d1"].split()[-1] == "-"  # no published weights
    for weights_id in mnaszoo.list_weights():
        assert weights_id in out
    # B1's second weights follow on their own line, unmarked
    assert any(
        line.split() == ["mnasnet_b1.tv_in1k", "73.456", "91.510"] for line in out.splitlines()
    )


def test_list_json_and_patterns(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list", "--json")
    assert code == 0
    data = {entry["name"]: entry for entry in json.loads(out)}
    assert data["mnasnet_a1"]["params"] == 3_887_038
    assert round(data["mnasnet_a1"]["macs"] / 1e6, 2) == 311.58
    assert [w["id"] for w in data["mnasnet_b1"]["weights"]] == mnaszoo.list_weights("mnasnet_b1.*")
    assert [w["default"] for w in data["mnasnet_b1"]["weights"]] == [True, False]
    assert data["mnasnet_d1"]["weights"] == []
    code, out, _ = _run(capsys, "list", "mnasnet_b1_0*", "--json")
    assert [e["name"] for e in json.loads(out)] == ["mnasnet_b1_050", "mnasnet_b1_075"]
    code, out, _ = _run(capsys, "list", "small")  # a plain word matches as a substring
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == ["mnasnet_small"]
    code, _, err = _run(capsys, "list", "mnasnet_z*")
    assert code == 1 and "No model matches 'mnasnet_z*'" in err


def test_info_shows_the_table_and_the_weights(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "info", "mnasnet_a1")
    assert code == 0 and err == ""
    assert str(mnaszoo.describe("mnasnet_a1")) in out
    assert "total: 3,887,038 parameters, 311.58M MACs" in out
    record = mnaszoo.get_weights("mnasnet_a1")
    assert "weights mnasnet_a1.rmsp_in1k (default)" in out
    assert f"sha256 {record.sha256}" in out and "apache-2.0" in out
    assert "resize 256 bicubic, crop 224" in out and "top-1 75.452, top-5 92.608" in out
    code, out, _ = _run(capsys, "info", "mnasnet_b1_075.tv_in1k", "--json")
    data = json.loads(out)
    assert data["name"] == "mnasnet_b1_075" and data["params"] == 3_170_208
    assert [w["id"] for w in data["weights"]] == ["mnasnet_b1_075.tv_in1k"]
    weights = data["weights"][0]
    assert weights["sha256_prefix"] == "7090bc5f" and weights["preprocessing"]["resize"] == 232
    assert weights["metrics"][0] == {
        "dataset": "imagenet-1k-val",
        "top1": 71.18,
        "top5": 90.496,
        "source": weights["metrics"][0]["source"],
    }
    code, out, _ = _run(capsys, "info", "mnasnet_d1", "--input-size", "320")
    assert code == 0 and str(mnaszoo.describe("mnasnet_d1", input_size=320)) in out
    assert "No published weights for mnasnet_d1" in out


def test_unknown_names_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["info", "mnasnet_a2"],
        ["predict", PHOTO, "--model", "mnasnet_a2"],
        ["download", "mnasnet_b2"],
    ):
        code, out, err = _run(capsys, *argv)
        assert code == 1 and out == ""
        assert err.count("\n") == 1 and err.startswith("mnaszoo: error: Unknown model")
        assert "Did you mean 'mnasnet_a1'" in err or "Did you mean 'mnasnet_b1'" in err
    code, _, err = _run(capsys, "download", "mnasnet_d1")
    assert code == 1 and "'mnasnet_d1' has no published weights" in err
    code, _, err = _run(capsys, "download", "mnasnet_b1.tv_in2k")
    assert code == 1 and "Did you mean 'mnasnet_b1.tv_in1k'" in err


def test_usage_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "--version")[:2] == (0, f"mnaszoo {mnaszoo.__version__}\n")
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "usage: mnaszoo" in out
    for command in ("list", "info", "predict", "download", "evaluate"):
        assert command in out
        code, out_command, _ = _run(capsys, command, "--help")
        assert code == 0 and f"usage: mnaszoo {command}" in out_command
    for argv in ([], ["predict"], ["list", "--bogus"], ["predict", PHOTO, "--topk", "0"]):
        code, _, err = _run(capsys, *argv)
        assert code == 2 and "usage: mnaszoo" in err
    code, _, err = _run(capsys, "download")
    assert code == 2 and "give model names or weights ids to download, or --all" in err


# ----------------------------------------------------------------------------- predict


def test_predict_downloads_once_and_matches_the_api(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "predict", PHOTO, "--model", "mnasnet_small")
    assert code == 0 and served.server.requests
    lines = out.splitlines()
    assert lines[0] == PHOTO and len(lines) == 6
    expected = predict(PHOTO, "mnasnet_small")
    assert lines[1:] == format_predictions(expected).splitlines()

    served.server.clear_log()
    clear_model_cache()  # as a new process would: loaded again, from the cache
    code, out, _ = _run(capsys, "predict", *map(str, PHOTOS), "--model", "mnasnet_small", "--json")
    assert code == 0 and served.server.requests == []
    data = json.loads(out)
    api = predict(PHOTOS, "mnasnet_small")
    assert [item["image"] for item in data] == [str(p) for p in PHOTOS]
    assert [[tuple(p.values()) for p in item["predictions"]] for item in data] == [
        [tuple(p) for p in row] for row in api
    ]
    assert list(data[0]["predictions"][0]) == ["label", "index", "score"]

    # A real process (fresh import, fresh model): same answer, still no request.
    child = _subprocess("predict", *map(str, PHOTOS), "--model", "mnasnet_small", "--json", "-q")
    assert child.returncode == 0, child.stderr
    assert served.server.requests == []
    again = json.loads(child.stdout)
    for row, api_row in zip(again, data, strict=True):
        assert [p["index"] for p in row["predictions"]] == [
            p["index"] for p in api_row["predictions"]
        ]
        assert [p["score"] for p in row["predictions"]] == pytest.approx(
            [p["score"] for p in api_row["predictions"]], abs=1e-5
        )


def test_offline_without_cache_explains_what_to_do(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    served.server.stop()
    served.env.set_offline(True)
    code, out, err = _run(capsys, "predict", PHOTO, "--model", "mnasnet_small")
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines == _error_lines(err)
    message = lines[0]
    assert "not in the cache" in message and "downloads are disabled" in message
    assert "--checkpoint" in message and "`mnaszoo download mnasnet_small`" in message
    assert "Traceback" not in err and served.server.requests == []
    code, _, err = _run(capsys, "--debug", "predict", PHOTO, "--model", "mnasnet_b1_075")
    assert code == 1 and "Traceback" in err and "WeightsNotCachedError" in err
    assert "`mnaszoo download mnasnet_b1_075`" in _error_lines(err)[0]
    code, _, err = _run(capsys, "predict", PHOTO, "-m", "mnasnet_b1", "-w", "tv_in1k")
    assert "`mnaszoo download mnasnet_b1.tv_in1k`" in err


def test_download_then_predict_offline(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "download", "mnasnet_b1", "mnasnet_b1_075.tv_in1k")
    assert code == 0
    lines = [line.split("  ") for line in out.splitlines()]
    assert [ids for ids, _ in lines] == ["mnasnet_b1.rmsp_in1k", "mnasnet_b1_075.tv_in1k"]
    for _, path in lines:
        assert Path(path).is_file()
    assert served.cache in Path(lines[1][1]).parents  # URL files: $MNASZOO_CACHE
    served.server.stop()
    served.env.set_offline(True)
    served.server.clear_log()
    for model in ("mnasnet_b1", "mnasnet_b1_075"):
        code, out, err = _run(
            capsys, "predict", PHOTO, "--model", model, "--topk", "3", "--backend", "torch"
        )
        assert code == 0, err
        assert len(out.splitlines()) == 4
    assert served.server.requests == []
    # Cached and verified: `download` offline just reports where the files are.
    code, out, _ = _run(capsys, "download", "mnasnet_b1")
    assert code == 0 and out.split() == lines[0]


def test_class_file(checkpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = tmp_path / "three.txt"
    short.write_text("cat\ndog\nzebra\n")
    code, out, err = _run(
        capsys, "predict", PHOTO, "-m", "mnasnet_small", "-c", checkpoint, "--classes", str(short)
    )
    assert code == 1 and out == ""
    assert _error_lines(err) == err.splitlines()
    assert "has 3 labels but the model has 1000 classes" in err
    names = tmp_path / "names.txt"
    names.write_text("".join(f"thing {i}\n" for i in range(1000)))
    code, out, _ = _run(
        capsys,
        "predict",
        PHOTO,
        "-m",
        "mnasnet_small",
        "-c",
        checkpoint,
        "--classes",
        str(names),
        "--json",
    )
    assert code == 0
    for p in json.loads(out)[0]["predictions"]:
        assert p["label"] == f"thing {p['index']}"


def test_bad_images_and_devices(
    checkpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    code, out, err = _run(
        capsys, "predict", PHOTO, str(bad), "-m", "mnasnet_small", "-c", checkpoint
    )
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert f"image 1 ({str(bad)!r})" in err
    code, _, err = _run(
        capsys, "predict", PHOTO, "-m", "mnasnet_small", "-c", str(tmp_path / "missing.pth")
    )
    assert code == 1 and len(err.splitlines()) == 1 and "missing.pth" in err
    code, _, err = _run(capsys, "predict", PHOTO, "-c", checkpoint, "--device", "quantum")
    assert code == 1 and "Unknown device 'quantum'" in err


def test_log_lines_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A torchvision version-1 checkpoint: mnaszoo says which architecture it builds.
    path = tmp_path / "v1.pth"
    path.write_bytes(publisher_bytes(load_case("torchvision_mnasnet0_5_v1"), "v1.pth"))
    code, out, err = _run(capsys, "predict", PHOTO, "-m", "mnasnet_b1_050", "-c", str(path))
    assert code == 0 and out.startswith(PHOTO)
    assert "mnaszoo: warning: " in err and "torchvision version-1 MNASNet checkpoint" in err
    clear_model_cache()
    code, _, err = _run(capsys, "-q", "predict", PHOTO, "-m", "mnasnet_b1_050", "-c", str(path))
    assert code == 0 and "version-1" in err  # warnings stay with --quiet


# ----------------------------------------------------------------------------- evaluate


def _image_folder(root: Path) -> Path:
    for synset, photos in zip(imagenet_synsets()[:2], (PHOTOS[:2], PHOTOS[2:]), strict=True):
        (root / synset).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, root / synset / photo.name)
    return root


def test_evaluate_matches_the_api(
    checkpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _image_folder(tmp_path / "val")
    out_file = tmp_path / "result.json"
    code, out, err = _run(
        capsys,
        "evaluate",
        str(folder),
        "-m",
        "mnasnet_small",
        "-c",
        checkpoint,
        "--batch-size",
        "2",
        "--json-out",
        str(out_file),
    )
    assert code == 0, err
    assert "mnaszoo: Evaluating mnasnet_small (no published weights) on 3 images" in err
    saved = json.loads(out_file.read_text())
    api = evaluate("mnasnet_small", folder, checkpoint=checkpoint, progress=False).to_dict()
    for key in ("seconds", "images_per_second", "batch_size"):
        del saved[key], api[key]
    assert saved == api
    assert f"top-1          {api['top1']:.2f} %  ({api['top1_correct']}/3)" in out
    assert "images         3 in 2 classes" in out
    code, out, err = _run(
        capsys,
        "-q",
        "evaluate",
        str(folder),
        "-m",
        "mnasnet_small",
        "-c",
        checkpoint,
        "--json",
        "--limit",
        "2",
    )
    assert code == 0 and err == ""
    assert json.loads(out)["num_images"] == 2 and json.loads(out)["num_classes_seen"] == 2
    code, _, err = _run(capsys, "evaluate", str(tmp_path / "nowhere"), "-c", checkpoint)
    assert code == 1 and "does not exist" in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- processes


def test_module_and_console_script(capsys: pytest.CaptureFixture[str]) -> None:
    child = _subprocess("list")
    assert child.returncode == 0 and child.stderr == ""
    assert main(["list"]) == 0
    assert child.stdout == capsys.readouterr().out
    child = _subprocess("info", "mnasnet_a2")
    assert child.returncode == 1
    assert (
        child.stderr.splitlines() == _error_lines(child.stderr)
        and len(child.stderr.splitlines()) == 1
    )
    assert _subprocess("predict").returncode == 2
    script = shutil.which("mnaszoo", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the mnaszoo console script is not installed (pip install -e .)")
    child = _subprocess("--version", script=script)
    assert child.returncode == 0 and child.stdout == f"mnaszoo {mnaszoo.__version__}\n"


def test_docs_show_the_current_output(capsys: pytest.CaptureFixture[str]) -> None:
    # docs/cli.md asks for these outputs with <!-- mnaszoo:run ... --> markers, which
    # docs/hooks.py replaces by the command's output when the site is built
    import importlib.util

    docs = Path(__file__).parents[1] / "docs"
    spec = importlib.util.spec_from_file_location("mnaszoo_docs_hooks_cli", docs / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    text = (docs / "cli.md").read_text()
    for argv in (["list"], ["list", "b1_075", "--json"], ["info", "mnasnet_small"]):
        command = f"mnaszoo {' '.join(argv)}"
        assert f"<!-- mnaszoo:run {command} -->" in text, argv
        code, out, _ = _run(capsys, *argv)
        assert code == 0
        assert hooks.run_command(command) == f"```console\n$ {command}\n{out.rstrip()}\n```"
