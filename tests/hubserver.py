"""A Hugging Face Hub stand-in on 127.0.0.1 for tests: serves a directory in the Hub's URL layout.

Point ``HF_ENDPOINT`` at :attr:`LocalHub.url` and the real ``huggingface_hub`` calls
(``hf_hub_download``, ``snapshot_download``, diffusers' ``from_pretrained``) run unchanged against
it: file metadata by HEAD (``X-Repo-Commit``, ``ETag``, ``Content-Length``), downloads by GET,
repo info and tree listings under ``/api``. Layout on disk: ``<root>/{models,datasets}/<owner>/<name>/<path>``;
every revision name (``main``, ``refs/convert/parquet``) serves the same files, with a commit
hash derived from the repo id; a 40-hex revision is served as that commit. Each request is recorded in :attr:`LocalHub.requests`.

Faults: :meth:`LocalHub.inject` queues faults for file downloads (GET) whose path contains a
string (the request path, with the repo and revision): an HTTP status (``429``, ``500``, ``503`` …), ``drop`` (the connection closes half-way
through the body), ``truncate`` (half the file, announced as such) or ``corrupt`` (the full length,
one byte changed). Each matching request takes the next fault; :attr:`LocalHub.faults_served`
counts them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _commit(repo_id: str, rev: str) -> str:
    """The commit a revision resolves to: a 40-hex revision is a commit and resolves to itself (as on the
    Hub); every branch or ref name resolves to one commit derived from the repo id."""
    return rev if len(rev) == 40 and all(c in "0123456789abcdef" for c in rev) else _sha1(repo_id)


class LocalHub:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.requests: list[tuple[str, str]] = []
        self.faults: list[tuple[str, str]] = []   # (path substring, fault), taken in order
        self.faults_served = 0
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_HEAD(self):
                hub._handle(self, body=False)

            def do_GET(self):
                hub._handle(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LocalHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, fault: str | int, path_contains: str = "", times: int = 1) -> None:
        """Serve ``fault`` to the next ``times`` downloads whose path contains ``path_contains``."""
        with self._lock:
            self.faults.extend([(path_contains, str(fault))] * times)

    def _take_fault(self, path: str) -> str | None:
        with self._lock:
            for i, (needle, fault) in enumerate(self.faults):
                if needle in path:
                    del self.faults[i]
                    self.faults_served += 1
                    return fault
        return None

    # -- routing ------------------------------------------------------------------------------
    def _repo_dir(self, kind: str, repo_id: str) -> Path:
        return self.root / kind / repo_id

    def _handle(self, req: BaseHTTPRequestHandler, body: bool) -> None:
        self.requests.append((req.command, req.path))
        parts = urlsplit(req.path).path.strip("/").split("/")  # still percent-encoded: revisions hold %2F
        if parts[0] == "api" and len(parts) == 4 and parts[1] in ("models", "datasets"):  # repo info, main
            return self._api(req, parts[1], f"{parts[2]}/{parts[3]}", "revision", "main", "", body)
        if parts[0] == "api" and len(parts) >= 6 and parts[1] in ("models", "datasets"):
            kind, repo_id, action, rev = parts[1], f"{parts[2]}/{parts[3]}", parts[4], unquote(parts[5])
            return self._api(req, kind, repo_id, action, rev, unquote("/".join(parts[6:])), body)
        kind = "datasets" if parts[0] == "datasets" else "models"
        parts = parts[1:] if kind == "datasets" else parts
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id, rev, path = f"{parts[0]}/{parts[1]}", unquote(parts[3]), unquote("/".join(parts[4:]))
            return self._file(req, kind, repo_id, rev, path, body)
        self._error(req, 404, "EntryNotFound", body)

    def _error(self, req, status: int, code: str, body: bool) -> None:
        payload = json.dumps({"error": code}).encode()
        req.send_response(status)
        req.send_header("X-Error-Code", code)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        if body:
            req.wfile.write(payload)

    def _json(self, req, data, body: bool) -> None:
        payload = json.dumps(data).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        if body:
            req.wfile.write(payload)

    def _files(self, repo: Path) -> list[Path]:
        return sorted(p for p in repo.rglob("*") if p.is_file())

    def _api(self, req, kind, repo_id, action, rev, sub, body) -> None:
        repo = self._repo_dir(kind, repo_id)
        if not repo.is_dir():
            return self._error(req, 404, "RepoNotFound", body)
        sha = _commit(repo_id, rev)
        files = self._files(repo)
        if action == "revision":
            siblings = [{"rfilename": p.relative_to(repo).as_posix()} for p in files]
            return self._json(req, {"id": repo_id, "sha": sha, "siblings": siblings, "private": False}, body)
        if action == "tree":
            listing = [{"type": "file", "path": p.relative_to(repo).as_posix(), "size": p.stat().st_size,
                        "oid": _sha1(p.relative_to(repo).as_posix())}
                       for p in files if not sub or p.relative_to(repo).as_posix().startswith(sub.rstrip("/") + "/")]
            return self._json(req, listing, body)
        self._error(req, 404, "EntryNotFound", body)

    def _file(self, req, kind, repo_id, rev, path, body) -> None:
        repo = self._repo_dir(kind, repo_id)
        if not repo.is_dir():
            return self._error(req, 404, "RepoNotFound", body)
        target = repo / path
        if not target.is_file() or repo not in target.resolve().parents:
            return self._error(req, 404, "EntryNotFound", body)
        data = target.read_bytes()
        fault = self._take_fault(unquote(req.path)) if body else None
        if fault and fault.isdigit():
            req.send_response(int(fault))
            if fault == "429":
                req.send_header("Retry-After", "0")
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        if fault == "corrupt":
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        sent = data[: len(data) // 2] if fault in ("drop", "truncate") else data
        req.send_response(200)
        req.send_header("X-Repo-Commit", _commit(repo_id, rev))
        req.send_header("ETag", f'"{hashlib.sha256(target.read_bytes()).hexdigest()}"')
        req.send_header("Content-Length", str(len(sent if fault == "truncate" else data)))
        req.send_header("Content-Type", "application/octet-stream")
        req.end_headers()
        if body:
            req.wfile.write(sent)
            if fault == "drop":
                req.wfile.flush()
                req.close_connection = True
