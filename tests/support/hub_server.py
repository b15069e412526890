"""A real local HTTP server speaking the Hugging Face Hub download protocol, for tests.

`HubServer` runs two stdlib ``ThreadingHTTPServer`` instances on ``127.0.0.1`` (ephemeral ports)
in background threads:

* the **hub** (``server.url``), to be used as ``HF_ENDPOINT``. It serves

  - ``HEAD|GET /[datasets/|spaces/]<repo_id>/resolve/<revision>/<filename>`` (``revision`` is a
    40-hex commit or a branch name, URL-quoted like ``huggingface_hub`` does);
  - ``GET /api/{models,datasets,spaces}/<repo_id>[/revision/<rev>]`` (repo info, enough for
    ``HfApi.model_info``) and ``GET /api/.../<repo_id>/tree/<rev>[/<path>]`` (tree listing,
    enough for ``snapshot_download``);
  - plain files registered with `HubServer.add_url` (like ``download.pytorch.org``).

* the **CDN** (``server.cdn_url``), a *different origin* (other port). As on the real Hub, a
  resolve request for an LFS file is answered with ``302`` to the CDN while the 302 response
  itself carries ``X-Repo-Commit``, ``X-Linked-Etag`` (sha256) and ``X-Linked-Size``.
  ``huggingface_hub`` 2.4.0 only follows HEAD redirects that stay on the same origin (or a known
  Hub origin), so it reads the metadata from the 302 and then GETs the CDN URL (without the
  ``Authorization`` header). Pass ``lfs_redirect="direct"`` to serve LFS bytes from the resolve
  URL itself instead (still with the ``X-Linked-*`` headers).

What the server never sends: ``X-Xet-Hash``, ``X-Xet-Refresh-Route`` or a ``Link: <...>;
rel="xet-auth"`` header. With any of those (and ``hf_xet`` installed, as it is here) the client
would switch to the Xet protocol, which this server does not implement.

Fault injection (`fail_next`, `fail_always`, `corrupt`, `truncate`, `slow`) is keyed by a
*target* string that matches a request when it equals one of the request's names:

* the decoded URL path without query, e.g. ``"/org/repo/resolve/main/w.pth"`` or ``"/w/x.pth"``;
* for Hub file requests (resolve URL or its CDN URL): the repo filename (``"w.pth"``),
  ``"<repo_id>/<filename>"`` and ``"<repo_id>"``;
* for ``/api/`` requests about a repo: ``"<repo_id>"``;
* for CDN requests also the blob's sha256.

Every request is appended to `HubServer.requests` (thread-safe) with its final status, so tests
can assert exactly what went over the wire (e.g. nothing at all on a cached load).

Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = [
    "HubFile",
    "HubServer",
    "RecordedRequest",
    "git_blob_sha1",
    "lfs_pointer",
    "sha256_hex",
]

RepoType = Literal["model", "dataset", "space"]
Role = Literal["hub", "cdn"]
LfsRedirect = Literal["cdn", "direct"]

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_URL_PREFIX: dict[str, str] = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_PREFIX_TO_TYPE: dict[str, RepoType] = {"datasets": "dataset", "spaces": "space"}
_API_PLURAL_TO_TYPE: dict[str, RepoType] = {
    "models": "model",
    "datasets": "dataset",
    "spaces": "space",
}
_RANGE_RE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)

# Default `X-Error-Message` values, as sent by huggingface.co.
_DEFAULT_ERROR_MESSAGES: dict[str, str] = {
    "EntryNotFound": "Entry not found",
    "RepoNotFound": "Repository not found",
    "RevisionNotFound": "Invalid rev id",
    "GatedRepo": (
        "Access to this repo is restricted. You must have access to it and be authenticated "
        "to access it. Please log in."
    ),
}


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex sha256 of ``data`` (the Hub's ETag for LFS files)."""
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    """Return the git blob object id of ``data`` (the Hub's ETag for non-LFS files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    """Return the git-lfs pointer file that git stores in place of an LFS file."""
    return (
        b"version https://git-lfs.github.com/spec/v1\n"
        + f"oid sha256:{sha256_hex(data)}\nsize {len(data)}\n".encode()
    )


@dataclass(frozen=True)
class HubFile:
    """A file stored in a fake Hub repo at one commit."""

    repo_type: RepoType
    repo_id: str
    filename: str
    data: bytes
    lfs: bool

    @property
    def size(self) -> int:
        """Size of the real content in bytes (``X-Linked-Size`` for LFS files)."""
        return len(self.data)

    @property
    def sha256(self) -> str:
        """sha256 hex digest of the real content."""
        return sha256_hex(self.data)

    @property
    def git_oid(self) -> str:
        """Git blob id of what git stores (the LFS pointer for LFS files)."""
        return git_blob_sha1(lfs_pointer(self.data) if self.lfs else self.data)

    @property
    def etag(self) -> str:
        """Unquoted ETag huggingface_hub will see: sha256 for LFS, git blob sha1 otherwise.

        It is also the name of the blob in the huggingface_hub cache (``blobs/<etag>``).
        """
        return self.sha256 if self.lfs else self.git_oid

    @property
    def pointer_size(self) -> int:
        """Size of the git-lfs pointer file (``pointerSize`` in the API)."""
        return len(lfs_pointer(self.data))


@dataclass(frozen=True)
class RecordedRequest:
    """One request received by the server, as logged in `HubServer.requests`."""

    role: Role
    """``"hub"`` (``HubServer.url``) or ``"cdn"`` (``HubServer.cdn_url``)."""
    method: str
    target: str
    """Raw request target: path plus query string, still URL-quoted."""
    path: str
    """Decoded path, without query string."""
    headers: Mapping[str, str]
    """Request headers, names lower-cased."""
    status: int
    """Status code that was (or started to be) sent back."""
    names: frozenset[str] = frozenset()
    """Targets this request matches (see the module docstring); used by `requests_for`."""


@dataclass(frozen=True)
class _Repo:
    commits: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)


@dataclass
class _Access:
    gated: bool = False
    private: bool = False
    token: str | None = None


@dataclass
class _Rule:
    kind: Literal["status", "corrupt", "truncate", "slow", "hold"]
    target: str
    method: str | None
    remaining: int | None  # None = forever
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    offset: int = 0
    delay: float = 0.0
    event: threading.Event | None = None


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file_body: bool = False  # body is file content: Range, corrupt and truncate apply


@dataclass
class _Routed:
    names: frozenset[str]
    response: _Response
    commit: str | None = None


class _RoleServer(ThreadingHTTPServer):
    """One listening socket (hub or CDN) owned by a `HubServer`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: HubServer, role: Role, host: str) -> None:
        self.owner = owner
        self.role: Role = role
        super().__init__((host, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record unexpected handler exceptions instead of printing them."""
        import sys

        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, (ConnectionError, TimeoutError)):
            self.owner._record_error(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mnaszoo-test-hub/1.0"
    timeout = 30.0  # idle keep-alive connections are dropped after this many seconds
    server: _RoleServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track_connection(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    def do_HEAD(self) -> None:
        self.server.owner._handle(self)

    def _not_allowed(self) -> None:
        self.server.owner._handle_not_allowed(self)

    def do_POST(self) -> None:
        self.server.owner._handle_post(self)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (use `HubServer.requests`)."""


class HubServer:
    """Local fake of huggingface.co (file downloads) plus a plain static file host.

    Starts serving immediately on construction; use as a context manager or call `stop`.

    Args:
        lfs_redirect: ``"cdn"`` (default, like huggingface.co): resolve requests for LFS files
            get ``302`` to ``cdn_url``. ``"direct"``: LFS bytes are served by the resolve URL.
        host: Interface to bind; keep the default ``127.0.0.1``.
    """

    def __init__(self, *, lfs_redirect: LfsRedirect = "cdn", host: str = "127.0.0.1") -> None:
        self.lfs_redirect: LfsRedirect = lfs_redirect
        self._host = host
        self._stopped = False
        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._repos: dict[tuple[RepoType, str], _Repo] = {}
        self._access: dict[tuple[RepoType, str], _Access] = {}
        self._blobs: dict[str, bytes] = {}
        self._urls: dict[str, tuple[bytes, str]] = {}
        self._redirects: dict[str, tuple[str, int]] = {}
        self._rules: list[_Rule] = []
        self._log: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._connections: set[socket.socket] = set()
        self.accept_uploads = False  # POST uploads (tests/support/hub_uploads.py) when True
        self._hub = _RoleServer(self, "hub", host)
        self._cdn = _RoleServer(self, "cdn", host)
        self._threads = [
            threading.Thread(
                target=srv.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"HubServer-{srv.role}",
                daemon=True,
            )
            for srv in (self._hub, self._cdn)
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL of the hub, e.g. ``http://127.0.0.1:PORT`` (use as ``HF_ENDPOINT``)."""
        return f"http://{self._host}:{self._hub.server_port}"

    @property
    def cdn_url(self) -> str:
        """Base URL of the fake CDN that LFS downloads are redirected to (another origin)."""
        return f"http://{self._host}:{self._cdn.server_port}"

    @property
    def running(self) -> bool:
        """Whether the server still accepts connections."""
        return not self._stopped

    def stop(self) -> None:
        """Stop both listeners and drop open (keep-alive) connections. Idempotent.

        After this, connections to `url`/`cdn_url` are refused, so a client that still
        manages to download something must have used its cache.
        """
        if self._stopped:
            return
        self._stopped = True
        self._stop_event.set()  # wakes up handlers sleeping in `slow`
        for srv in (self._hub, self._cdn):
            srv.shutdown()
            srv.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ content

    def add_hub_file(
        self,
        repo_id: str,
        filename: str,
        data: bytes,
        revision: str,
        *,
        lfs: bool = True,
        branch: str | None = "main",
        repo_type: RepoType = "model",
    ) -> HubFile:
        """Add ``filename`` with content ``data`` to ``repo_id`` at commit ``revision``.

        A new commit starts as a copy of the files of ``branch``'s current head (git-like), then
        ``branch`` (unless None) is moved to ``revision``. So both
        ``resolve/<revision>/<filename>`` and ``resolve/<branch>/<filename>`` work.

        Args:
            repo_id: ``"org/name"`` (or a legacy ``"name"``).
            filename: Path inside the repo (``/``-separated).
            data: File content.
            revision: 40-character lowercase hex commit id.
            lfs: Serve as an LFS file (ETag/``X-Linked-Etag`` = sha256, ``X-Linked-Size``, 302
                to the CDN) or as a regular git file (ETag = git blob sha1, served directly).
            branch: Branch to point at ``revision``; None leaves branches untouched.
            repo_type: ``"model"``, ``"dataset"`` or ``"space"``.

        Returns:
            The stored `HubFile` (handy for ``.sha256``, ``.etag``, ``.size``).
        """
        if not _COMMIT_RE.fullmatch(revision):
            raise ValueError(
                f"revision must be a 40-char lowercase hex commit id, got {revision!r}"
            )
        if repo_type not in _URL_PREFIX:
            raise ValueError(f"unsupported repo_type {repo_type!r}")
        hub_file = HubFile(repo_type, repo_id, filename.strip("/"), bytes(data), lfs)
        with self._lock:
            repo = self._repos.setdefault((repo_type, repo_id), _Repo())
            if revision not in repo.commits:
                parent = repo.branches.get(branch) if branch is not None else None
                repo.commits[revision] = dict(repo.commits[parent]) if parent else {}
            repo.commits[revision][hub_file.filename] = hub_file
            if branch is not None:
                repo.branches[branch] = revision
            if lfs:
                self._blobs[hub_file.sha256] = hub_file.data
        return hub_file

    def set_access(
        self,
        repo_id: str,
        *,
        gated: bool = False,
        private: bool = False,
        token: str | None = None,
        repo_type: RepoType = "model",
    ) -> None:
        """Restrict a repo like the Hub does; only ``Authorization: Bearer <token>`` gets in.

        * gated: 401 without credentials, 403 with wrong ones; ``X-Error-Code: GatedRepo``.
        * private: 401 without credentials, 404 with wrong ones; ``X-Error-Code: RepoNotFound``.

        Applies to resolve and ``/api/`` requests, not to the CDN (signed URLs on the real Hub).
        """
        with self._lock:
            self._access[(repo_type, repo_id)] = _Access(gated=gated, private=private, token=token)

    def add_url(
        self, path: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> str:
        """Serve ``data`` with GET/HEAD at ``path`` on the hub origin; return the full URL.

        Responses carry ``Content-Length``, ``ETag`` (quoted md5, S3-style),
        ``Accept-Ranges: bytes`` and honour ``Range: bytes=a-b``.
        """
        path = _normalize_path(path)
        with self._lock:
            self._urls[path] = (bytes(data), content_type)
        return self.url + quote(path)

    def add_redirect(self, path: str, location: str, *, status: int = 302) -> str:
        """Answer GET/HEAD at ``path`` with a redirect to ``location``; return the full URL."""
        path = _normalize_path(path)
        with self._lock:
            self._redirects[path] = (location, status)
        return self.url + quote(path)

    def url_for(self, path: str) -> str:
        """Full URL of a plain path on the hub origin."""
        return self.url + quote(_normalize_path(path))

    def resolve_url(
        self, repo_id: str, filename: str, revision: str = "main", *, repo_type: RepoType = "model"
    ) -> str:
        """The ``/resolve/`` URL huggingface_hub builds for this file (``hf_hub_url``)."""
        return (
            f"{self.url}/{_URL_PREFIX[repo_type]}{repo_id}/resolve/"
            f"{quote(revision, safe='')}/{quote(filename)}"
        )

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        target: str,
        status: int,
        times: int | None = 1,
        *,
        method: str | None = None,
        error_code: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (None = forever).

        Args:
            target: See the module docstring (path, filename, ``repo_id/filename``, repo_id).
            status: HTTP status to send, e.g. 500, 404, 401, 403.
            times: How many matching requests fail; None means every one (`fail_always`).
            method: Only match this method (``"HEAD"``/``"GET"``); None matches both.
            error_code: ``X-Error-Code`` header huggingface_hub maps to exceptions:
                ``EntryNotFound``, ``RepoNotFound``, ``RevisionNotFound``, ``GatedRepo``.
                ``EntryNotFound`` responses also carry ``X-Repo-Commit`` like the Hub.
            message: ``X-Error-Message`` and JSON ``{"error": ...}`` body; defaults to the
                Hub's message for ``error_code``.
            headers: Extra response headers (e.g. ``{"Retry-After": "0"}``).
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        rule = _Rule(
            kind="status",
            target=target,
            method=method.upper() if method else None,
            remaining=times,
            status=status,
            headers=dict(headers or {}),
            message=message,
        )
        if error_code is not None:
            rule.headers["X-Error-Code"] = error_code
            rule.message = message or _DEFAULT_ERROR_MESSAGES.get(error_code, error_code)
        with self._lock:
            self._rules.append(rule)

    def fail_always(
        self,
        target: str,
        status: int,
        *,
        method: str | None = None,
        error_code: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Permanently answer matching requests with ``status`` (see `fail_next`)."""
        self.fail_next(
            target,
            status,
            None,
            method=method,
            error_code=error_code,
            message=message,
            headers=headers,
        )

    def corrupt(self, target: str, *, times: int | None = None) -> None:
        """Serve flipped content for matching file bodies, keeping size, ETag and sha headers.

        The byte at offset ``size // 2`` is XOR-ed with 0xFF, so only a content hash check can
        notice. Only responses that carry file bytes (GET 200/206) count towards ``times``.
        """
        with self._lock:
            self._rules.append(_Rule("corrupt", target, None, times))

    def truncate(self, target: str, n: int, *, times: int | None = None) -> None:
        """Advertise the full ``Content-Length`` but drop the connection at file offset ``n``.

        ``n`` is an absolute offset in the file: a resumed request (``Range: bytes=k-``) with
        ``k >= n`` gets its headers and then nothing. Only file-body responses count.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._rules.append(_Rule("truncate", target, None, times, offset=n))

    def slow(
        self, target: str, delay: float, *, times: int | None = None, method: str | None = None
    ) -> None:
        """Wait ``delay`` seconds before answering matching requests (interrupted by `stop`)."""
        with self._lock:
            self._rules.append(
                _Rule("slow", target, method.upper() if method else None, times, delay=delay)
            )

    def hold(
        self,
        target: str,
        *,
        method: str | None = None,
        times: int | None = None,
        timeout: float = 30.0,
    ) -> threading.Event:
        """Park matching requests until the returned event is set (or ``timeout``, or `stop`).

        Lets a test line up concurrent clients deterministically, e.g. hold the CDN GET until
        every process has made its HEAD request, then ``event.set()``.
        """
        event = threading.Event()
        with self._lock:
            self._rules.append(
                _Rule(
                    "hold",
                    target,
                    method.upper() if method else None,
                    times,
                    delay=timeout,
                    event=event,
                )
            )
        return event

    def clear_faults(self) -> None:
        """Remove every fault-injection rule."""
        with self._lock:
            self._rules.clear()

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of all requests received so far (oldest first)."""
        with self._lock:
            return list(self._log)

    def requests_for(
        self, target: str, *, method: str | None = None, role: Role | None = None
    ) -> list[RecordedRequest]:
        """Logged requests matching ``target`` like fault rules do, optionally filtered."""
        return [
            r
            for r in self.requests
            if target in r.names
            and (method is None or r.method == method.upper())
            and (role is None or r.role == role)
        ]

    def clear_log(self) -> None:
        """Forget logged requests."""
        with self._lock:
            self._log.clear()

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised inside request handlers (should stay empty)."""
        with self._lock:
            return list(self._errors)

    # ------------------------------------------------------------------ internals

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _take_rule(self, kind: str, names: frozenset[str], method: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if (
                    rule.kind == kind
                    and rule.target in names
                    and (rule.method is None or rule.method == method)
                    and (rule.remaining is None or rule.remaining > 0)
                ):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None

    def _log_request(
        self, handler: _Handler, path: str, status: int, names: frozenset[str] = frozenset()
    ) -> None:
        entry = RecordedRequest(
            role=handler.server.role,
            method=handler.command,
            target=handler.path,
            path=path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            status=status,
            names=names or frozenset({path}),
        )
        with self._lock:
            self._log.append(entry)

    def create_empty_repo(
        self, repo_id: str, *, private: bool = False, token: str | None = None
    ) -> bool:
        """Create a model repo with no commit (False if it exists); a private one is readable
        with the creator's token only."""
        with self._lock:
            key: tuple[RepoType, str] = ("model", repo_id)
            if key in self._repos:
                return False
            self._repos[key] = _Repo()
            if private:
                self._access[key] = _Access(private=True, token=token)
            return True

    def commit_count(self) -> int:
        """Commits over all repos (to make new commit ids unique)."""
        with self._lock:
            return sum(len(repo.commits) for repo in self._repos.values())

    def _handle_post(self, handler: _Handler) -> None:
        """Uploads (see tests/support/hub_uploads.py), when ``accept_uploads`` is set."""
        from .hub_uploads import handle_post

        path = unquote(urlsplit(handler.path).path)
        if not self.accept_uploads or handler.server.role != "hub":
            self._handle_not_allowed(handler)
            return
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        status, payload = handle_post(self, path, body, handler.headers.get("Authorization"))
        self._log_request(handler, path, status)
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _handle_not_allowed(self, handler: _Handler) -> None:
        path = unquote(urlsplit(handler.path).path)
        self._log_request(handler, path, 405)
        body = b'{"error": "Method not allowed"}'
        handler.close_connection = True  # request body (if any) is not drained
        handler.send_response(405)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)

    def _handle(self, handler: _Handler) -> None:
        method = handler.command
        split = urlsplit(handler.path)
        path = unquote(split.path)
        request_headers = {k.lower(): v for k, v in handler.headers.items()}
        routed = self._route(
            handler.server.role, split.path, parse_qs(split.query), request_headers
        )

        slow_rule = self._take_rule("slow", routed.names, method)
        if slow_rule is not None and self._stop_event.wait(slow_rule.delay):
            handler.close_connection = True  # server stopping: hang up without answering
            return
        hold_rule = self._take_rule("hold", routed.names, method)
        if hold_rule is not None and hold_rule.event is not None:
            deadline = time.monotonic() + hold_rule.delay
            while not hold_rule.event.wait(0.02):
                if self._stop_event.is_set() or time.monotonic() > deadline:
                    handler.close_connection = True
                    return

        status_rule = self._take_rule("status", routed.names, method)
        response = (
            self._fault_response(status_rule, routed.commit)
            if status_rule is not None
            else routed.response
        )
        self._send(handler, method, path, response, routed.names, request_headers)

    def _fault_response(self, rule: _Rule, commit: str | None) -> _Response:
        message = rule.message or HTTPStatus(rule.status).phrase
        headers = list(rule.headers.items())
        if rule.message is not None:
            headers.append(("X-Error-Message", rule.message))
        if rule.headers.get("X-Error-Code") == "EntryNotFound" and commit is not None:
            headers.append(("X-Repo-Commit", commit))
        return _json_response(rule.status, {"error": message}, headers)

    def _send(
        self,
        handler: _Handler,
        method: str,
        path: str,
        response: _Response,
        names: frozenset[str],
        request_headers: Mapping[str, str],
    ) -> None:
        status = response.status
        headers = list(response.headers)
        body = response.body
        cut_at: int | None = None  # number of body bytes to send before hanging up

        if response.file_body and status == 200:
            total = len(body)
            start = 0
            range_header = request_headers.get("range")
            if range_header is not None:
                parsed = _parse_range(range_header, total)
                if parsed is None:
                    status = 416
                    headers = [("Content-Range", f"bytes */{total}")]
                    body = b""
                else:
                    start, end = parsed
                    status = 206
                    headers.append(("Content-Range", f"bytes {start}-{end}/{total}"))
                    body = body[start : end + 1]
            if status in (200, 206) and method == "GET":
                if self._take_rule("corrupt", names, method) is not None and total:
                    flip = total // 2
                    if start <= flip < start + len(body):
                        mutable = bytearray(body)
                        mutable[flip - start] ^= 0xFF
                        body = bytes(mutable)
                trunc = self._take_rule("truncate", names, method)
                if trunc is not None:
                    cut_at = max(0, min(len(body), trunc.offset - start))

        self._log_request(handler, path, status, names)
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method == "HEAD":
            return
        try:
            if cut_at is not None and cut_at < len(body):
                handler.wfile.write(body[:cut_at])
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
            else:
                handler.wfile.write(body)
        except OSError:
            handler.close_connection = True

    # ------------------------------------------------------------------ routing

    def _route(
        self,
        role: Role,
        raw_path: str,
        query: Mapping[str, list[str]],
        request_headers: Mapping[str, str],
    ) -> _Routed:
        path = unquote(raw_path)
        names = {path}
        with self._lock:
            if role == "cdn":
                return self._route_cdn(path, query, names)
            if path in self._urls:
                data, content_type = self._urls[path]
                headers = [
                    ("Content-Type", content_type),
                    ("ETag", f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'),
                    ("Accept-Ranges", "bytes"),
                ]
                return _Routed(frozenset(names), _Response(200, headers, data, file_body=True))
            if path in self._redirects:
                location, status = self._redirects[path]
                return _Routed(frozenset(names), _redirect_response(status, location))
            if path.startswith("/api/"):
                return self._route_api(raw_path, query, request_headers, names)
            if "/resolve/" in raw_path:
                return self._route_resolve(raw_path, request_headers, names)
        return _Routed(frozenset(names), _json_response(404, {"error": "Not Found"}))

    def _check_access(
        self, key: tuple[RepoType, str], request_headers: Mapping[str, str]
    ) -> _Response | None:
        repo_id = key[1]
        auth = request_headers.get("authorization")
        if key not in self._repos:
            return _hub_error(401 if auth is None else 404, "RepoNotFound")
        access = self._access.get(key)
        if access is None or not (access.gated or access.private):
            return None
        if access.token is not None and auth == f"Bearer {access.token}":
            return None
        if access.private:
            return _hub_error(401 if auth is None else 404, "RepoNotFound")
        return _hub_error(
            401 if auth is None else 403,
            "GatedRepo",
            f"Access to model {repo_id} is restricted. You must have access to it and be "
            "authenticated to access it. Please log in.",
        )

    def _resolve_commit(self, repo: _Repo, revision: str) -> str | None:
        if revision in repo.commits:
            return revision
        return repo.branches.get(revision)

    def _route_resolve(
        self, raw_path: str, request_headers: Mapping[str, str], names: set[str]
    ) -> _Routed:
        repo_part, _, rest = raw_path.lstrip("/").partition("/resolve/")
        revision_raw, _, filename_raw = rest.partition("/")
        repo_type, repo_id = _split_repo_type(unquote(repo_part))
        revision = unquote(revision_raw)
        filename = unquote(filename_raw)
        names |= {repo_id, filename, f"{repo_id}/{filename}"}
        frozen = frozenset(names)
        if repo_type is None:
            return _Routed(frozen, _hub_error(404, "RepoNotFound"))
        key = (repo_type, repo_id)
        denied = self._check_access(key, request_headers)
        if denied is not None:
            return _Routed(frozen, denied)
        repo = self._repos[key]
        commit = self._resolve_commit(repo, revision)
        if commit is None:
            return _Routed(
                frozen, _hub_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            )
        hub_file = repo.commits[commit].get(filename)
        if hub_file is None:
            error = _hub_error(404, "EntryNotFound")
            error.headers.append(("X-Repo-Commit", commit))
            return _Routed(frozen, error, commit)

        common = [("X-Repo-Commit", commit), ("Accept-Ranges", "bytes"), ("Vary", "Origin")]
        common.append(("X-Request-Id", f"Root={uuid.uuid4()}"))
        if not hub_file.lfs:
            headers = [
                *common,
                ("Content-Type", "application/octet-stream"),
                ("ETag", f'"{hub_file.git_oid}"'),
            ]
            return _Routed(frozen, _Response(200, headers, hub_file.data, file_body=True), commit)

        linked = [
            ("ETag", f'"{hub_file.sha256}"'),
            ("X-Linked-Etag", f'"{hub_file.sha256}"'),
            ("X-Linked-Size", str(hub_file.size)),
        ]
        if self.lfs_redirect == "direct":
            headers = [
                *common,
                *linked,
                ("Content-Type", "application/octet-stream"),
                ("Content-Disposition", _content_disposition(filename)),
            ]
            return _Routed(frozen, _Response(200, headers, hub_file.data, file_body=True), commit)
        location = (
            f"{self.cdn_url}/lfs/{hub_file.sha256}"
            f"?repo={quote(_URL_PREFIX[repo_type] + repo_id, safe='')}"
            f"&filename={quote(filename, safe='')}"
        )
        response = _redirect_response(302, location)
        response.headers += common + linked
        return _Routed(frozen, response, commit)

    def _route_cdn(self, path: str, query: Mapping[str, list[str]], names: set[str]) -> _Routed:
        match = re.fullmatch(r"/lfs/([0-9a-f]{64})", path)
        if match is None or match.group(1) not in self._blobs:
            # What S3 answers for a missing key without list permission.
            body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            return _Routed(
                frozenset(names), _Response(403, [("Content-Type", "application/xml")], body)
            )
        sha = match.group(1)
        data = self._blobs[sha]
        names.add(sha)
        filename = query.get("filename", [""])[0]
        _, repo_id = _split_repo_type(query.get("repo", [""])[0])
        if filename:
            names.add(filename)
            if repo_id:
                names |= {repo_id, f"{repo_id}/{filename}"}
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("ETag", f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'),
            ("Accept-Ranges", "bytes"),
            ("Cache-Control", "public, max-age=604800, immutable"),
        ]
        if filename:
            headers.append(("Content-Disposition", _content_disposition(filename)))
        return _Routed(frozenset(names), _Response(200, headers, data, file_body=True))

    def _route_api(
        self,
        raw_path: str,
        query: Mapping[str, list[str]],
        request_headers: Mapping[str, str],
        names: set[str],
    ) -> _Routed:
        parts = raw_path[len("/api/") :].split("/")
        repo_type = _API_PLURAL_TO_TYPE.get(parts[0])
        rest = parts[1:]
        action = ""
        action_args: list[str] = []
        for marker in ("revision", "tree"):
            if marker in rest[1:3]:
                idx = rest.index(marker, 1)
                action, action_args, rest = marker, rest[idx + 1 :], rest[:idx]
                break
        repo_id = unquote("/".join(rest))
        names.add(repo_id)
        frozen = frozenset(names)
        if repo_type is None or not repo_id or len(rest) > 2:
            return _Routed(frozen, _json_response(404, {"error": "Not Found"}))
        key = (repo_type, repo_id)
        denied = self._check_access(key, request_headers)
        if denied is not None:
            return _Routed(frozen, denied)
        repo = self._repos[key]
        revision = unquote(action_args[0]) if action_args else "main"
        commit = self._resolve_commit(repo, revision)
        if commit is None:
            return _Routed(
                frozen, _hub_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            )
        files = repo.commits[commit]

        if action == "tree":
            sub = unquote("/".join(action_args[1:])).strip("/")
            recursive = _truthy(query.get("recursive", ["false"])[0])
            entries = _tree_entries(files, sub, recursive)
            if entries is None:
                error = _hub_error(404, "EntryNotFound", f"{sub} does not exist on {revision}")
                return _Routed(frozen, error, commit)
            return _Routed(frozen, _json_response(200, entries), commit)

        with_blobs = _truthy(query.get("blobs", ["false"])[0])
        access = self._access.get(key, _Access())
        siblings: list[dict[str, Any]] = []
        for name in sorted(files):
            hub_file = files[name]
            sibling: dict[str, Any] = {"rfilename": name}
            if with_blobs:
                sibling["size"] = hub_file.size
                sibling["blobId"] = hub_file.git_oid
                if hub_file.lfs:
                    sibling["lfs"] = {
                        "sha256": hub_file.sha256,
                        "size": hub_file.size,
                        "pointerSize": hub_file.pointer_size,
                    }
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": commit,
            "lastModified": "2024-01-01T00:00:00.000Z",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "private": access.private,
            "gated": "auto" if access.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        return _Routed(frozen, _json_response(200, info), commit)


# ---------------------------------------------------------------------- helpers


def _normalize_path(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    return path


def _truthy(value: str) -> bool:
    return value.lower() in {"1", "true", "yes"}


def _split_repo_type(repo_part: str) -> tuple[RepoType | None, str]:
    first, sep, rest = repo_part.partition("/")
    if sep and first in _PREFIX_TO_TYPE:
        return _PREFIX_TO_TYPE[first], rest
    return "model", repo_part


def _content_disposition(filename: str) -> str:
    base = filename.rsplit("/", 1)[-1]
    return f"inline; filename*=UTF-8''{quote(base)}; filename=\"{base}\";"


def _json_response(
    status: int,
    payload: Any,
    headers: list[tuple[str, str]] | None = None,
) -> _Response:
    body = json.dumps(payload).encode()
    return _Response(status, [("Content-Type", "application/json"), *(headers or [])], body)


def _hub_error(status: int, code: str, message: str | None = None) -> _Response:
    message = message or _DEFAULT_ERROR_MESSAGES[code]
    return _json_response(
        status, {"error": message}, [("X-Error-Code", code), ("X-Error-Message", message)]
    )


def _redirect_response(status: int, location: str) -> _Response:
    body = f"Found. Redirecting to {location}".encode()
    return _Response(
        status, [("Location", location), ("Content-Type", "text/plain; charset=utf-8")], body
    )


def _parse_range(header: str, total: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range; None if unsatisfiable or malformed (-> 416)."""
    match = _RANGE_RE.fullmatch(header)
    if match is None:
        return None
    start_s, end_s = match.groups()
    if not start_s:
        if not end_s or int(end_s) == 0:
            return None
        suffix = min(int(end_s), total)
        return (total - suffix, total - 1) if total else None
    start = int(start_s)
    end = min(int(end_s), total - 1) if end_s else total - 1
    if start >= total or end < start:
        return None
    return start, end


def _tree_entries(
    files: Mapping[str, HubFile], sub: str, recursive: bool
) -> list[dict[str, Any]] | None:
    prefix = f"{sub}/" if sub else ""
    entries: list[dict[str, Any]] = []
    seen_dirs: set[str] = set()
    found = not sub
    for name in sorted(files):
        if not name.startswith(prefix):
            continue
        found = True
        relative = name[len(prefix) :]
        dirs = relative.split("/")[:-1]
        for depth in range(1, len(dirs) + 1):
            if depth > 1 and not recursive:
                break
            dir_path = prefix + "/".join(dirs[:depth])
            if dir_path not in seen_dirs:
                seen_dirs.add(dir_path)
                entries.append(
                    {
                        "type": "directory",
                        "oid": hashlib.sha1(dir_path.encode(), usedforsecurity=False).hexdigest(),
                        "size": 0,
                        "path": dir_path,
                    }
                )
        if dirs and not recursive:
            continue
        hub_file = files[name]
        entry: dict[str, Any] = {
            "type": "file",
            "oid": hub_file.git_oid,
            "size": hub_file.size,
            "path": name,
        }
        if hub_file.lfs:
            entry["lfs"] = {
                "oid": hub_file.sha256,
                "size": hub_file.size,
                "pointerSize": hub_file.pointer_size,
            }
        entries.append(entry)
    return entries if found else None
