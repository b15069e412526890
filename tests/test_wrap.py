"""Third-party load and save errors become mnaszoo errors (``mnaszoo._wrap``), and exported
programs given where weights are expected are recognised, not called corrupt."""

from __future__ import annotations

import errno
import hashlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import mnaszoo
from mnaszoo._wrap import os_error_reason, reading, writing
from mnaszoo.cli.main import main
from mnaszoo.errors import (
    CorruptFileError,
    IntegrityError,
    InvalidArgumentError,
    MnaszooError,
    WriteError,
)


def _small() -> mnaszoo.MnasNet:
    torch.manual_seed(0)
    return mnaszoo.create("mnasnet_small", num_classes=3).eval()


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = tmp_path_factory.mktemp("onnx") / "small.onnx"
    return mnaszoo.export(_small(), path, "onnx", input_size=64)


def test_os_errors_are_explained_with_what_to_do() -> None:
    assert os_error_reason(OSError(errno.ENOSPC, "x")).startswith("No space left on device.")
    assert "read-only" in os_error_reason(OSError(errno.EROFS, "x"))
    assert "permissions" in os_error_reason(PermissionError(errno.EACCES, "x"))
    # Rust libraries (safetensors) put the errno in their message.
    rust = RuntimeError("I/O error: No space left on device (os error 28)")
    assert os_error_reason(rust).startswith("No space left on device")


def test_writing_wraps_os_errors_and_leaves_other_errors_alone(tmp_path: Path) -> None:
    expected = r"Cannot write the log to .*x: Read-only"
    with pytest.raises(WriteError, match=expected) as info, writing("the log", tmp_path / "x"):
        raise OSError(errno.EROFS, "Read-only file system")
    assert info.value.errno == errno.EROFS and isinstance(info.value, OSError)
    with pytest.raises(KeyError), writing("the log", tmp_path / "log.txt"):
        raise KeyError("a bug is not a disk error")
    with pytest.raises(InvalidArgumentError), writing("the log", tmp_path):
        raise InvalidArgumentError("mnaszoo's own errors pass through")


def test_reading_wraps_whatever_the_library_raises(tmp_path: Path) -> None:
    expected = r"x\.bin is not a model that can be loaded"
    path = tmp_path / "x.bin"
    with pytest.raises(CorruptFileError, match=expected), reading("a model", path, "-"):
        raise RuntimeError("flatbuffer verification failed")


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: b"\x00" * 64,  # zeros
        lambda data: b"<html>login</html>",  # an error page
        lambda data: data[:20] + bytes(b ^ 0xFF for b in data[20:200]) + data[200:],
    ],
)
def test_a_damaged_onnx_file_is_a_mnaszoo_error(
    onnx_file: Path, tmp_path: Path, damage: object
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(damage(onnx_file.read_bytes()))  # type: ignore[operator]
    with pytest.raises(CorruptFileError, match="is not an ONNX model that can be loaded") as info:
        mnaszoo.OnnxRuntimeModel(bad)
    assert "export it again" in str(info.value)


def test_an_onnx_file_with_flipped_bytes_and_a_sha256_is_refused(
    onnx_file: Path, tmp_path: Path
) -> None:
    data = bytearray(onnx_file.read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    data[-10] ^= 0x01
    (tmp_path / "m.onnx").write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        mnaszoo.OnnxRuntimeModel(tmp_path / "m.onnx", sha256=digest)


@pytest.fixture
def fake_executorch(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """ExecuTorch's runtime stood in by a recorder (the edge extra is not installed here)."""
    loaded: list[object] = []

    class Runtime:
        @staticmethod
        def get() -> Runtime:
            return Runtime()

        def load_program(self, data: object) -> object:
            loaded.append(data)
            if isinstance(data, bytes) and not data.startswith(b"\x00\x00\x00\x00ET"):
                raise RuntimeError("Program verification failed")
            raise RuntimeError("stop here: the bytes were checked and handed over")

    runtime = types.ModuleType("executorch.runtime")
    runtime.Runtime = Runtime  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "executorch", types.ModuleType("executorch"))
    monkeypatch.setitem(sys.modules, "executorch.runtime", runtime)
    monkeypatch.setattr("mnaszoo.deploy.executorch.executorch_available", lambda: True)
    return loaded


def test_executorch_model_checks_sha256_before_loading(
    tmp_path: Path, fake_executorch: list[object]
) -> None:
    program = tmp_path / "m.pte"
    data = b"\x00\x00\x00\x00ET12" + bytes(range(200))
    program.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    flipped = bytearray(data)
    flipped[50] ^= 0x01
    program.write_bytes(bytes(flipped))
    with pytest.raises(IntegrityError, match="was changed after it was written"):
        mnaszoo.ExecuTorchModel(program, sha256=digest)
    assert fake_executorch == []  # never handed to the runtime
    with pytest.raises(InvalidArgumentError, match="64 hex digits"):
        mnaszoo.ExecuTorchModel(program, sha256="abc")
    program.write_bytes(data)
    with pytest.raises(CorruptFileError):
        mnaszoo.ExecuTorchModel(program, sha256=digest)
    assert fake_executorch == [data]  # the checked bytes are the bytes loaded


def test_a_damaged_pte_is_a_mnaszoo_error(tmp_path: Path, fake_executorch: list[object]) -> None:
    program = tmp_path / "m.pte"
    program.write_bytes(b"garbage")
    with pytest.raises(CorruptFileError, match="is not an ExecuTorch program") as info:
        mnaszoo.ExecuTorchModel(program)
    assert "format='executorch'" in str(info.value) and isinstance(info.value, MnaszooError)


@pytest.mark.parametrize(
    ("name", "head", "what"),
    [
        ("model.pte", b"\x1c\x00\x00\x00ET12" + bytes(100), "ExecuTorch program"),
        ("renamed.bin", b"\x1c\x00\x00\x00ET12" + bytes(100), "ExecuTorch program"),
        ("model.pt2", b"PK\x03\x04" + bytes(100), "torch.export program"),
    ],
)
def test_an_exported_program_as_checkpoint_is_recognised_not_called_corrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, head: bytes, what: str
) -> None:
    (tmp_path / name).write_bytes(head)
    (tmp_path / "data" / "a").mkdir(parents=True)
    code = main(["evaluate", str(tmp_path / "data"), "-c", str(tmp_path / name), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and what in err and "The file is fine" in err
    assert "corrupt" not in err and "Delete" not in err


@pytest.mark.parametrize(("fmt", "what"), [("torchscript", "TorchScript"), ("pt2", "torch.export")])
def test_torchscript_and_pt2_archives_are_recognised_by_their_contents(
    tmp_path: Path, fmt: str, what: str
) -> None:
    path = mnaszoo.export(_small(), tmp_path / "renamed.pth", fmt, input_size=64)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=f"is a {what} program") as info:
        mnaszoo.create("mnasnet_small", num_classes=3, checkpoint=path)
    assert "corrupt" not in str(info.value)
    saved = tmp_path / "weights.pth"
    torch.save(_small().state_dict(), saved)  # a plain torch.save zip is still weights
    assert mnaszoo.create("mnasnet_small", num_classes=3, checkpoint=saved).num_classes == 3


def test_an_onnx_checkpoint_is_run_by_predict(
    onnx_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.full((70, 70, 3), 90, dtype=np.uint8)).save(image)
    expected = mnaszoo.predict(str(image), mnaszoo.OnnxRuntimeModel(onnx_file), topk=3)
    got = mnaszoo.predict(str(image), "mnasnet_small", checkpoint=onnx_file, topk=3)
    assert [p.index for p in got] == [p.index for p in expected]
    code = main(["predict", str(image), "--checkpoint", str(onnx_file), "-k", "1"])
    assert code == 0 and f"({expected[0].index})" in capsys.readouterr().out
    # evaluate cannot run it: the message says what to do instead.
    (tmp_path / "data" / "a").mkdir(parents=True)
    code = main(["evaluate", str(tmp_path / "data"), "-c", str(onnx_file), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "is an ONNX model" in err and "OnnxRuntimeModel" in err
