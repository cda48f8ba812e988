"""A scripted OpenAI-compatible chat endpoint on 127.0.0.1, speaking the wire format the `openai` SDK reads.

`FakeLLM` answers `POST /v1/chat/completions` with the next scripted answer:

- `answer(value)` queues a structured-output answer: the message content is `value` as a JSON string.
  `value` may be a function of the request's evidence block (parsed from its `<evidence>` delimiters),
  so a scripted answer can cite the evidence ids the documenter gave;
- `fail(status, times)` queues HTTP errors in OpenAI's error body, with `retry-after-ms: 1` so the SDK's
  retry comes at once. Errors are `FakeServer` faults: they answer before any scripted answer.

With the script empty it answers 500. When `api_key` is set, each request needs `Authorization: Bearer
KEY`, and the 401 for a wrong one echoes what it got, so a leaked key would show. Every request is kept
in `server.requests`; `chats` gives their JSON bodies, and `max_in_flight` the most answered at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from http_fakes import Fault, FakeServer, Reply, Request, ServedFake

API_KEY = "sk-llm-test-Hq7Rw2Xp9Lm4Tz6V"
CHAT_PATH = "/v1/chat/completions"
USAGE = {"prompt_tokens": 1812, "completion_tokens": 431, "total_tokens": 2243}
Scripted = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


def error_body(status: int, message: str) -> bytes:
    """OpenAI's error body, which the SDK reads its error message from."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}}).encode()


def block(text: str, tag: str) -> str | None:
    """The text between `<tag>` and `</tag>` in a prompt, or None."""
    match = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.S)
    return match.group(1) if match else None


class FakeLLM(ServedFake):
    def __init__(self, api_key: str | None = API_KEY, *, delay: float = 0.0) -> None:
        self.api_key, self.delay = api_key, delay
        self.script: list[tuple[Scripted, dict[str, int]]] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self.server = FakeServer(self.route)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def answer(self, value: Scripted, usage: dict[str, int] = USAGE) -> None:
        self.script.append((value, usage))

    def fail(self, status: int, times: int = 1) -> None:
        headers = {"Content-Type": "application/json", "retry-after-ms": "1"}
        self.server.faults.extend(Fault.http(status, headers, error_body(status, "scripted failure"), CHAT_PATH)
                                  for _ in range(times))

    @property
    def chats(self) -> list[dict[str, Any]]:
        return [request.json() for request in self.server.requests if request.path == CHAT_PATH]

    def route(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != CHAT_PATH:
            return Reply(404, error_body(404, f"Invalid URL ({request.method} {request.path})"))
        received = request.headers.get("authorization")
        if self.api_key and received != f"Bearer {self.api_key}":
            return Reply(401, error_body(401, f"Incorrect API key provided: {received}"))
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            scripted = self.script.pop(0) if self.script else None
        try:
            time.sleep(self.delay)
            if scripted is None:
                return Reply(500, error_body(500, "no scripted answer left"))
            return Reply.json(self._completion(request.json(), *scripted))
        finally:
            with self._lock:
                self.in_flight -= 1

    def _completion(self, body: dict[str, Any], value: Scripted, usage: dict[str, int]) -> dict[str, Any]:
        if callable(value):
            user = next(message["content"] for message in body["messages"] if message["role"] == "user")
            value = value(json.loads(block(user, "evidence") or "null"))
        return {
            "id": f"chatcmpl-{len(self.server.requests)}", "object": "chat.completion", "created": 1767225600,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": json.dumps(value), "refusal": None}}],
            "usage": usage,
        }
