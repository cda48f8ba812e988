"""A scripted Anthropic Messages API on 127.0.0.1, speaking the wire format the `anthropic` SDK reads.

`FakeAnthropic` answers `POST /v1/messages`. It speaks the structured-output request weightkeeper sends to
Claude (what `ChatAnthropic.with_structured_output(method="function_calling")` sends): one tool, forced by
`tool_choice` `{"type": "tool", "name": ...}`; the answer is that tool's call, its `input` the scripted value.
Anything else is answered 400. `answer(value)` queues an answer (`value` may be a function of the request's
evidence block, as in tests/fake_llm.py), `fail(status, times)` an error in Anthropic's error body; with the
script empty it answers 500. Each request needs the key (`x-api-key: KEY`, or `Authorization: Bearer KEY` as
the SDK sends it); a wrong one is answered 401, echoing it.
"""

from __future__ import annotations

import json
from typing import Any

from fake_llm import API_KEY, USAGE, Scripted, block
from http_fakes import FakeServer, Reply, Request, ServedFake

MESSAGES_PATH = "/v1/messages"
CRITIQUE = "proposal_critique"


def error_body(status: int, message: str) -> bytes:
    kind = "api_error" if status >= 500 else "invalid_request_error"
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


class FakeAnthropic(ServedFake):
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.script: list[Scripted | int] = []  # an int: an HTTP error status
        self.server = FakeServer(self.route)

    @property
    def base_url(self) -> str:
        return self.url

    def answer(self, value: Scripted) -> None:
        self.script.append(value)

    def fail(self, status: int, times: int = 1) -> None:
        self.script.extend([status] * times)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The JSON bodies of the drafting requests (critiques answer clean and are left out)."""
        return [body for request in self.server.requests if request.path == MESSAGES_PATH
                and (body := request.json()).get("tool_choice", {}).get("name") != CRITIQUE]

    def route(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != MESSAGES_PATH:
            return Reply(404, error_body(404, f"Not found ({request.method} {request.path})"))
        received = request.headers.get("x-api-key") or request.headers.get("authorization")
        if received not in (self.api_key, f"Bearer {self.api_key}"):
            return Reply(401, error_body(401, f"invalid API key: {received}"))
        body = request.json()
        tools, choice = body.get("tools") or [], body.get("tool_choice") or {}
        if len(tools) != 1 or choice != {"type": "tool", "name": tools[0]["name"]}:
            return Reply(400, error_body(400, "this server answers only one tool call, forced by tool_choice"))
        name = tools[0]["name"]
        if name == CRITIQUE:
            value: Any = {"findings": []}
        elif not self.script:
            return Reply(500, error_body(500, "no scripted answer left"))
        else:
            value = self.script.pop(0)
        if isinstance(value, int):
            return Reply(value, error_body(value, "scripted failure"),
                         {"Content-Type": "application/json", "retry-after-ms": "1"})
        if callable(value):
            user = next(message["content"] for message in body["messages"] if message["role"] == "user")
            text = user if isinstance(user, str) else "".join(part.get("text", "") for part in user)
            value = value(json.loads(block(text, "evidence") or "null"))
        return Reply.json({
            "id": f"msg_{len(self.server.requests)}", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "tool_use", "id": f"toolu_{len(self.server.requests)}", "name": name, "input": value}],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": USAGE["prompt_tokens"], "output_tokens": USAGE["completion_tokens"]},
        })
