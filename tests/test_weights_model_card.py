"""The model card save_pretrained and push_to_hub write: Hub metadata, usage, provenance."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results

import mnaszoo
from tests.support.publishers import sha256_hex
from tests.support.served import Served, served  # noqa: F401  (the fixture)


def _card(folder: Path) -> ModelCard:
    return ModelCard.load(folder / "README.md")


def _run_usage(folder: Path) -> str:
    text = (folder / "README.md").read_text("utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), "README.md", "exec"), {})  # the snippet, as a user runs it
    return out.getvalue()


def test_card_of_published_weights(served: Served, tmp_path: Path) -> None:  # noqa: F811
    model = mnaszoo.create("semnasnet_100", pretrained=True)
    folder = mnaszoo.save_pretrained(model, tmp_path / "a1")
    card = _card(folder)
    data = card.data
    assert (data.library_name, data.license, data.pipeline_tag) == (
        "mnaszoo",
        "apache-2.0",
        "image-classification",
    )
    assert data.datasets == ["imagenet-1k"]
    assert data.base_model == "timm/semnasnet_100.rmsp_in1k"
    assert {"image-classification", "mnasnet", "mnaszoo"} <= set(data.tags)
    # huggingface_hub's own parsers and checks accept the metadata as the Hub reads it.
    name, results = model_index_to_eval_results(data.to_dict()["model-index"])
    assert name == "a1"
    top1 = {(r.dataset_type, r.metric_name): r.metric_value for r in results}
    assert top1[("imagenet-1k", "Top-1 accuracy")] == 75.452
    assert top1[("imagenet-real", "Top-1 accuracy")] == 82.264
    ModelCardData(**data.to_dict())  # re-validates eval results and model name
    text = card.text
    record = model.weights_info
    assert record is not None
    served_sha = sha256_hex(served.files[record.id])
    assert f"`pytorch_model.bin`: sha256 `{served_sha}`" in text
    assert "`timm/semnasnet_100.rmsp_in1k`" in text and record.source.revision in text  # type: ignore[union-attr]
    assert "timm's state-dict keys renamed" in text and "mnaszoo 0.1.0" in text
    assert (folder / "architecture.svg").read_text().startswith("<svg")
    assert "| Resize (shorter side) | 256 (bicubic) |" in text
    printed = _run_usage(folder)
    assert len(printed.strip().splitlines()) == 3  # three guesses, with ImageNet labels


def test_torchvision_weights_card(served: Served, tmp_path: Path) -> None:  # noqa: F811
    model = mnaszoo.create("mnasnet1_0", pretrained=True)
    data = _card(mnaszoo.save_pretrained(model, tmp_path / "tv")).data
    assert data.license == "bsd-3-clause" and data.base_model is None  # a URL, not a Hub repo
    text = (tmp_path / "tv" / "README.md").read_text()
    # (the loopback server stands in for download.pytorch.org)
    assert "/models/mnasnet1.0_top1_73.512-f206786ef8.pth`" in text
    assert "| Resize (shorter side) | 256 (bilinear) |" in text


def test_fine_tuned_weights_claim_no_published_results(
    served: Served,  # noqa: F811
    tmp_path: Path,
) -> None:
    model = mnaszoo.create("mnasnet_small", pretrained=True)
    with torch.no_grad():
        model.classifier.bias.add_(1.0)  # any change to the weights
    card = _card(mnaszoo.save_pretrained(model, tmp_path / "ft"))
    assert card.data.eval_results is None and "## Results" not in card.text
    assert "changed since loading" in card.text


def test_user_card_is_kept_unless_overwrite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = mnaszoo.create("mnasnet_small", num_classes=2)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("# My own card\n")
    with caplog.at_level(logging.WARNING):
        mnaszoo.save_pretrained(model, folder, labels=["cat", "dog"])
    assert (folder / "README.md").read_text() == "# My own card\n"
    assert "it is kept" in caplog.text
    mnaszoo.save_pretrained(model, folder, labels=["cat", "dog"], overwrite=True)
    assert _card(folder).data.library_name == "mnaszoo"
    # mnaszoo's own, unedited card is refreshed; once edited, it is the user's.
    mnaszoo.save_pretrained(model, folder, labels=["cat", "dog"])
    edited = (folder / "README.md").read_text() + "\nMy notes.\n"
    (folder / "README.md").write_text(edited)
    mnaszoo.save_pretrained(model, folder, labels=["cat", "dog"])
    assert (folder / "README.md").read_text() == edited
    assert mnaszoo.from_pretrained(folder).num_classes == 2


def test_usage_snippet_runs_for_a_local_folder(tmp_path: Path) -> None:
    model = mnaszoo.create("mnasnet_small", num_classes=3)
    folder = mnaszoo.save_pretrained(model, tmp_path / "local", labels=["ant", "bee", "cat"])
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        printed = _run_usage(folder)
    finally:
        os.chdir(cwd)
    assert {line.split()[0] for line in printed.splitlines()} == {"ant", "bee", "cat"}


def test_method_forms(served: Served, tmp_path: Path) -> None:  # noqa: F811
    model = mnaszoo.create("mnasnet_small", pretrained=True)
    path = model.save_pretrained(tmp_path / "m")
    loaded = mnaszoo.MnasNet.from_pretrained(path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert loaded.provenance is not None
    assert loaded.provenance["origin"]["weights_id"] == "mnasnet_small.lamb_in1k"
