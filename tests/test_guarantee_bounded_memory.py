"""Bounded memory.

Memory is measured in fresh subprocesses with ``resource.getrusage`` (peak resident set size);
the tests compare two such figures measured side by side, never absolute timings.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mnaszoo
from mnaszoo.cli.main import main
from mnaszoo.data.transforms import MAX_ASPECT_RATIO, MAX_INPUT_SIZE
from mnaszoo.errors import InvalidArgumentError, InvalidImageError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model() -> mnaszoo.MnasNet:
    torch.manual_seed(0)
    return mnaszoo.create("mnasnet_small", num_classes=3).eval()


def test_a_thin_strip_is_refused_before_it_is_resized(
    tmp_path: Path, model: mnaszoo.MnasNet
) -> None:
    strip = tmp_path / "strip.png"
    Image.new("RGB", (10_000, 1), "white").save(strip)  # a few hundred bytes on disk
    assert strip.stat().st_size < 1000
    with pytest.raises(InvalidImageError, match=r"strip\.png.*10000x1 pixels.*aspect ratio"):
        mnaszoo.predict([strip], model, topk=1)
    with pytest.raises(InvalidImageError, match=f"above {MAX_ASPECT_RATIO}:1"):
        mnaszoo.make_transform(None)(np.zeros((1, 40_000, 3), dtype=np.uint8))
    # The limit, and below it, still work.
    wide = np.zeros((4, 4 * MAX_ASPECT_RATIO, 3), dtype=np.uint8)
    assert mnaszoo.make_transform(None, input_size=32)(wide).shape == (3, 32, 32)


def test_input_size_has_an_upper_bound(
    model: mnaszoo.MnasNet, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgumentError, match=f"input_size must be <= {MAX_INPUT_SIZE}"):
        mnaszoo.make_transform(None, input_size=100_000)
    with pytest.raises(InvalidArgumentError, match="input_size"):
        mnaszoo.predict(np.zeros((8, 8, 3), dtype=np.uint8), model, topk=1, input_size=100_000)
    image = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(image)
    checkpoint = mnaszoo.save_pretrained(model, tmp_path / "ckpt")
    code = main(["predict", str(image), "-c", str(checkpoint), "-k", "1", "--input-size", "100000"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and f"<= {MAX_INPUT_SIZE}" in err


_PEAK = textwrap.dedent(
    """
    import resource, sys
    import torch, mnaszoo
    count, path = int(sys.argv[1]), sys.argv[2]
    torch.manual_seed(0)
    model = mnaszoo.create("mnasnet_small", num_classes=3).eval()
    result = mnaszoo.predict([path] * count, model, topk=1, backend="torch")
    assert len(result) == count
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def _peak_kib(count: int, path: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(count), str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return int(done.stdout.split()[-1])


@pytest.mark.slow
def test_predict_memory_does_not_grow_with_the_number_of_images(tmp_path: Path) -> None:
    photo = tmp_path / "large.png"
    side = 1600  # 7.3 MiB decoded; 16 of them held at once would be 117 MiB
    Image.fromarray(np.full((side, side, 3), 90, dtype=np.uint8)).save(photo)
    one = _peak_kib(1, photo)
    many = _peak_kib(16, photo)
    decoded_kib = side * side * 3 // 1024
    # Decoding per batch: at most a few images' worth more, not 16 of them.
    assert many - one < 5 * decoded_kib, f"peak RSS {one} KiB for 1 image, {many} KiB for 16"
