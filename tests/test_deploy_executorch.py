"""ExecuTorch export, checked by ExecuTorch's own runtime against eager torch.

Every ``.pte`` written here is loaded by ``executorch.runtime`` (through
:class:`mnaszoo.ExecuTorchModel`) and its outputs compared with the eager model's. Lowering costs
seconds per model whatever the input size, so each program is exported once (module fixtures)
and run at small sizes, except one at the full recipe size.
"""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import mnaszoo
from mnaszoo.cli.main import main as cli_main
from mnaszoo.data.transforms import DEFAULT_PREPROCESSING, ImageTransform
from mnaszoo.deploy import executorch as et
from mnaszoo.errors import ArgumentTypeError, InvalidArgumentError, MnaszooError
from mnaszoo.models.registry import get_entry
from mnaszoo.search import SearchSpace
from mnaszoo.weights.manifest import Preprocessing

from .conftest import assert_close_to_scale

HAVE_EDGE = importlib.util.find_spec("executorch") is not None
needs_edge = pytest.mark.skipif(
    not HAVE_EDGE, reason='ExecuTorch is not installed (pip install "mnaszoo[edge]")'
)
SMALL = 32  # MnasNet's stride is 32: a 1x1 final map, the whole graph still runs


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- fp32, every model


def _models_to_export() -> list[str]:
    """Every registered model with MNASZOO_EXHAUSTIVE=1; else one per architecture (the widths of
    one architecture lower to the same operators, and each export costs about 30 s on 2 cores)."""
    names = mnaszoo.list_models()
    if os.environ.get("MNASZOO_EXHAUSTIVE") == "1":
        return names
    first: dict[str, str] = {}
    for name in names:
        first.setdefault(get_entry(name).spec.name, name)
    return sorted(first.values())


@needs_edge
@pytest.mark.slow
@pytest.mark.parametrize("name", _models_to_export())
def test_fp32_program_matches_eager_for_every_model(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mnaszoo.create(name).eval()
    # One model at its full recipe size (input_size defaults to it), the rest small.
    size = None if name == "mnasnet_a1" else SMALL
    path = mnaszoo.export(model, tmp_path / f"{name}.pte", "executorch", input_size=size)
    program = mnaszoo.ExecuTorchModel(path)
    side = 224 if size is None else size
    assert program.input_shape == (1, 3, side, side) and program.num_classes == 1000
    x = torch.randn(1, 3, side, side)
    with torch.no_grad():
        expected = model(x)
    assert_close_to_scale(program(x), expected, 1e-4)
    assert _leftovers(tmp_path) == [f"{name}.pte"]  # no temporary file left behind


@needs_edge
@pytest.mark.slow
def test_searched_spec_program_matches_eager(tmp_path: Path) -> None:
    space = SearchSpace()
    spec = space.to_spec(space.sample(random.Random(3)))
    torch.manual_seed(0)
    model = mnaszoo.build(spec, num_classes=10).eval()
    path = mnaszoo.export(model, tmp_path / "searched.pte", "executorch", batch=2, input_size=64)
    program = mnaszoo.ExecuTorchModel(path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    assert_close_to_scale(program(x), expected, 1e-4)
    with pytest.raises(InvalidArgumentError, match="shape"):
        program(torch.randn(1, 3, 64, 64))  # the batch is static


# ----------------------------------------------------------------------------- int8


@pytest.fixture(scope="module")
def int8_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """mnasnet_small exported in int8, calibrated on 32 images of 64 px."""
    folder = tmp_path_factory.mktemp("int8")
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=10).eval()
    generator = torch.Generator().manual_seed(1)
    calibration = torch.randn(32, 3, 64, 64, generator=generator)
    # A DataLoader-like iterable of (images, labels) batches, as quantize_int8 takes it.
    batches = [(chunk, torch.zeros(len(chunk))) for chunk in calibration.split(8)]
    int8 = mnaszoo.export(model, folder / "int8.pte", "executorch-int8", calibration=batches)
    return model, int8


@needs_edge
@pytest.mark.slow
def test_int8_program_agrees_with_eager_top1(
    int8_case: tuple[torch.nn.Module, Path],
) -> None:
    model, int8_path = int8_case
    int8 = mnaszoo.ExecuTorchModel(int8_path)
    assert int8.input_shape == (1, 3, 64, 64)  # the calibration images' size
    # int8 weights: the program is well under the fp32 weights' 4 bytes per parameter.
    fp32_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert int8_path.stat().st_size < 0.5 * fp32_bytes
    generator = torch.Generator().manual_seed(2)  # calibration-like: same distribution
    images = torch.randn(16, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected = model(images)
    got = torch.cat([int8(image[None]) for image in images])
    agreement = (got.argmax(1) == expected.argmax(1)).float().mean().item()
    assert agreement >= 0.9, f"int8 top-1 agrees with fp32 on {agreement:.0%} only"
    assert_close_to_scale(got, expected, 0.2)  # 8-bit rounding, but no wrong tensor anywhere


# ----------------------------------------------------------------------------- preprocessing


@needs_edge
@pytest.mark.slow
def test_cli_export_with_preprocessing_equals_make_transform(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=4).eval()
    mnaszoo.save_pretrained(model, tmp_path / "saved")
    out = tmp_path / "small.pte"
    argv = ["export", str(tmp_path / "saved"), str(out), "-f", "executorch", "--preprocess"]
    assert cli_main([*argv, "--input-size", str(SMALL)]) == 0
    program = mnaszoo.ExecuTorchModel(out)
    assert program.input_shape == (1, SMALL, SMALL, 3) and program.input_dtype == torch.uint8
    image = np.random.default_rng(0).integers(0, 256, (SMALL, SMALL, 3), dtype=np.uint8)
    # The weights' normalisation on the same crop: resize and crop are identities here.
    recipe = Preprocessing(
        input_size=SMALL,
        interpolation="bilinear",
        mean=DEFAULT_PREPROCESSING.mean,
        std=DEFAULT_PREPROCESSING.std,
        resize_size=SMALL,
    )
    normalised = ImageTransform(recipe)(image)
    with torch.no_grad():
        expected = model(normalised[None])
    got = program(torch.from_numpy(image)[None])
    assert_close_to_scale(got, expected, 1e-4)


def test_image_input_equals_make_transform() -> None:
    """The in-graph preprocessing module itself, in eager torch (no ExecuTorch needed)."""
    image = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    recipe = Preprocessing(
        input_size=40,
        interpolation="bicubic",
        mean=(0.5, 0.4, 0.3),
        std=(0.2, 0.25, 0.3),
        resize_size=40,
    )
    wrapped = et.ImageInput(torch.nn.Identity(), recipe.mean, recipe.std)
    got = wrapped(torch.from_numpy(image)[None])
    torch.testing.assert_close(got[0], ImageTransform(recipe)(image), rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- benchmark


@needs_edge
@pytest.mark.slow
def test_benchmark_executorch_variant_with_ratios() -> None:
    from mnaszoo.deploy.benchmark import run_benchmark, to_markdown

    rows = run_benchmark(
        ["mnasnet_small"],
        batch_sizes=(1,),
        input_size=SMALL,
        repeats=3,
        warmup=1,
        variants=("torch", "onnxruntime", "executorch"),
        compare_reference=False,
        threads=1,
        peak_gflops=10.0,
    )
    by_variant = {r.variant: r for r in rows}
    assert set(by_variant) == {"torch", "onnxruntime", "executorch"}
    edge = by_variant["executorch"]
    assert edge.threads == 1 and et.executorch_threads() == 1
    assert edge.vs_onnxruntime == pytest.approx(
        edge.median_ms / by_variant["onnxruntime"].median_ms
    )
    assert edge.vs_torch == pytest.approx(edge.median_ms / by_variant["torch"].median_ms)
    assert "| executorch |" in to_markdown(rows)


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def small() -> torch.nn.Module:
    return mnaszoo.create("mnasnet_small", num_classes=3).eval()


@pytest.mark.parametrize(
    ("calibration", "error", "match"),
    [
        (torch.empty(0, 3, 32, 32), InvalidArgumentError, "empty"),
        ([], InvalidArgumentError, "empty"),
        (torch.randn(15, 3, 32, 32), InvalidArgumentError, "at least 16"),
        (torch.full((4, 3, 32, 32), float("nan")), InvalidArgumentError, "NaN"),
        (torch.zeros(4, 3, 32, 32, dtype=torch.uint8), ArgumentTypeError, "float"),
        ("images/", ArgumentTypeError, "calibration"),
    ],
)
def test_bad_calibration_is_refused_before_any_work(
    small: torch.nn.Module, tmp_path: Path, calibration: object, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        mnaszoo.export(small, tmp_path / "x.pte", "executorch-int8", calibration=calibration)  # type: ignore[arg-type]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format": "executorch-int8"}, "needs calibration"),
        ({"format": "executorch", "calibration": torch.randn(4, 3, 32, 32)}, "executorch-int8"),
        ({"format": "onnx", "preprocess": True}, "ExecuTorch formats only"),
        ({"format": "executorch", "batch": "dynamic"}, "static batch"),
        ({"format": "executorch", "batch": 0}, "batch"),
        ({"format": "executorch", "input_size": (32, 32, 3)}, "input_size"),
        ({"format": "tflite"}, "tflite"),
        (
            {
                "format": "executorch-int8",
                "input_size": 48,
                "calibration": torch.randn(16, 3, 32, 32),
            },
            "calibrate at the size",
        ),
    ],
)
def test_bad_arguments_are_refused(
    small: torch.nn.Module, tmp_path: Path, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        mnaszoo.export(small, tmp_path / "x.pte", **kwargs)  # type: ignore[arg-type]
    assert _leftovers(tmp_path) == []


def test_unwritable_paths_are_refused(small: torch.nn.Module, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        mnaszoo.export(small, tmp_path / "missing" / "x.pte", "executorch")
    (tmp_path / "folder.pte").mkdir()
    with pytest.raises(InvalidArgumentError, match="directory"):
        mnaszoo.export(small, tmp_path / "folder.pte", "executorch")
    assert _leftovers(tmp_path) == ["folder.pte"]


def test_missing_extra_says_what_to_install(
    small: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec

    def without_executorch(name: str, *args: object) -> object:
        return None if name.split(".")[0] == "executorch" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_executorch)
    for fmt, extra in (
        ("executorch", {}),
        ("executorch-int8", {"calibration": torch.randn(16, 3, 32, 32)}),
    ):
        with pytest.raises(MnaszooError, match=r'pip install "mnaszoo\[edge\]"'):
            mnaszoo.export(small, tmp_path / "x.pte", fmt, input_size=32, **extra)  # type: ignore[arg-type]
    (tmp_path / "some.pte").write_bytes(b"x")
    with pytest.raises(MnaszooError, match=r"mnaszoo\[edge\]"):
        mnaszoo.ExecuTorchModel(tmp_path / "some.pte")
    assert _leftovers(tmp_path) == ["some.pte"]


@needs_edge
def test_failed_lowering_leaves_no_file_and_keeps_the_old_one(
    small: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model.pte"
    target.write_bytes(b"previous program")

    def broken(module: object, example: object) -> bytes:
        raise RuntimeError("lowering failed")

    monkeypatch.setattr(et, "_lower", broken)
    with pytest.raises(RuntimeError, match="lowering failed"):
        mnaszoo.export(small, target, "executorch", input_size=32)
    assert target.read_bytes() == b"previous program" and _leftovers(tmp_path) == ["model.pte"]


@needs_edge
def test_runner_refuses_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="No ExecuTorch program"):
        mnaszoo.ExecuTorchModel(tmp_path / "absent.pte")
    garbage = tmp_path / "garbage.pte"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(MnaszooError, match="not an ExecuTorch program that can be loaded"):
        mnaszoo.ExecuTorchModel(garbage)


def test_cli_export_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.pte"
    assert cli_main(["export", "mnasnet_small", str(out), "-f", "executorch-int8"]) == 1
    assert "--calibration" in capsys.readouterr().err
    assert cli_main(["export", "mnasnet_small", str(tmp_path / "no" / "x.pte")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["export", "mnasnet_small", str(out), "-f", "tflite"]) == 2
    assert _leftovers(tmp_path) == []


def test_cli_export_pt2_from_saved_directory(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=4).eval()
    mnaszoo.save_pretrained(model, tmp_path / "saved")
    out = tmp_path / "small.pt2"
    argv = ["export", str(tmp_path / "saved"), str(out), "-f", "pt2", "--input-size", "48"]
    assert cli_main(argv) == 0
    program = torch.export.load(out).module()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert_close_to_scale(program(x), model(x), 1e-5)


@needs_edge
@pytest.mark.slow
def test_a_one_channel_model_with_preprocess_runs_from_checked_bytes(tmp_path: Path) -> None:
    import hashlib

    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=3, in_chans=1).eval()
    path = mnaszoo.export(
        model, tmp_path / "grey.pte", "executorch", input_size=32, preprocess=True
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    runner = mnaszoo.ExecuTorchModel(path, sha256=digest)
    image = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)
    mean = torch.tensor(DEFAULT_PREPROCESSING.mean).view(1, 3, 1, 1)
    std = torch.tensor(DEFAULT_PREPROCESSING.std).view(1, 3, 1, 1)
    rgb = (image.permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.no_grad():
        expected = model(rgb.mean(dim=1, keepdim=True))  # the grey image predict feeds it
    torch.testing.assert_close(runner(image), expected, atol=1e-4, rtol=1e-4)
