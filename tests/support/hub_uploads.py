"""Uploads on the loopback Hub: the three requests ``HfApi.create_repo`` and ``upload_folder``
make when every file is committed inline (no Git-LFS transfer).

* ``POST /api/repos/create`` (``{"name", "organization", "type", "visibility"}``): creates the repo
  (an empty one with no commit), answers ``{"url": ...}``; 409 when it exists (huggingface_hub
  then carries on with ``exist_ok=True``).
* ``POST /api/models/<repo>/preupload/<revision>``: answers ``uploadMode: "regular"`` for every
  file, so huggingface_hub sends the contents inside the commit itself.
* ``POST /api/validate-yaml``: the README metadata check upload_folder makes first (see
  :func:`_validate_yaml`).
* ``POST /api/models/<repo>/commit/<revision>``: the NDJSON commit (a ``header`` line, then one
  ``file`` line per file with base64 content); its files become a new commit of the branch,
  served like any other (``HubServer.add_hub_file``), and the answer carries its id and URL.

Only what those calls need is implemented; anything else is a 4xx, never a fake success.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from .hub_server import HubServer

__all__ = ["handle_post"]


def _repo_and_rest(path: str, action: str) -> tuple[str, str] | None:
    # /api/models/<owner>/<name>/<action>/<revision>
    prefix = "/api/models/"
    if not path.startswith(prefix) or f"/{action}/" not in path:
        return None
    repo, _, revision = path[len(prefix) :].partition(f"/{action}/")
    return unquote(repo), unquote(revision)


def handle_post(
    server: HubServer, path: str, body: bytes, auth: str | None
) -> tuple[int, dict[str, Any]]:
    """Answer an upload request: (status, JSON payload)."""
    if path == "/api/repos/create":
        request = json.loads(body or b"{}")
        name = request.get("name", "")
        owner = request.get("organization")
        repo_id = f"{owner}/{name}" if owner else name
        if "/" not in repo_id:
            return 400, {"error": "repo name must be owner/name"}
        token = auth[len("Bearer ") :] if auth and auth.startswith("Bearer ") else None
        created = server.create_empty_repo(
            # huggingface_hub >= 1 sends "visibility"; older versions "private".
            repo_id,
            private=request.get("visibility") == "private" or request.get("private") is True,
            token=token,
        )
        if not created:
            return 409, {
                "error": "You already created this model repo",
                "url": f"{server.url}/{repo_id}",
            }
        return 200, {"url": f"{server.url}/{repo_id}", "name": repo_id}
    found = _repo_and_rest(path, "preupload")
    if found is not None:
        request = json.loads(body or b"{}")
        files = [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
            for f in request.get("files", [])
        ]
        return 200, {"files": files, "commitOid": None}
    found = _repo_and_rest(path, "commit")
    if found is not None:
        repo_id, branch = found
        files: dict[str, bytes] = {}
        message = ""
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item["key"] == "header":
                message = item["value"].get("summary", "")
            elif item["key"] == "file" and item["value"].get("encoding") == "base64":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            else:
                return 422, {"error": f"unsupported commit operation {item['key']!r}"}
        if not files:
            return 422, {"error": "empty commit"}
        seed = json.dumps([repo_id, message, sorted(files)]).encode()
        commit = hashlib.sha1(seed + str(server.commit_count()).encode()).hexdigest()
        for name, data in sorted(files.items()):
            # Large binary files are stored as LFS, as the Hub does for these extensions.
            lfs = name.endswith((".safetensors", ".bin", ".pth", ".pt"))
            server.add_hub_file(repo_id, name, data, commit, lfs=lfs, branch=branch)
        url = f"{server.url}/{repo_id}/commit/{commit}"
        return 200, {"commitUrl": url, "commitOid": commit, "success": True}
    if path == "/api/validate-yaml":
        return _validate_yaml(json.loads(body or b"{}").get("content", ""))
    return 404, {"error": f"unsupported upload request {path}"}


def _validate_yaml(content: str) -> tuple[int, dict[str, Any]]:
    """The README's metadata check before an upload. The Hub's own validator is not public; this
    one applies huggingface_hub's client-side parsing and checks of card metadata (the YAML
    block, ``ModelCardData``'s validation, the ``model-index`` parser), and answers in the Hub's
    format (400 with ``errors``)."""
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.repocard_data import model_index_to_eval_results

    try:
        data = ModelCard(content, ignore_metadata_errors=False).data.to_dict()
        ModelCardData(**data)
        if "model-index" in data:
            model_index_to_eval_results(data["model-index"])
    except Exception as error:  # any failure is the card's problem, reported as the Hub does
        return 400, {"errors": [{"message": f"{type(error).__name__}: {error}"}]}
    warnings = [] if data else [{"message": "Empty metadata"}]
    return 200, {"errors": [], "warnings": warnings}
