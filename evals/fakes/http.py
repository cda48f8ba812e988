"""Fake registry servers that speak real HTTP on 127.0.0.1, with faults injected on demand.

A fake is a `FakeServer` with a `route(request) -> Reply` function holding the
service's wire format. Faults are queued (`server.faults.extend([...])`) and each
one replaces the next matching request's answer:

- `Fault.http(503, {"Retry-After": "0"})`: an HTTP error with those headers;
- `Fault.timeout()`: no answer until the client gives up (the server sleeps `hang_seconds`);
- `Fault.reset()`: the connection is closed without a response;
- `Fault.truncated()`: the real answer's first half, under a Content-Length for all of it.

A fault may be limited to paths starting with a prefix. Every request is recorded in
`server.requests` (method, path with query, headers) for assertions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class Fault:
    kind: str  # "status", "timeout", "reset", "truncated"
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    path_prefix: str = ""

    @classmethod
    def http(cls, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
             path_prefix: str = "") -> Fault:
        return cls("status", status, headers or {}, body, path_prefix)

    @classmethod
    def timeout(cls, path_prefix: str = "") -> Fault:
        return cls("timeout", path_prefix=path_prefix)

    @classmethod
    def reset(cls, path_prefix: str = "") -> Fault:
        return cls("reset", path_prefix=path_prefix)

    @classmethod
    def truncated(cls, path_prefix: str = "") -> Fault:
        return cls("truncated", path_prefix=path_prefix)


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) answering with `route`; use as a context manager."""

    hang_seconds = 3.0

    def __init__(self, route: Callable[[Request], Reply]) -> None:
        self.route = route
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A client that gives up on a hung or reset answer is a fault we injected, not news for stderr.
        self._httpd.handle_error = lambda request, client_address: None
        # A short poll: shutting the server down waits for the accept loop's next poll.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self.faults):
                if path.startswith(fault.path_prefix):
                    return self.faults.pop(index)
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(handler.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                          {key.lower(): value for key, value in handler.headers.items()},
                          handler.rfile.read(length) if length else b"")
        with self._lock:
            self.requests.append(request)
        fault = self._next_fault(parts.path)
        if fault and fault.kind == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            handler.connection.close()
            handler.close_connection = True
            return
        if fault and fault.kind == "timeout":
            time.sleep(self.hang_seconds)
            handler.close_connection = True
            return
        reply = Reply(fault.status, fault.body, fault.headers) if fault and fault.kind == "status" else self.route(request)
        body = reply.body
        handler.send_response(reply.status)
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command == "HEAD":
            return
        if fault and fault.kind == "truncated":
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body)


class ServedFake:
    """A fake service that runs on `self.server` (a FakeServer, or another fake) while used as a context."""

    server: Any

    def __enter__(self) -> Self:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url
