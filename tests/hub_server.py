"""A stand-in for huggingface.co's API, on 127.0.0.1, serving model repositories from local
folders: what huggingface_hub's snapshot_download asks of the Hub (repository info at a
revision, the tree of a commit, HEAD and GET of a file at a commit), answered as the Hub answers
(its headers and X-Error-Code values), so that huggingface_hub's own code fills its cache; and
what HfApi.create_repo and create_commit send, with every file taken inline ("regular" upload
mode: the Hub's LFS and Xet routes for large files are not stood in for), refused with the
Hub's 401 when it was given a token and the request does not carry it."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    folder: Path  # the files of its one commit
    commit: str  # 40 hex digits
    refs: tuple[str, ...] = ("main",)  # branches and tags that point at the commit

    def files(self) -> dict[str, Path]:
        return {p.relative_to(self.folder).as_posix(): p
                for p in sorted(self.folder.rglob("*")) if p.is_file()}


def git_blob_id(data: bytes) -> str:
    """The Hub's oid (and ETag) of a file kept in git: its git blob sha1."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class StandInHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # "METHOD path" of every request
    created: list[dict] = field(default_factory=list)  # the body of each create_repo
    root: Path | None = None  # where commits received are kept (default: a temporary folder)
    token: str | None = None  # when set, a POST without it (Authorization: Bearer) gets a 401

    def start(self) -> str:
        """Serve in a thread; return the endpoint URL (for HF_ENDPOINT)."""
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def downloaded(self, repo_id: str) -> list[str]:
        """The files of `repo_id` whose bytes were sent (GET)."""
        prefix = f"GET /{repo_id}/resolve/"
        return sorted(unquote(r.removeprefix(prefix).split("/", 1)[1]) for r in self.requests
                      if r.startswith(prefix))

    def receive(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a POST: create a repository, check a model card's
        metadata, say how to upload files, or commit them."""
        parts = urlsplit(path).path.strip("/").split("/")
        if parts == ["api", "repos", "create"]:
            self.created.append(json.loads(body))
            return _json({"url": f"{self.url}/{self.created[-1]['organization']}/"
                                 f"{self.created[-1]['name']}"})
        if parts == ["api", "validate-yaml"]:
            return _json({"warnings": [], "errors": []})
        repo_id, action = "/".join(parts[2:4]), parts[4]
        if action == "preupload":
            files = json.loads(body)["files"]
            return _json({"files": [{"path": f["path"], "uploadMode": "regular",
                                     "shouldIgnore": False} for f in files]})
        lines = [json.loads(line) for line in body.splitlines()]
        folder = Path(tempfile.mkdtemp(prefix="commit-", dir=self.root))
        for line in lines[1:]:
            path = folder / line["value"]["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(base64.b64decode(line["value"]["content"]))
        commit = hashlib.sha1(body).hexdigest()
        self.repos[repo_id] = Repo(folder, commit)
        return _json({"commitUrl": f"{self.url}/{repo_id}/commit/{commit}",
                      "commitOid": commit})

    def answer(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a request."""
        parts = [unquote(p) for p in urlsplit(path).path.strip("/").split("/")]
        if parts[:2] == ["api", "models"]:
            repo, rest = self.repos.get("/".join(parts[2:4])), parts[4:]
            if repo is None:
                return _error(404, "RepoNotFound")
            if rest[:1] == ["revision"] and "/".join(rest[1:]) in (repo.commit, *repo.refs):
                siblings = [{"rfilename": name} for name in repo.files()]
                return _json({"id": "/".join(parts[2:4]), "sha": repo.commit,
                              "siblings": siblings})
            if rest[:1] == ["tree"] and rest[1] == repo.commit:
                return _json([{"type": "file", "path": name, "size": p.stat().st_size,
                               "oid": git_blob_id(p.read_bytes())}
                              for name, p in repo.files().items()])
            return _error(404, "RevisionNotFound")
        repo = self.repos.get("/".join(parts[:2]))
        if repo is None:
            return _error(404, "RepoNotFound")
        # A branch or tag has no slash here (the Hub's refs/pr/N are not stood in for).
        if parts[2:3] != ["resolve"] or parts[3] not in (repo.commit, *repo.refs):
            return _error(404, "RevisionNotFound")
        file = repo.files().get("/".join(parts[4:]))
        if file is None:
            return _error(404, "EntryNotFound")
        data = file.read_bytes()
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{git_blob_id(data)}"',
                   "Content-Length": str(len(data)), "Content-Type": "application/octet-stream"}
        return 200, headers, data


def _json(value: object) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(value).encode()
    return 200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body


def _error(status: int, code: str, coded: bool = True) -> tuple[int, dict[str, str], bytes]:
    """An error as the Hub sends it: its message in the body, and (`coded`) in X-Error-Code."""
    body = json.dumps({"error": code}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return status, {"X-Error-Code": code, **headers} if coded else headers, body


def _handler(hub: StandInHub) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self._reply("GET")

        def do_HEAD(self):
            self._reply("HEAD")

        def do_POST(self):
            self._reply("POST", self.rfile.read(int(self.headers["Content-Length"])))

        def _reply(self, method: str, received: bytes = b"") -> None:
            hub.requests.append(f"{method} {urlsplit(self.path).path}")
            if method == "POST" and hub.token and (
                    self.headers.get("Authorization") != f"Bearer {hub.token}"):
                status, headers, body = _error(401, "Invalid credentials in Authorization header",
                                               coded=False)
            else:
                status, headers, body = (hub.receive(self.path, received) if method == "POST"
                                         else hub.answer(method, self.path))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler
