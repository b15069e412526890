"""A loopback Hub/URL server serving every manifest entry in its publisher's file format.

Use the ``served`` fixture (import it into a test module): it starts :class:`HubServer`, points
``huggingface_hub`` at it, writes a copy of ``weights_manifest.json`` whose hashes and URLs match
the served files (the files are synthetic: see :mod:`tests.support.publishers`), and sets
``MNASZOO_MANIFEST`` and ``MNASZOO_CACHE`` for the test.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .hub_env import HubEnv, fast_retries, hf_hub_environment
from .hub_server import HubServer
from .publishers import load_case, publisher_bytes, sha256_hex

MANIFEST = json.loads((Path(__file__).parents[2] / "weights_manifest.json").read_text())
FIXTURE_OF = {
    "mnasnet_a1.rmsp_in1k": "timm_semnasnet_100",
    "mnasnet_a1_075.rmsp_in1k": "timm_semnasnet_075",
    "mnasnet_b1.rmsp_in1k": "timm_mnasnet_100",
    "mnasnet_small.lamb_in1k": "timm_mnasnet_small",
    "mnasnet_b1_050.tv_in1k": "torchvision_mnasnet0_5",
    "mnasnet_b1_075.tv_in1k": "torchvision_mnasnet0_75",
    "mnasnet_b1.tv_in1k": "torchvision_mnasnet1_0",
    "mnasnet_b1_130.tv_in1k": "torchvision_mnasnet1_3",
}


@dataclass
class Served:
    """The loopback server, the hf environment and the served files per weights id."""

    env: HubEnv
    server: HubServer
    files: dict[str, bytes]
    cache: Path


def _filename(entry: dict[str, Any]) -> str:
    source = entry["source"]
    return source["filename"] if source["type"] == "hub" else source["url"].rsplit("/", 1)[1]


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    fast_retries(monkeypatch)
    with (
        HubServer() as server,
        hf_hub_environment(server, tmp_path / "hf", monkeypatch=monkeypatch) as env,
    ):
        manifest = copy.deepcopy(MANIFEST)
        files: dict[str, bytes] = {}
        for entry in manifest["weights"]:
            data = publisher_bytes(load_case(FIXTURE_OF[entry["id"]]), _filename(entry))
            files[entry["id"]] = data
            source = entry["source"]
            if source["type"] == "hub":
                server.add_hub_file(
                    source["repo_id"], source["filename"], data, revision=source["revision"]
                )
                if entry["sha256"] is not None:  # the real hash is of the real file
                    entry["sha256"] = sha256_hex(data)
            else:
                path = urlsplit(source["url"]).path
                source["url"] = server.add_url(path, data)
                entry["sha256_prefix"] = sha256_hex(data)[: len(entry["sha256_prefix"])]
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps(manifest))
        monkeypatch.setenv("MNASZOO_MANIFEST", str(path))
        monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path / "mnaszoo-cache"))
        yield Served(env=env, server=server, files=files, cache=tmp_path / "mnaszoo-cache")
