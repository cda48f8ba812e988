"""A webhook receiver on `FakeServer` that dedupes by the `Idempotency-Key` header, as a receiver following
the IETF Idempotency-Key draft does: the first delivery of a key is acted on (201), a replay is answered
200 with `Idempotent-Replayed: true` and not acted on again.

With `token` set it wants `Authorization: Bearer <token>` (401 otherwise); any path but `path` is 404.
"""

from __future__ import annotations

from typing import Any

from http_fakes import FakeServer, Reply, Request, ServedFake


class FakeWebhook(ServedFake):
    path = "/hooks/weightkeeper"

    def __init__(self, *, token: str | None = None) -> None:
        self.token = token
        self.delivered: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> the JSON acted on
        self.server = FakeServer(self.route)

    @property
    def hook(self) -> str:
        return self.url + self.path

    def posts(self) -> list[Request]:
        return [request for request in self.server.requests if request.method == "POST"]

    def route(self, request: Request) -> Reply:
        if request.path != self.path or request.method != "POST":
            return Reply.json({"error": "no such hook"}, 404)
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply.json({"error": "unauthorized"}, 401)
        key = request.headers.get("idempotency-key")
        if not key:
            return Reply.json({"error": "an Idempotency-Key header is required"}, 400)
        if key in self.delivered:
            return Reply.json({"received": key}, 200, {"Idempotent-Replayed": "true"})
        self.delivered[key] = request.json()
        return Reply.json({"received": key}, 201)
