"""Hashes that do not depend on the cache's shape, trust-on-first-use pins, `mnaszoo verify`.

All downloads come from the loopback Hub (tests/support/served.py) serving each manifest entry
in its publisher's format; the manifest copy there carries the served files' real hashes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mnaszoo
from mnaszoo.cli.main import main
from mnaszoo.errors import IntegrityError
from mnaszoo.weights.pins import pins_path
from tests.support.publishers import sha256_hex
from tests.support.served import Served, served  # noqa: F401  (the fixture)


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["verify", *args])
    return code, capsys.readouterr().out


def _verify_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code, out = _verify(capsys, *args, "--json")
    return code, json.loads(out)


@pytest.fixture
def no_symlinks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache as on Windows without developer mode: huggingface_hub copies, never links."""
    monkeypatch.setattr(
        "huggingface_hub.file_download.are_symlinks_supported", lambda *args, **kwargs: False
    )


def _no_links(root: Path) -> None:
    assert root.exists() and not any(p.is_symlink() for p in root.rglob("*"))


def test_published_hash_verifies(served: Served, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    mnaszoo.create("mnasnet_small", pretrained=True)
    code, out = _verify(capsys, "mnasnet_small")
    assert code == 0 and "OK" in out and "manifest" in out and "1 of 1 files verified" in out
    code, data = _verify_json(capsys, "mnasnet_small.lamb_in1k")
    files = data["files"]
    assert code == 0 and data["ok"] is True and isinstance(files, list)
    assert files[0]["sha256"] == sha256_hex(served.files["mnasnet_small.lamb_in1k"])


def test_torchvision_file_is_pinned_on_first_use(
    served: Served,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = mnaszoo.create("mnasnet1_0", pretrained=True)
    full = sha256_hex(served.files["mnasnet_b1.tv_in1k"])
    pins = json.loads(pins_path().read_text())["pins"]
    assert list(pins.values()) == [full]
    assert model.provenance is not None and list(model.provenance["files"].values()) == [full]
    code, out = _verify(capsys, "MNASNet1_0_Weights.IMAGENET1K_V1")
    assert code == 0 and "trust-on-first-use" in out
    # The cached file is damaged later: verify says so, and loading replaces it by a good copy.
    cached = Path(json.loads(_verify(capsys, "mnasnet1_0", "--json")[1])["files"][0]["file"])
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    cached.write_bytes(bytes(data))
    code, out = _verify(capsys, "mnasnet1_0")
    assert code == 1 and "MISMATCH" in out and "FAILED: 1 of 1" in out
    mnaszoo.create("mnasnet1_0", pretrained=True)
    assert _verify(capsys, "mnasnet1_0")[0] == 0


def test_a_changed_file_is_refused_against_its_pin(served: Served) -> None:  # noqa: F811
    record = mnaszoo.get_weights("mnasnet_b1_050.tv_in1k")
    pins_path().parent.mkdir(parents=True, exist_ok=True)
    from mnaszoo.weights.resolve import pin_key

    # As if the first download here had been another file with the same sha256 prefix.
    pins_path().write_text(json.dumps({"pins": {pin_key(record): "0" * 64}}))
    with pytest.raises(IntegrityError):
        mnaszoo.create("mnasnet_b1_050", pretrained="tv_in1k")


def test_hub_file_without_a_published_hash_on_a_cache_without_symlinks(
    served: Served,  # noqa: F811
    no_symlinks: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = mnaszoo.create("semnasnet_075", pretrained=True)  # sha256 null in the manifest
    _no_links(served.env.cache_dir)
    assert model.weights_info is not None and model.weights_info.tofu
    full = sha256_hex(served.files["mnasnet_a1_075.rmsp_in1k"])
    assert full in json.loads(pins_path().read_text())["pins"].values()
    # Offline, with no symlink to read a hash from, the pin verifies the copy.
    served.env.set_offline()
    again = mnaszoo.create("semnasnet_075", pretrained=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    code, out = _verify(capsys, "mnasnet_a1_075.rmsp_in1k")
    assert code == 0 and "trust-on-first-use" in out
    # A published hash needs no pin and no symlink either.
    served.env.set_offline(False)
    mnaszoo.create("mnasnet_small", pretrained=True)
    _no_links(served.env.cache_dir)
    assert _verify(capsys, "mnasnet_small")[0] == 0


def test_local_dir_download(
    served: Served,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from huggingface_hub import hf_hub_download

    record = mnaszoo.get_weights("mnasnet_a1.rmsp_in1k")
    source = record.source
    assert isinstance(source, mnaszoo.weights.manifest.HubSource)
    folder = tmp_path / "semnasnet"
    hf_hub_download(source.repo_id, source.filename, revision=source.revision, local_dir=folder)
    code, data = _verify_json(capsys, str(folder))
    files = data["files"]
    assert code == 0 and isinstance(files, list) and len(files) == 1
    assert files[0]["what"] == "mnasnet_a1.rmsp_in1k" and files[0]["pinned_by"] == "manifest"
    weights = folder / source.filename
    assert _verify(capsys, str(weights))[0] == 0
    # The same file against a pin of the user's own; then an unknown file.
    assert _verify(capsys, str(weights), "--sha256", "0" * 64)[0] == 1
    assert _verify(capsys, str(weights), "--sha256", sha256_hex(weights.read_bytes()))[0] == 0
    (folder / "other.pth").write_bytes(b"not weights anyone pinned")
    code, out = _verify(capsys, str(folder))
    assert code == 1 and "UNPINNED" in out and "other.pth" in out


def test_saved_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = mnaszoo.create("mnasnet_small", num_classes=2)
    folder = mnaszoo.save_pretrained(model, tmp_path / "saved", labels=["a", "b"])
    code, data = _verify_json(capsys, str(folder))
    files = data["files"]
    assert code == 0 and isinstance(files, list)
    assert sorted(Path(f["file"]).name for f in files) == [
        "README.md",
        "architecture.svg",
        "model.safetensors",
    ]
    (folder / "notes.txt").write_text("mine")  # not part of the checkpoint: listed, not failing
    code, out = _verify(capsys, str(folder))
    assert code == 0 and "EXTRA" in out
    (folder / "README.md").write_text("edited")
    code, out = _verify(capsys, str(folder))
    assert code == 1 and "MISMATCH" in out and "README.md" in out
    (folder / "model.safetensors").unlink()
    code, out = _verify(capsys, str(folder))
    assert code == 1 and "MISSING" in out


def test_never_downloaded_is_missing(served: Served, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    code, out = _verify(capsys, "mnasnet_b1_130.tv_in1k")
    assert code == 1 and "MISSING" in out


def test_bad_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(tmp_path / "nope" / "x")]) != 0
    assert main(["verify", str(tmp_path), "--sha256", "0" * 64]) != 0
    assert main(["verify", "not_a_model"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "does not exist" in err


def test_download_takes_peer_names(served: Served, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["download", "mnasnet1_0", "semnasnet_075.rmsp_in1k"]) == 0
    ids = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert ids == ["mnasnet_b1.tv_in1k", "mnasnet_a1_075.rmsp_in1k"]
    assert _verify(capsys, "mnasnet1_0")[0] == 0 and _verify(capsys, "semnasnet_075")[0] == 0
