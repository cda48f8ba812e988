"""HTTP for whatever speaks to a service with `httpx` (the registry adapters, the publishers, the archive's
sources): retries, rate limits, clear errors.

A registry that does not answer properly raises `RegistryUnavailable`, never an empty
answer: connection errors, timeouts, resets, 5xx, truncated or malformed JSON, and 429
once its waits run out. 429 and 503 are honoured with the server's own wait (the
`RateLimit` header's `t=`, else `Retry-After`), other transient faults with exponential
backoff. Each wait is reported to `on_wait` so an interactive scan can show it.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import WaitReporter  # noqa: F401  (the adapters import it from here)

if TYPE_CHECKING:  # httpx is imported when a request is sent: the registry kinds are read at every start
    import ssl

    import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# What a server answers again to the same request: a refusal, final, never retried (429 is a wait).
CLIENT_ERRORS = frozenset(range(400, 500)) - RETRY_STATUSES
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    first_backoff: float = 0.5
    max_wait: float = 120.0  # a single wait asked by the server beyond this is not honoured: the scan fails


class HasHeaders(Protocol):
    headers: Mapping[str, str]


def server_wait(response: HasHeaders) -> float | None:
    """Seconds the server asks us to wait: `RateLimit: ...;t=N` (the Hub), `retry-after-ms` (OpenAI), else
    `Retry-After` (seconds or a date)."""
    ratelimit = response.headers.get("RateLimit")
    if ratelimit:
        match = re.search(r"(?:^|[;,\s])t=(\d+(?:\.\d+)?)", ratelimit)
        if match:
            return float(match.group(1))
    milliseconds = response.headers.get("retry-after-ms")
    if milliseconds and milliseconds.strip().replace(".", "", 1).isdigit():
        return float(milliseconds) / 1000
    retry_after = response.headers.get("Retry-After")
    if retry_after is None:
        return None
    if retry_after.strip().replace(".", "", 1).isdigit():
        return float(retry_after)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Transient(Exception):
    """A fault worth another attempt: what went wrong, and the wait the server asked for (None: back off)."""

    def __init__(self, problem: str, wait: float | None = None) -> None:
        super().__init__(problem)
        self.problem, self.wait = problem, wait


def with_retries(attempt: Callable[[], T], *, what: str, policy: RetryPolicy = RetryPolicy(),
                 on_wait: WaitReporter | None = None, sleep: Callable[[float], None] = time.sleep) -> T:
    """`attempt()` until it returns; each `Transient` it raises waits (the server's wait, else exponential
    backoff) and tries again. Out of attempts, or asked to wait too long, the registry is unavailable."""
    problem = ""
    for number in range(1, policy.attempts + 1):
        try:
            return attempt()
        except Transient as exc:
            problem, wait = exc.problem, exc.wait
        if wait is not None and wait > policy.max_wait:
            raise RegistryUnavailable(f"{what}: {problem}; the server asks to wait {wait:.0f} s, "
                                      f"more than the {policy.max_wait:.0f} s allowed; try again later")
        if number == policy.attempts:
            break
        wait = policy.first_backoff * 2 ** (number - 1) if wait is None else wait
        if on_wait:
            on_wait(wait, f"{what}: {problem}")
        sleep(wait)
    raise RegistryUnavailable(f"{what}: {problem} after {policy.attempts} attempts; nothing was concluded")


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    what: str,
    ok_statuses: frozenset[int] = frozenset(),
    policy: RetryPolicy = RetryPolicy(),
    on_wait: WaitReporter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request, retrying transient faults. Returns a 2xx response or one whose status is in
    `ok_statuses` (a 404 that means "gone", say); anything else raises `RegistryUnavailable` naming `what`."""
    return with_retries(lambda: attempt_request(client, method, url, what=what, ok_statuses=ok_statuses, **kwargs),
                        what=what, policy=policy, on_wait=on_wait, sleep=sleep)


def attempt_request(client: httpx.Client, method: str, url: str, *, what: str,
                    ok_statuses: frozenset[int] = frozenset(), **kwargs: Any) -> httpx.Response:
    """One try of `request`, its transient faults raised as `Transient`. For a caller whose retry must redo
    more than the request: a publisher looks again for what an unanswered POST may have created."""
    with transport_faults():
        response = client.request(method, url, **kwargs)
    if response.is_success or response.status_code in ok_statuses:
        return response
    if response.status_code not in RETRY_STATUSES:
        raise RegistryUnavailable(f"{what}: HTTP {response.status_code} {_reason(response)}")
    raise Transient(f"HTTP {response.status_code} {_reason(response)}", server_wait(response))


@contextmanager
def transport_faults(library: Any = None) -> Iterator[None]:
    """A timeout, a refused or reset connection, raised inside as `Transient`: worth another attempt. `library`
    is the HTTP library whose errors those are: httpx, or another of its API (huggingface_hub's httpx2)."""
    if library is None:
        import httpx as library

    try:
        yield
    except library.TimeoutException as exc:
        raise Transient(f"timed out ({type(exc).__name__})") from exc
    except library.TransportError as exc:
        raise Transient(f"connection failed ({type(exc).__name__}: {exc})") from exc
    except library.TooManyRedirects as exc:  # not a transport error: another attempt would go round again
        raise RegistryUnavailable(f"the server's redirects go round in a loop ({exc}); nothing was concluded") from exc


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process for every adapter's client: building one loads the CA bundle (a tenth
    of a second), and httpx would build one per client, even for a plain-HTTP url."""
    import httpx

    return httpx.create_ssl_context()


def json_of(response: httpx.Response, what: str) -> Any:
    """The response's JSON; truncated or malformed text is an unavailable registry, not an empty one."""
    try:
        return decode_json(response.content)
    except ValueError as exc:
        raise RegistryUnavailable(
            f"{what}: the answer is not valid JSON ({exc}); it may have been cut off, nothing was concluded"
        ) from exc


def decode_json(content: bytes) -> Any:
    """JSON text read by orjson, a third faster than `json` on a listing page; what orjson refuses and `json`
    accepts (NaN, a lone surrogate) is read by `json`. orjson reads an integer beyond 64 bits as a float,
    where `json` keeps it exact: no field weightkeeper reads holds one, and listings and lookups read alike."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)


def _reason(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return f"({text[:200]})" if text else f"({response.reason_phrase})"
