"""The adapters' HTTP helper against a real local server: retries, server-asked waits, faults that conclude nothing."""

from __future__ import annotations

import math

import httpx
import pytest

from http_fakes import FakeServer, Fault, Reply
from tools.registries.http import RetryPolicy, decode_json, json_of, request
from weightkeeper.errors import RegistryUnavailable


def answer(req):
    if req.path == "/gone":
        return Reply.json({"error": "not found"}, status=404)
    if req.path == "/bad":
        return Reply.json({"error": "bad request"}, status=400)
    return Reply.json({"models": [1, 2, 3], "padding": "x" * 200})


@pytest.fixture
def server():
    with FakeServer(answer) as fake:
        yield fake


def call(server, path="/models", *, waits=None, attempts=4, **kwargs):
    with httpx.Client(base_url=server.url, timeout=0.5) as client:
        response = request(client, "GET", path, what="listing models", policy=RetryPolicy(attempts=attempts),
                           on_wait=(lambda s, why: waits.append((s, why))) if waits is not None else None,
                           sleep=lambda s: None, **kwargs)
        return json_of(response, "listing models")


def test_transient_faults_are_retried_with_the_servers_own_waits(server) -> None:
    server.faults += [Fault.http(429, {"RateLimit": '"api";r=0;t=7'}), Fault.http(503, {"Retry-After": "3"}),
                      Fault.http(502), Fault.reset()]
    waits = []
    assert call(server, waits=waits, attempts=5)["models"] == [1, 2, 3]
    assert [seconds for seconds, _ in waits] == [7.0, 3.0, 2.0, 4.0]  # RateLimit t=, Retry-After, then backoff
    assert "HTTP 429" in waits[0][1] and "connection failed" in waits[3][1]
    assert len(server.requests) == 5


@pytest.mark.parametrize("fault", [Fault.http(500), Fault.timeout(), Fault.reset()], ids=["500", "timeout", "reset"])
def test_a_registry_that_keeps_failing_is_unavailable_never_empty(server, fault) -> None:
    server.hang_seconds = 1.0
    server.faults += [fault] * 2
    with pytest.raises(RegistryUnavailable, match="listing models: .* after 2 attempts; nothing was concluded"):
        call(server, attempts=2)


def test_truncated_json_is_retried_as_a_broken_connection(server) -> None:
    server.faults.append(Fault.truncated())
    assert call(server)["models"] == [1, 2, 3]
    assert len(server.requests) == 2


def test_malformed_json_is_unavailable(server) -> None:
    server.faults.append(Fault.http(200, body=b'{"models": [1, 2'))
    with pytest.raises(RegistryUnavailable, match="not valid JSON .* cut off"):
        call(server)


def test_client_errors_fail_at_once_and_an_expected_status_is_returned(server) -> None:
    with pytest.raises(RegistryUnavailable, match=r"HTTP 400 \(.*bad request"):
        call(server, "/bad")
    assert len(server.requests) == 1
    assert call(server, "/gone", ok_statuses=frozenset({404})) == {"error": "not found"}


def test_a_wait_longer_than_allowed_fails_instead_of_hanging(server) -> None:
    server.faults.append(Fault.http(429, {"Retry-After": "3600"}))
    with pytest.raises(RegistryUnavailable, match="asks to wait 3600 s"):
        call(server)


def test_json_orjson_refuses_is_read_as_the_json_module_reads_it() -> None:
    assert math.isnan(decode_json(b'{"emissions": NaN}')["emissions"])
    assert decode_json(b'["\\ud800"]') == ["\ud800"]
    assert decode_json('["caf\u00e9", 1, {"a": null}]'.encode()) == ["caf\u00e9", 1, {"a": None}]
    with pytest.raises(ValueError, match="Expecting"):
        decode_json(b'[{"id": "a/b"}, {"id": ')
