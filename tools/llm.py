"""Structured answers from the chat model an `[llm]` table names, through LangChain's chat-model interface.

The default provider, `openai`, is any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server)
through `ChatOpenAI`; other providers come through their `langchain-*` package, an optional extra
(`PROVIDERS`). Structured output is `with_structured_output`, token usage the answer's `usage_metadata`.

The key is read from the environment variable the config names at each call, handed to a chat model that
lives for that call only, and never kept, logged or returned. Timeouts and retries are the provider SDK's,
set from the config: it retries timeouts, connection errors, 408, 409, 429 and 5xx with exponential backoff,
honouring the server's `retry-after-ms` / `Retry-After`. A semaphore bounds the requests in flight.
Whatever goes wrong ends in `LLMError`, whose short `reason` a caller can record.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from weightkeeper.config import LLMSettings
from weightkeeper.errors import WeightkeeperError
from weightkeeper.secrets import scrub
from weightkeeper.words import counted

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

# The statuses the SDKs retry (with timeouts and connection errors); others fail at once.
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


@dataclass(frozen=True, slots=True)
class Provider:
    """How one `[llm] provider` is reached: its LangChain package, the SDK whose errors it raises, the chat
    model for one call, and the structured-output request its servers honour."""

    package: str  # the distribution, for the install hint
    module: str  # the module that package installs
    extra: str | None  # weightkeeper's optional extra that brings it; None: a dependency
    sdk: str  # the provider SDK, whose APITimeoutError / APIConnectionError / APIStatusError reach us
    build: Callable[[ModuleType, LLMSettings, str | None], BaseChatModel]
    method: str  # with_structured_output's method
    schema: Callable[[str, dict[str, Any]], dict[str, Any]]  # (name, JSON schema) -> what with_structured_output takes
    cut_off: tuple[str, ...] = ()  # SDK exceptions meaning the answer ran out of tokens


def _openai_model(module: ModuleType, settings: LLMSettings, key: str | None) -> BaseChatModel:
    import openai

    # An endpoint that needs no key gets a placeholder (the SDK refuses to build a client without one) and each
    # request leaves the Authorization header out; an explicit key also keeps OPENAI_API_KEY from being read.
    no_authorization = {} if key else {"extra_headers": {"Authorization": openai.omit}}
    return module.ChatOpenAI(
        model=settings.model, base_url=settings.base_url, api_key=key or "no-key",
        timeout=settings.timeout_seconds, max_retries=settings.max_retries,
        # An HTTP client of this call's own, closed with it: no connection outlives the call.
        http_async_client=openai.DefaultAsyncHttpxClient(), model_kwargs=no_authorization)


def _anthropic_model(module: ModuleType, settings: LLMSettings, key: str | None) -> BaseChatModel:
    options = {"base_url": settings.base_url} if settings.base_url else {}
    return module.ChatAnthropic(model=settings.model, api_key=key, default_request_timeout=settings.timeout_seconds,
                                max_retries=settings.max_retries, **options)


PROVIDERS: dict[str, Provider] = {
    # json_schema (`response_format`) is the one structured-output request that vLLM, Ollama (0.5+) and llama.cpp
    # server all enforce by constrained decoding with no server flag; forced tool calls need flags (vLLM,
    # llama.cpp) or are not honoured (Ollama ignores tool_choice), and json_mode enforces no schema.
    "openai": Provider("langchain-openai", "langchain_openai", None, "openai", _openai_model, "json_schema",
                       lambda name, schema: {"name": name, "schema": schema, "strict": True},
                       cut_off=("LengthFinishReasonError",)),
    # Claude answers a forced tool call with the schema as the tool's input.
    "anthropic": Provider("langchain-anthropic", "langchain_anthropic", "anthropic", "anthropic", _anthropic_model,
                          "function_calling", lambda name, schema: {"title": name, "description": name, **schema}),
}


class LLMClient:
    """Structured chat completions from the provider of an `[llm]` table. Use within one event loop."""

    def __init__(self, settings: LLMSettings) -> None:
        """Raises LLMError, saying what to install, when the provider's package is missing: a setup to fix before
        drafting, not a call that failed."""
        self.settings = settings
        self.provider = PROVIDERS[settings.provider]
        self._module = _provider_module(self.provider)
        self._sdk = importlib.import_module(self.provider.sdk)
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def structured(self, *, system: str, user: str, schema_name: str, schema: dict[str, Any]) -> Answer:
        """The model's answer to `user` under `system`, as an object matching `schema` (structured output)."""
        from langchain_core.messages import HumanMessage, SystemMessage

        settings, provider = self.settings, self.provider
        key = self._key()
        async with self._slots:
            model = provider.build(self._module, settings, key)
            runnable = model.with_structured_output(provider.schema(schema_name, schema), method=provider.method,
                                                    include_raw=True)
            try:
                result = await runnable.ainvoke([SystemMessage(system), HumanMessage(user)])
            except Exception as exc:
                failure = _failure(exc, self._sdk, provider, settings)
                if failure is None:
                    raise
                raise failure from exc
            finally:
                await _close(model)
        return _answer(result, settings)

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


def _provider_module(provider: Provider) -> ModuleType:
    """The provider's LangChain package, or an LLMError that says how to install it."""
    try:
        return importlib.import_module(provider.module)
    except ImportError as exc:
        install = (f"pip install 'weightkeeper[{provider.extra}]' (or pip install {provider.package})"
                   if provider.extra else f"pip install {provider.package}")
        raise LLMError(f"{provider.package} is not installed", f"[llm] provider needs it: {install}") from exc


async def _close(model: BaseChatModel) -> None:
    """Close the HTTP client the call's chat model opened, so no connection outlives the call."""
    client = getattr(model, "http_async_client", None)
    if client is not None:
        await client.aclose()


def _failure(exc: Exception, sdk: ModuleType, provider: Provider, settings: LLMSettings) -> LLMError | None:
    """The LLMError for what the provider's SDK raised; None for anything else, which is a bug to show as it is."""
    where = settings.base_url or f"the {settings.provider} API"
    attempts = counted(settings.max_retries + 1, "attempt")
    if isinstance(exc, sdk.APITimeoutError):
        return LLMError(f"timed out after {attempts} of {settings.timeout_seconds:g} s",
                        f"{where} did not answer in time; raise [llm] timeout_seconds or check the server")
    if isinstance(exc, sdk.APIConnectionError):
        return LLMError(f"could not connect after {attempts}", f"is the server at {where} running? ({exc})")
    if isinstance(exc, sdk.APIStatusError):
        retried = exc.status_code in _RETRIED_STATUSES or exc.status_code >= 500
        return LLMError(f"HTTP {exc.status_code}" + (f" after {attempts}" if retried else ""),
                        f"{where} answered: {exc.message}")
    if any(isinstance(exc, getattr(sdk, name)) for name in provider.cut_off):
        return _cut_off(settings)
    return None


def _cut_off(settings: LLMSettings) -> LLMError:
    return LLMError("the answer was cut off", f"{settings.model} ran out of tokens before finishing the JSON")


def _answer(result: dict[str, Any], settings: LLMSettings) -> Answer:
    """The Answer from `with_structured_output(include_raw=True)`'s {raw, parsed, parsing_error}."""
    from langchain_core.exceptions import ModelRefusalError

    raw, value, error = result["raw"], result["parsed"], result["parsing_error"]
    metadata = raw.response_metadata
    if metadata.get("finish_reason") == "length" or metadata.get("stop_reason") == "max_tokens":
        raise _cut_off(settings)
    if isinstance(error, ModelRefusalError):
        raise LLMError("the model refused", str(error)[:200])
    if error is not None:
        raise LLMError("the answer is not JSON", f"{settings.model} may not support structured output: {error}")
    if not isinstance(value, dict):
        raise LLMError("the answer is not a JSON object", f"{settings.model} answered {type(value).__name__}")
    usage = raw.usage_metadata
    # Named as drafts have always recorded them.
    tokens = ({"prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"],
               "total_tokens": usage["total_tokens"]} if usage else {})
    return Answer(value, tokens)
