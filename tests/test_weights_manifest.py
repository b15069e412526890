"""The shipped weights manifest and its validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import mnaszoo
from mnaszoo.errors import ManifestError, UnknownWeightsError
from mnaszoo.weights.manifest import HubSource, UrlSource, get_weights, list_weights, parse_manifest

ROOT_MANIFEST = Path(__file__).parents[1] / "weights_manifest.json"
DATA: dict[str, Any] = json.loads(ROOT_MANIFEST.read_text())

# The checkpoints the weights issue lists, and the facts of mnasnet-reference.md section 7.
EXPECTED_SOURCES = {
    "mnasnet_a1.rmsp_in1k": "timm/semnasnet_100.rmsp_in1k",
    "mnasnet_a1_075.rmsp_in1k": "timm/semnasnet_075.rmsp_in1k",
    "mnasnet_b1.rmsp_in1k": "timm/mnasnet_100.rmsp_in1k",
    "mnasnet_small.lamb_in1k": "timm/mnasnet_small.lamb_in1k",
    "mnasnet_b1_050.tv_in1k": "https://download.pytorch.org/models/mnasnet0.5_top1_67.823-3ffadce67e.pth",
    "mnasnet_b1_075.tv_in1k": "https://download.pytorch.org/models/mnasnet0_75-7090bc5f.pth",
    "mnasnet_b1.tv_in1k": "https://download.pytorch.org/models/mnasnet1.0_top1_73.512-f206786ef8.pth",
    "mnasnet_b1_130.tv_in1k": "https://download.pytorch.org/models/mnasnet1_3-a4c69d6f.pth",
}


def test_packaged_manifest_is_the_root_file() -> None:
    from importlib import resources

    packaged = (
        resources.files("mnaszoo.weights").joinpath("weights_manifest.json").read_text("utf-8")
    )
    assert packaged == ROOT_MANIFEST.read_text()


def test_every_listed_checkpoint_is_present() -> None:
    assert list_weights() == sorted(EXPECTED_SOURCES)
    for weights_id, location in EXPECTED_SOURCES.items():
        source = get_weights(weights_id).source
        assert (source.repo_id if isinstance(source, HubSource) else str(source)) == location


@pytest.mark.parametrize("weights_id", sorted(EXPECTED_SOURCES))
def test_entry_builds_with_its_num_params(weights_id: str) -> None:
    record = get_weights(weights_id)
    model = mnaszoo.create(record.model, num_classes=record.num_classes)
    assert sum(p.numel() for p in model.parameters()) == record.num_params


@pytest.mark.parametrize("weights_id", sorted(EXPECTED_SOURCES))
def test_entry_is_pinned(weights_id: str) -> None:
    record = get_weights(weights_id)
    if isinstance(record.source, UrlSource):
        # torch.hub's convention: the hex after the last '-' is a prefix of the file's sha256.
        assert record.sha256_prefix is not None
        assert record.source.url.rsplit("-", 1)[1].startswith(record.sha256_prefix + ".")
    else:
        assert len(record.source.revision) == 40
    # Every entry says where its full sha256 is published, or that it is pinned on first use.
    assert record.sha256_source is not None
    if record.sha256 is None:
        assert record.tofu and record.sha256_source.startswith("trust-on-first-use: ")
    else:
        assert record.sha256_source.startswith("Hugging Face Hub, Git LFS details of ")
        assert isinstance(record.source, HubSource)
        assert record.source.repo_id in record.sha256_source
        assert record.source.filename in record.sha256_source


def test_published_hashes_are_the_hubs() -> None:
    # The full sha256 of each Hub file, as the Hub's Git LFS details pages state them.
    assert {r.id: r.sha256 for r in (get_weights(w) for w in list_weights()) if r.sha256} == {
        "mnasnet_a1.rmsp_in1k": (
            "e5a652fdfc3c7e57ffe5b51ccc645228e87633c87b10e370f50b01286df25b26"
        ),
        "mnasnet_b1.rmsp_in1k": (
            "1aa3073ccc4a5d0d86bd80134fae05896b7f5561e8fc0d2d90b9a0d10bbf3c0f"
        ),
        "mnasnet_small.lamb_in1k": (
            "ada9e8edd9ae61ed43b30e03b6602fb0ae392a9ba91f01356943b4fa9dbd08f4"
        ),
    }


def test_defaults_are_the_best_top1() -> None:
    assert get_weights("mnasnet_b1").id == "mnasnet_b1.rmsp_in1k"  # 74.672 > torchvision 73.456
    assert get_weights("mnasnet_b1", "tv_in1k").top1 == 73.456
    assert get_weights("mnasnet_a1").preprocessing.resize == 256  # floor(224 / 0.875)
    assert get_weights("mnasnet_b1_130").preprocessing.resize == 232


def test_unknown_weights() -> None:
    with pytest.raises(UnknownWeightsError, match=r"'mnasnet_d1' has no published weights"):
        get_weights("mnasnet_d1")
    with pytest.raises(UnknownWeightsError, match=r"Weights for 'mnasnet_b1': mnasnet_b1\.rmsp"):
        get_weights("mnasnet_b1", "imagenet")
    with pytest.raises(UnknownWeightsError):
        mnaszoo.create("mnasnet_d1", pretrained=True)


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(DATA)
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["weights", 0, "sha256"], "E5A6", "'mnasnet_a1.rmsp_in1k': field 'sha256' must be 64"),
        (["weights", 0, "source", "revision"], "main", "field 'revision' must be a 40-hex"),
        (["weights", 0, "id"], "mnasnet_c1.rmsp_in1k", "must be '<registered model>.<tag>'"),
        (["weights", 1, "num_classes"], "1000", "field 'num_classes' must be int, got '1000'"),
        (["weights", 1, "layout"], "keras", "field 'layout' must be one of"),
        (["weights", 2, "extra"], 1, "has unknown fields ['extra']"),
        (["weights", 2, "license"], KeyError, "lacks the field 'license'"),
        (["weights", 4, "sha256_prefix"], None, "a URL source needs 'sha256' or 'sha256_prefix'"),
        (["weights", 4, "preprocessing", "crop_pct"], 0.9, "exactly one of 'crop_pct'"),
        (["weights", 4, "preprocessing", "interpolation"], "nearest", "'interpolation' must be"),
        (["weights", 3, "labels"], "coco", "unknown label set 'coco'"),
        (["format_version"], 2, "unsupported format_version 2"),
    ],
)
def test_validation_names_entry_and_field(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(_broken(path, value), "test.json")
    assert message in str(info.value)


def test_duplicate_ids_are_rejected() -> None:
    data = copy.deepcopy(DATA)
    data["weights"].append(copy.deepcopy(data["weights"][0]))
    with pytest.raises(ManifestError, match=r"duplicate weights id 'mnasnet_a1\.rmsp_in1k'"):
        parse_manifest(data, "test.json")


def test_manifest_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = copy.deepcopy(DATA)
    data["weights"] = data["weights"][:1]
    path = tmp_path / "mirror.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("MNASZOO_MANIFEST", str(path))
    assert list_weights() == ["mnasnet_a1.rmsp_in1k"]
    path.with_name("bad.json").write_text("{")
    monkeypatch.setenv("MNASZOO_MANIFEST", str(path.with_name("bad.json")))
    with pytest.raises(ManifestError, match="is not valid JSON"):
        list_weights()
