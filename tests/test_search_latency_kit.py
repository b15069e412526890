"""mnaszoo.search.latency.kit: the input resolution's one spelling, ``input_size``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnaszoo.cli.main import main
from mnaszoo.errors import InvalidArgumentError
from mnaszoo.search.latency.kit import write_latency_kit
from mnaszoo.search.space import SearchSpace

# One choice per decision: the smallest space, so that a kit is a few small files.
TINY = SearchSpace(
    ops=("mb3",), kernels=(3,), se_ratios=(0.0,), skips=(True,), filters=(1.0,), layers=(0,)
)


def test_write_latency_kit_image_size_is_the_old_spelling_of_input_size(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning, match="use input_size="):
        kit = write_latency_kit(
            tmp_path / "kit", space=TINY, image_size=32, num_classes=4, calibration=3
        )
    manifest = json.loads((kit / "manifest.json").read_text())
    # The manifest keeps the key it has always had, so that older readers still read it.
    assert manifest["kit"]["image_size"] == 32
    assert {tuple(n["input_shape"]) for n in manifest["calibration"]} == {(1, 3, 32, 32)}
    with pytest.raises(InvalidArgumentError, match="give input_size= only"):
        write_latency_kit(tmp_path / "other", space=TINY, input_size=32, image_size=32)
    assert not (tmp_path / "other").exists()


def test_cli_latency_kit_image_size_is_the_old_spelling_of_input_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Below the 16 pixels a kit takes: refused under the new name, so the value went through.
    with pytest.warns(FutureWarning, match="--image-size is deprecated.*use --input-size"):
        assert main(["latency-kit", str(tmp_path / "kit"), "--image-size", "8"]) == 1
    assert "--input-size must be >= 16, got 8" in capsys.readouterr().err
    assert (
        main(["latency-kit", str(tmp_path / "kit"), "--input-size", "32", "--image-size", "32"])
        == 2
    )
    assert "give --input-size only" in capsys.readouterr().err
    assert not (tmp_path / "kit").exists()
