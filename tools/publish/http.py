"""What the channels that publish over HTTP share: the registries' retries, and giving up as a PublishError."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx

from tools.publish import PublishError
from tools.registries.http import RetryPolicy, tls_context, with_retries
from weightkeeper import __version__
from weightkeeper.errors import RegistryUnavailable

USER_AGENT = f"weightkeeper/{__version__}"
T = TypeVar("T")


def retried(attempt: Callable[[], T], *, what: str, policy: RetryPolicy) -> T:
    """`attempt()` under `with_retries` (429 and 5xx with the server's wait, timeouts, resets); a channel that
    cannot be reached, or answers what cannot be read, is a PublishError naming `what`."""
    try:
        return with_retries(attempt, what=what, policy=policy)
    except RegistryUnavailable as exc:
        raise PublishError(str(exc)) from exc


def client(headers: dict[str, str], timeout: float) -> httpx.Client:
    """A client for one publish: the token in its headers lives no longer than the call."""
    return httpx.Client(headers={"User-Agent": USER_AGENT, **headers}, timeout=timeout, verify=tls_context())


def server_says(response: httpx.Response) -> str:
    """The server's own explanation of a refusal: a JSON `message` or `error`, else the start of its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message") or body.get("error"), str):
        return str(body.get("message") or body.get("error"))
    return response.text.strip().replace("\n", " ")[:200] or response.reason_phrase
