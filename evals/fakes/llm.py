"""A scripted OpenAI-compatible chat endpoint on 127.0.0.1, speaking the wire format the `openai` SDK reads.

`FakeLLM` answers `POST /v1/chat/completions` with the next scripted answer. It speaks the one structured-output
request weightkeeper sends (what `ChatOpenAI.with_structured_output(method="json_schema")` sends): a
`response_format` of type `json_schema`, no tools. Any other shape (tool calls, JSON mode, plain chat) is
answered 400, as by a server that would not constrain the answer, so a change of method fails the tests.

- `answer(value)` queues a structured-output answer: the message content is `value` as a JSON string.
  `value` may be a function of the request's evidence block (parsed from its `<evidence>` delimiters),
  so a scripted answer can cite the evidence ids the documenter gave. `finish_reason="length"` scripts
  an answer cut off at the token limit;
- `refuse(text)` queues a refusal (the message's `refusal`, no content), as OpenAI's structured output
  answers when the model declines;
- `fail(status, times)` queues HTTP errors in OpenAI's error body, with `retry-after-ms: 1` so the SDK's
  retry comes at once. Errors are `FakeServer` faults: they answer before any scripted answer.

With the script empty it answers what `always(value)` set, or else 500.

Critiques (requests whose response_format schema is named `proposal_critique`, agents/llm_critic.py) have
their own script: `critique(value)` queues an answer and `fail_critique(status, times)` an HTTP error; with
it empty a critique is clean (`{"findings": []}`). They are kept in `critiques` (their JSON bodies), not
in `server.requests`, so a test of drafting sees only the drafting.

When `api_key` is set, each request needs `Authorization: Bearer KEY`, and the 401 for a wrong one echoes
what it got, so a leaked key would show. Every other request is kept in `server.requests`; `chats` gives
their JSON bodies, and `max_in_flight` the most answered at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from evals.fakes.http import Fault, FakeServer, Reply, Request, ServedFake

API_KEY = "sk-llm-test-Hq7Rw2Xp9Lm4Tz6V"
CHAT_PATH = "/v1/chat/completions"
USAGE = {"prompt_tokens": 1812, "completion_tokens": 431, "total_tokens": 2243}
CRITIQUE = "proposal_critique"
CLEAN = {"findings": []}
Scripted = Any  # a JSON value, or a function of the request's evidence that returns one


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
        self.script: list[tuple[Scripted, dict[str, int], dict[str, Any]]] = []
        self.standing: tuple[Scripted, dict[str, int], dict[str, Any]] | None = None  # once the script is empty
        self.critique_script: list[Scripted | int] = []  # an int: an HTTP error status
        self.critiques: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self.server = FakeServer(self.route)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def answer(self, value: Scripted, usage: dict[str, int] = USAGE, *, finish_reason: str = "stop") -> None:
        self.script.append((value, usage, {"finish_reason": finish_reason}))

    def always(self, value: Scripted, usage: dict[str, int] = USAGE) -> None:
        """Answer every request the script leaves (each redraft a critic asks for, say) with `value`."""
        self.standing = (value, usage, {"finish_reason": "stop"})

    def refuse(self, text: str) -> None:
        self.script.append((None, USAGE, {"refusal": text}))

    def fail(self, status: int, times: int = 1) -> None:
        headers = {"Content-Type": "application/json", "retry-after-ms": "1"}
        self.server.faults.extend(Fault.http(status, headers, error_body(status, "scripted failure"), CHAT_PATH)
                                  for _ in range(times))

    def critique(self, value: Scripted) -> None:
        self.critique_script.append(value)

    def fail_critique(self, status: int, times: int = 1) -> None:
        self.critique_script.extend([status] * times)

    @property
    def chats(self) -> list[dict[str, Any]]:
        return [request.json() for request in self.server.requests if request.path == CHAT_PATH]

    def route(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != CHAT_PATH:
            return Reply(404, error_body(404, f"Invalid URL ({request.method} {request.path})"))
        received = request.headers.get("authorization")
        if self.api_key and received != f"Bearer {self.api_key}":
            return Reply(401, error_body(401, f"Incorrect API key provided: {received}"))
        if not _structured(request.json()):
            return Reply(400, error_body(400, "this server answers only response_format json_schema, without tools"))
        if _schema_name(request.json()) == CRITIQUE:
            return self._critique(request)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            scripted = self.script.pop(0) if self.script else self.standing
        try:
            time.sleep(self.delay)
            if scripted is None:
                return Reply(500, error_body(500, "no scripted answer left"))
            return Reply.json(self._completion(request.json(), *scripted))
        finally:
            with self._lock:
                self.in_flight -= 1

    def _critique(self, request: Request) -> Reply:
        with self.server._lock:  # by identity: a retry's request may equal the first
            self.server.requests[:] = [kept for kept in self.server.requests if kept is not request]
        with self._lock:
            self.critiques.append(request.json())
            scripted = self.critique_script.pop(0) if self.critique_script else CLEAN
        if isinstance(scripted, int):
            return Reply(scripted, error_body(scripted, "scripted failure"),
                         {"Content-Type": "application/json", "retry-after-ms": "1"})
        return Reply.json(self._completion(request.json(), scripted, USAGE))

    def _completion(self, body: dict[str, Any], value: Scripted, usage: dict[str, int],
                    how: dict[str, Any] | None = None) -> dict[str, Any]:
        how = how or {}
        if callable(value):
            user = next(message["content"] for message in body["messages"] if message["role"] == "user")
            value = value(json.loads(block(user, "evidence") or "null"))
        refusal = how.get("refusal")
        content = None if refusal else json.dumps(value)
        if how.get("finish_reason") == "length":
            content = (content or "")[: len(content or "") // 2]  # the tokens ran out mid-JSON
        return {
            "id": f"chatcmpl-{len(self.server.requests)}", "object": "chat.completion", "created": 1767225600,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": how.get("finish_reason", "stop"), "logprobs": None,
                         "message": {"role": "assistant", "content": content, "refusal": refusal}}],
            "usage": usage,
        }


def _structured(body: Any) -> bool:
    """Whether a request asks for an answer shaped by a JSON schema, the one way weightkeeper asks."""
    try:
        response_format = body["response_format"]
        return (response_format["type"] == "json_schema" and isinstance(response_format["json_schema"]["schema"], dict)
                and "tools" not in body and "tool_choice" not in body)
    except (KeyError, TypeError):
        return False


def _schema_name(body: Any) -> str | None:
    try:
        return body["response_format"]["json_schema"]["name"]
    except (KeyError, TypeError):
        return None
