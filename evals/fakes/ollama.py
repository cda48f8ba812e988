"""A fake Ollama server: real HTTP on 127.0.0.1 in Ollama's wire format, over a mutable set of tags.

It answers the way Ollama's `server/routes.go` does (checked in the ollama repository):

- `GET /api/tags`: `{"models": [{name, model, modified_at, size, digest, details}]}`, newest first.
  `digest` is the hex sha256 of the tag's manifest (no `sha256:` prefix). `modified_at` is a Go
  RFC 3339 time with nanoseconds and a zone offset. `details.parent_model` is filled in by servers
  with the model-list cache. Older servers send `""` there, because their list handler never sets
  it: `FakeOllama(parent_in_tags=False)`.
- `POST /api/show {"model": name}` (or the deprecated `{"name": name}`): the model's details.
  Without a body it answers 400 `{"error": "missing request body"}`, with neither field 400
  `{"error": "model is required"}`, and for an unknown tag 404 `{"error": "model '<name>' not found"}`.
- `GET /api/version`: `{"version": ...}`.
- Any other path answers like gin: 404 `404 page not found`, or 405 for a known path and the wrong method.

Tags change the way the CLI changes them. `pull` writes a new manifest, `remove` is `ollama rm`,
`copy` is `ollama cp` (the manifest's bytes, so the same digest), `rename` is a copy and then a
removal. `retag` is a pull that brings a newer build, and `change` is a re-create with other
details. A digest is the sha256 of the manifest's content, so equal content gives equal digests,
as it does on disk.

Faults are queued on the underlying `FakeServer` (`fake.faults`), and every request is recorded
in `fake.requests`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from evals.fakes.http import FakeServer, Fault, Reply, Request, ServedFake

VERSION = "0.6.5"
ZONE = timezone(timedelta(hours=-7))  # Ollama reports the server's local time
ROUTES = {"/api/tags": {"GET", "HEAD"}, "/api/show": {"POST"}, "/api/version": {"GET", "HEAD"}}


@dataclass(frozen=True)
class Manifest:
    """What a tag's manifest says. `build` stands for the weights layer: a new build is new content."""

    build: int
    size: int
    parent_model: str = ""
    format: str = "gguf"
    family: str = "llama"
    families: tuple[str, ...] | None = ("llama",)
    parameter_size: str = "8.0B"
    quantization_level: str = "Q4_K_M"

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def details(self, *, with_parent: bool = True) -> dict[str, Any]:
        return {
            "parent_model": self.parent_model if with_parent else "",
            "format": self.format,
            "family": self.family,
            "families": None if self.families is None else list(self.families),
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


@dataclass(frozen=True)
class Tag:
    manifest: Manifest
    modified_at: datetime  # the manifest file's mtime

    @property
    def digest(self) -> str:
        return self.manifest.digest


def canonical(name: str) -> str:
    """A name as Ollama stores it: without a tag it is `:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def go_time(when: datetime) -> str:
    """RFC 3339 with nanoseconds and a `-07:00` offset, as Go's time.Time marshals to JSON."""
    nanoseconds = when.microsecond * 1000 + 123
    return f"{when:%Y-%m-%dT%H:%M:%S}.{nanoseconds:09d}{when.isoformat()[-6:]}"


class FakeOllama(ServedFake):
    """Ollama's API over `tags`; use as a context manager, change tags with the CLI-like methods."""

    def __init__(self, *, parent_in_tags: bool = True, version: str = VERSION) -> None:
        self.server = FakeServer(self.route)
        self._lock = threading.Lock()
        self.reset(parent_in_tags=parent_in_tags, version=version)

    def reset(self, *, parent_in_tags: bool = True, version: str = VERSION) -> None:
        """No tags, no faults, no requests, the real wire format: a fresh server for the next test or
        example without starting another."""
        with self._lock:
            self.parent_in_tags, self.version = parent_in_tags, version
            self.tags: dict[str, Tag] = {}
            self._builds = 0
            self._clock = datetime(2025, 3, 1, 9, 30, 0, 250_000, tzinfo=ZONE)
        self.server.route = self.route
        self.server.faults.clear()
        self.server.requests.clear()

    @property
    def faults(self) -> list[Fault]:
        return self.server.faults

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def shown(self) -> list[Any]:
        """The bodies of the /api/show requests so far, as sent."""
        return [request.json() for request in self.requests if request.path == "/api/show"]

    # -- the CLI's changes ----------------------------------------------------------------------

    def pull(self, name: str, *, parent_model: str = "", size: int = 4_920_753_328, **details: Any) -> Tag:
        """A new tag (or a tag replaced) with a manifest no other tag has."""
        self._builds += 1
        return self._write(name, Manifest(self._builds, size + self._builds, parent_model, **details))

    def remove(self, name: str) -> None:
        with self._lock:
            del self.tags[canonical(name)]

    def copy(self, source: str, destination: str) -> Tag:
        return self._write(destination, self.tags[canonical(source)].manifest)

    def rename(self, old: str, new: str) -> Tag:
        tag = self.copy(old, new)
        self.remove(old)
        return tag

    def retag(self, name: str) -> Tag:
        """The tag now points at a newer build of the same model."""
        self._builds += 1
        return self._write(name, replace(self.tags[canonical(name)].manifest, build=self._builds))

    def change(self, name: str, **details: Any) -> Tag:
        """The tag re-created with other details (parent_model, quantization_level, …)."""
        return self._write(name, replace(self.tags[canonical(name)].manifest, **details))

    def _write(self, name: str, manifest: Manifest) -> Tag:
        with self._lock:
            self._clock += timedelta(minutes=1, microseconds=1)
            tag = self.tags[canonical(name)] = Tag(manifest, self._clock)
        return tag

    # -- the wire format ------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        methods = ROUTES.get(request.path)
        if methods is None:
            return Reply(404, b"404 page not found", {"Content-Type": "text/plain"})
        if request.method not in methods:
            return Reply(405, b"405 method not allowed", {"Content-Type": "text/plain"})
        with self._lock:
            if request.path == "/api/tags":
                return Reply.json({"models": [self._entry(name, tag) for name, tag in sorted(
                    self.tags.items(), key=lambda item: item[1].modified_at, reverse=True)]})
            if request.path == "/api/show":
                return self._show(request)
            return Reply.json({"version": self.version})

    def _entry(self, name: str, tag: Tag) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": go_time(tag.modified_at),
            "size": tag.manifest.size,
            "digest": tag.digest,
            "details": tag.manifest.details(with_parent=self.parent_in_tags),
        }

    def _show(self, request: Request) -> Reply:
        if not request.body:
            return Reply.json({"error": "missing request body"}, 400)
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            return Reply.json({"error": f"invalid character in request body: {exc}"}, 400)
        if not isinstance(body, dict):
            return Reply.json({"error": "json: cannot unmarshal into Go value of type api.ShowRequest"}, 400)
        requested = body.get("model") or body.get("name")
        if not requested:
            return Reply.json({"error": "model is required"}, 400)
        if not isinstance(requested, str):
            return Reply.json({"error": "json: cannot unmarshal into Go struct field ShowRequest.model"}, 400)
        tag = self.tags.get(canonical(requested))
        if tag is None:
            return Reply.json({"error": f"model '{requested}' not found"}, 404)
        manifest = tag.manifest
        return Reply.json({
            "license": "",
            "modelfile": f"# Modelfile generated by \"ollama show\"\nFROM {manifest.parent_model or requested}\n",
            "parameters": "stop \"<|eot_id|>\"",
            "template": "{{ .Prompt }}",
            "details": manifest.details(),
            "model_info": {"general.architecture": manifest.family, "general.parameter_count": 8030261248},
            "capabilities": ["completion"],
            "modified_at": go_time(tag.modified_at),
        })
