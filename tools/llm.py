"""A client for any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server) that asks
for answers shaped by a JSON schema.

The key is read from the environment variable the config names at each call, handed to a client that
lives for that call only, and never kept, logged or returned. Timeouts and retries are the `openai`
SDK's, set from the config: it retries timeouts, connection errors, 408, 409, 429 and 5xx with
exponential backoff, honouring the server's `retry-after-ms` / `Retry-After`. A semaphore bounds the
requests in flight. Whatever goes wrong ends in `LLMError`, whose short `reason` a caller can record.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from weightkeeper.config import LLMSettings
from weightkeeper.errors import WeightkeeperError
from weightkeeper.secrets import scrub
from weightkeeper.words import counted

# The SDK refuses to build a client without a key; for an endpoint that needs none it gets this
# placeholder, and each request leaves the Authorization header out.
_NO_KEY = "no-key"
_NO_AUTHORIZATION = {"Authorization": openai.omit}
# The statuses the SDK retries (with timeouts and connection errors); others fail at once.
_RETRIED_STATUSES = frozenset({408, 409, 429})


class LLMError(WeightkeeperError):
    """The endpoint gave no usable answer. `reason` is short enough for a draft to record."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(scrub(f"{reason}; {hint}"))  # the hint may quote the server, which may quote the key
        self.reason = scrub(reason)


@dataclass(frozen=True, slots=True)
class Answer:
    value: dict[str, Any]  # the JSON object the model answered, as parsed
    usage: dict[str, int]  # prompt_tokens, completion_tokens, total_tokens; empty if the server did not say


class LLMClient:
    """Structured chat completions from the endpoint of an `[llm]` table. Use within one event loop."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def structured(self, *, system: str, user: str, schema_name: str, schema: dict[str, Any]) -> Answer:
        """The model's answer to `user` under `system`, as an object matching `schema` (strict structured
        output: `response_format={"type": "json_schema", ...}`)."""
        settings = self.settings
        attempts = counted(settings.max_retries + 1, "attempt")
        key = self._key()
        async with self._slots, self._client(key) as client:
            try:
                completion = await client.chat.completions.create(
                    model=settings.model,
                    messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                    response_format={"type": "json_schema",
                                     "json_schema": {"name": schema_name, "schema": schema, "strict": True}},
                    extra_headers=None if key else _NO_AUTHORIZATION,
                )
            except openai.APITimeoutError as exc:
                raise LLMError(f"timed out after {attempts} of {settings.timeout_seconds:g} s",
                               f"{settings.base_url} did not answer in time; raise [llm] timeout_seconds "
                               "or check the server") from exc
            except openai.APIConnectionError as exc:
                raise LLMError(f"could not connect after {attempts}",
                               f"is the server at {settings.base_url} running? ({exc})") from exc
            except openai.APIStatusError as exc:
                retried = exc.status_code in _RETRIED_STATUSES or exc.status_code >= 500
                raise LLMError(f"HTTP {exc.status_code}" + (f" after {attempts}" if retried else ""),
                               f"{settings.base_url} answered: {exc.message}") from exc
        return _answer(completion, settings)

    def _key(self) -> str | None:
        """The key in the variable `api_key_env` names, read now; None when the endpoint needs none."""
        name = self.settings.api_key_env
        if name is None:
            return None
        key = os.environ.get(name)
        if not key:
            raise LLMError(f"{name} is not set", f"export {name} with the endpoint's API key, or remove "
                                                 "api_key_env from [llm] if the endpoint needs none")
        return key

    def _client(self, key: str | None) -> openai.AsyncOpenAI:
        """A client for one call, so the key lives no longer than the call."""
        return openai.AsyncOpenAI(base_url=self.settings.base_url, api_key=key or _NO_KEY,
                                  timeout=self.settings.timeout_seconds, max_retries=self.settings.max_retries)


def _answer(completion: ChatCompletion, settings: LLMSettings) -> Answer:
    if not completion.choices:
        raise LLMError("empty answer", f"{settings.model} returned no choices")
    choice = completion.choices[0]
    if choice.message.refusal:
        raise LLMError("the model refused", choice.message.refusal[:200])
    if choice.finish_reason == "length":
        raise LLMError("the answer was cut off", f"{settings.model} ran out of tokens before finishing the JSON")
    try:
        value = json.loads(choice.message.content or "")
    except ValueError as exc:
        raise LLMError("the answer is not JSON", f"{settings.model} may not support structured output "
                                                 f"(response_format json_schema): {exc}") from exc
    if not isinstance(value, dict):
        raise LLMError("the answer is not a JSON object", f"{settings.model} answered {type(value).__name__}")
    usage = completion.usage
    tokens = ({"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
               "total_tokens": usage.total_tokens} if usage else {})
    return Answer(value, tokens)
