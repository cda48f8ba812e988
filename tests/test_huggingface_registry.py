"""The Hugging Face Hub adapter against a fake Hub that speaks the real wire format, scanned into a real ledger.

The fake is checked against `huggingface_hub` itself first (the library reads its listings, trees and
errors as it reads the Hub's), then the adapter is driven by the real `Scanner`: nothing of the
project's own code is replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from huggingface_hub import HfApi
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.errors import DisabledRepoError, RepositoryNotFoundError
from huggingface_hub.utils import build_hf_headers

from fake_hub import FakeHub
from http_fakes import Fault, Request
from ledger_reading import query
from registry_fakes import MemoryCache
from tools.registries import open_registry
from tools.registries.http import RetryPolicy
from tools.registries.huggingface import EXPAND, HubRegistry
from weightkeeper.config import RegistryConfig
from weightkeeper.domain import (
    Card,
    FileEntry,
    Found,
    Gone,
    Hidden,
    Lineage,
    ModelRecord,
    RecordProblem,
    Visibility,
    Withdrawn,
)
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.queries import stats
from weightkeeper.ledger.store import LedgerAdapterCache, LedgerDigestCache
from weightkeeper.scan import Scanner, ScanResult

TOKEN = "hf_wkTestToken0123456789abcdef"  # reads acme's private repos: a member's
OUTSIDER = "hf_wkOutsiderToken0123456789ab"  # reads another org's, not acme's
POLICY = RetryPolicy(attempts=3, first_backoff=0.01)
TIMEOUT = 0.3
LLAMA = "meta-llama/Llama-3.1-8B"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def hub():
    with FakeHub(page_size=2, tokens={TOKEN: {"acme"}, OUTSIDER: {"other-lab"}}) as fake:
        fake.server.hang_seconds = 2 * TIMEOUT
        yield fake


def adapter(hub: FakeHub, *, token: str | None = None, author: str | None = "acme", search: str | None = None,
            filter: str | None = None, files: str | None = None, cache: Any = None,
            waits: list[tuple[float, str]] | None = None, policy: RetryPolicy = POLICY,
            timeout: float = TIMEOUT) -> HubRegistry:
    return HubRegistry(hub.url, author=author, search=search, filter=filter, files=files, token=token,
                       cache=cache if cache is not None else MemoryCache(),
                       on_wait=None if waits is None else lambda seconds, why: waits.append((seconds, why)),
                       policy=policy, timeout=timeout)


def listed(registry: HubRegistry) -> list[ModelRecord | RecordProblem]:
    return [record for page in registry.pages(None) for record in registry.records(page)]


def scan(ledger_path: Path, hub: FakeHub, **options: Any) -> ScanResult:
    """One real scan of the fake Hub into the ledger at `ledger_path`."""
    config = RegistryConfig("hub", "hf", {"endpoint": hub.url, "author": "acme"})
    with Ledger(ledger_path) as ledger:
        cache = LedgerAdapterCache(ledger, ledger.registry_id(config.name, config.kind, config.location))
        return Scanner(ledger, config, adapter(hub, cache=cache, **options)).run()


def events(ledger_path: Path, scan_id: int | None) -> list[tuple[str, str, dict]]:
    """(kind, model name at the event, detail) of one scan's events, in order."""
    rows = query(ledger_path, "SELECT e.kind, COALESCE(o.name, m.name) AS model, e.detail FROM events e"
                              " LEFT JOIN models m ON m.id = e.model_id LEFT JOIN observations o"
                              " ON o.id = e.observation_id WHERE e.scan_id = ? ORDER BY e.id", (scan_id,))
    return [(row["kind"], row["model"], json.loads(row["detail"])) for row in rows]


def state(ledger_path: Path, name: str) -> tuple[str, str]:
    row = query(ledger_path, "SELECT state, visibility FROM models WHERE name = ?", (name,))[0]
    return row["state"], row["visibility"]


def url_of(request: Request) -> tuple[str, dict[str, list[str]]]:
    return request.path, request.query


def parsed(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query, keep_blank_values=True)


def add_three(hub: FakeHub) -> None:
    for name in ("acme/alpha", "acme/beta", "acme/gamma"):
        hub.add(name, card_data={"license": "apache-2.0"})


# -- the fake Hub is read by huggingface_hub as the Hub is ------------------------------------------


def test_the_fake_hub_speaks_what_huggingface_hub_reads(hub: FakeHub) -> None:
    hub.add("acme/alpha", card_data={"base_model": LLAMA}, tags=[f"base_model:finetune:{LLAMA}"], gated="manual",
            files={"config.json": b"{}", "weights/model.safetensors": b"w" * 10})
    for name in ("acme/beta", "acme/gamma", "other/delta"):
        hub.add(name)
    api = HfApi(endpoint=hub.url, token=False)

    models = list(api.list_models(author="acme", expand=["sha", "gated", "cardData"]))
    assert [m.id for m in models] == ["acme/alpha", "acme/beta", "acme/gamma"]  # over two pages, by Link
    assert models[0].gated == "manual" and models[0].card_data.base_model == LLAMA and models[0].sha
    assert models[0]._id == hub.repos["acme/alpha"].key
    assert models[0].downloads is None  # not expanded, not sent
    files = {f.path: f for f in api.list_repo_tree("acme/alpha", recursive=True) if isinstance(f, RepoFile)}
    assert files["weights/model.safetensors"].lfs.sha256 == hashlib.sha256(b"w" * 10).hexdigest()

    hub.rename("acme/beta", "acme/beta-v2")
    assert api.model_info("acme/beta").id == "acme/beta-v2"  # the session follows the Hub's redirect
    hub.update("acme/gamma", disabled=True)
    with pytest.raises(DisabledRepoError):
        api.model_info("acme/gamma")
    with pytest.raises(RepositoryNotFoundError) as anonymous:
        api.model_info("acme/never-was")
    assert anonymous.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError) as authenticated:
        HfApi(endpoint=hub.url, token=TOKEN).model_info("acme/never-was")
    assert authenticated.value.response.status_code == 404
    assert authenticated.value.response.headers["X-Error-Code"] == "RepoNotFound"


# -- the listing ---------------------------------------------------------------------------------


def test_the_listing_asks_what_list_models_asks_and_sends_no_ambient_token(
        hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_ambientTokenThatMustNotBeSent")
    assert "authorization" in build_hf_headers()  # huggingface_hub would pick it up by default
    hub.add("acme/llama-tuned", tags=[f"base_model:finetune:{LLAMA}", f"base_model:{LLAMA}"])
    hub.add("acme/llama-other")
    hub.add("acme/mistral-tuned", tags=[f"base_model:finetune:{LLAMA}"])
    hub.add("zeta/llama-tuned", tags=[f"base_model:finetune:{LLAMA}"])
    scope = {"author": "acme", "search": "llama", "filter": f"base_model:finetune:{LLAMA}"}

    records = listed(adapter(hub, **scope))
    assert [r.name for r in records] == ["acme/llama-tuned"]
    ours = hub.requests_to("/api/models")[0]
    assert all("authorization" not in r.headers for r in hub.server.requests)

    hub.server.requests.clear()
    list(HfApi(endpoint=hub.url, token=False).list_models(**scope, limit=1000, expand=list(EXPAND)))
    theirs = hub.requests_to("/api/models")[0]
    assert ours.query == theirs.query
    assert ours.query["limit"] == ["1000"] and ours.query["filter"] == [scope["filter"]]

    hub.server.requests.clear()
    listed(adapter(hub, token=TOKEN, **scope))
    assert {r.headers["authorization"] for r in hub.server.requests} == {f"Bearer {TOKEN}"}


def test_pages_follow_the_link_header_and_resume_from_a_pages_link(hub: FakeHub) -> None:
    for index in range(5):
        hub.add(f"acme/model-{index}")
    registry = adapter(hub)
    pages = list(registry.pages(None))
    assert [len(page.items) for page in pages] == [2, 2, 1]
    assert pages[-1].cursor is None
    requests = hub.requests_to("/api/models")
    for page, following in zip(pages, requests[1:]):
        assert parsed(page.cursor) == url_of(following)  # each cursor is the next request, as the Hub linked it

    hub.server.requests.clear()
    resumed = [record.name for page in registry.pages(pages[0].cursor) for record in registry.records(page)]
    assert resumed == ["acme/model-2", "acme/model-3", "acme/model-4"]
    assert url_of(hub.requests_to("/api/models")[0]) == parsed(pages[0].cursor)


def test_a_hub_of_built_pages_lists_as_it_is_now_after_each_change_and_each_page_takes_its_delay() -> None:
    """The benchmarks' Hub: pages built at a listing's first request, and a round trip's delay per page."""
    with FakeHub(page_size=2, built_pages=True, page_delay=0.02) as hub:
        for index in range(5):
            hub.add(f"acme/model-{index}")
        hub.add("beta/model-0")
        registry = adapter(hub)
        started = time.monotonic()
        pages = list(registry.pages(None))
        assert time.monotonic() - started >= 3 * 0.02
        assert [record.name for page in pages for record in registry.records(page)] == [
            f"acme/model-{index}" for index in range(5)]
        hub.delete("acme/model-2")
        hub.rename("acme/model-3", "acme/model-9")
        assert [record.name for record in listed(registry)] == ["acme/model-0", "acme/model-1", "acme/model-9",
                                                                "acme/model-4"]
        # A cursor of the pages built before the changes lists what follows it now.
        assert [record.name for page in registry.pages(pages[0].cursor) for record in registry.records(page)] == [
            "acme/model-9", "acme/model-4"]


def test_a_next_link_off_the_endpoint_is_not_followed(hub: FakeHub) -> None:
    add_three(hub)
    foreign = "http://198.51.100.7/api/models?cursor=abc"
    hub.server.faults.append(Fault.http(200, {"Link": f'<{foreign}>; rel="next"', "Content-Type": "application/json"},
                                        b"[]"))
    registry = adapter(hub, token=TOKEN)
    with pytest.raises(RegistryUnavailable, match="198.51.100.7, off .* not followed"):
        list(registry.pages(None))
    # A cursor stored before the endpoint changed: this endpoint is listed from the start.
    hub.server.requests.clear()
    assert [r.name for page in registry.pages(foreign) for r in registry.records(page)] == [
        "acme/alpha", "acme/beta", "acme/gamma"]
    assert "cursor" not in hub.requests_to("/api/models")[0].query


def test_records_read_every_field_as_the_hub_sends_it(hub: FakeHub) -> None:
    card = {"license": "llama3.1", "base_model": LLAMA, "datasets": ["acme/chats"], "new_version": "acme/tuned-2",
            "co2_eq_emissions": {"emissions": 120.5, "source": "codecarbon"}}
    tuned = hub.add("acme/tuned", card_data=card, gated="auto", downloads=42, likes=7, pipeline_tag="text-generation",
                    library_name="peft", tags=["peft", f"base_model:adapter:{LLAMA}", "base_model:quantized:acme/q"])
    hub.add("acme/merged", card_data={"base_model": ["acme/a", "acme/b"]}, tags=[])
    hub.add("acme/bare", card_data=None, tags=[], library_name=None)

    records = {r.name: r for r in listed(adapter(hub))}
    record = records["acme/tuned"]
    assert (record.key, record.revision, record.visibility) == (tuned.key, tuned.sha, Visibility.GATED)
    assert (record.created_at, record.last_modified) == (tuned.created_at, tuned.last_modified)  # as sent: ISO 8601
    assert (record.downloads, record.likes, record.successor) == (42, 7, "acme/tuned-2")
    # The tag's relation wins over the card's default; a base only the tags name is kept too.
    assert record.lineage == (Lineage(LLAMA, "adapter"), Lineage("acme/q", "quantized"))
    assert isinstance(record.card, Card)
    assert (record.card.license, record.card.datasets, record.card.emissions) == (
        "llama3.1", ("acme/chats",), {"emissions": 120.5, "source": "codecarbon"})
    assert record.extra == {"tags": tuned.tags, "pipeline_tag": "text-generation", "library_name": "peft"}
    assert record.files == ()  # no `files` glob: no file list
    assert records["acme/merged"].lineage == (Lineage("acme/a", "merge"), Lineage("acme/b", "merge"))
    bare = records["acme/bare"]
    assert (bare.card, bare.lineage, bare.visibility, bare.extra["library_name"]) == (None, (), Visibility.PUBLIC, None)


@pytest.mark.parametrize("item, expected", [
    ({"_id": "66a0000000000000000000f1", "id": "acme/bad-date", "lastModified": "yesterday"}, "yesterday"),
    ({"_id": "66a0000000000000000000f2", "sha": "abc"}, "not a name"),
    ({"id": "acme/no-key", "_id": None}, "no `_id`"),
    ({"_id": "66a0000000000000000000f3", "id": "acme/odd-card", "cardData": ["not", "a", "mapping"]}, "cardData"),
    ({"_id": "66a0000000000000000000f4", "id": "acme/bad-relation",
      "cardData": {"base_model": "x/y", "base_model_relation": "fork"}}, "base_model_relation"),
    ({"_id": "66a0000000000000000000f5", "id": "acme/odd-base", "cardData": {"base_model": 5}},
     "base_model must be a model name"),
], ids=["bad-date", "no-id", "no-key", "card-not-mapping", "bad-relation", "base-model-not-a-name"])
def test_an_unreadable_item_is_a_problem(hub: FakeHub, item: dict, expected: str) -> None:
    hub.add("acme/fine")
    hub.add_raw(item)
    records = listed(adapter(hub))
    assert [r.name for r in records if isinstance(r, ModelRecord)] == ["acme/fine"]
    [problem] = [r for r in records if isinstance(r, RecordProblem)]
    assert expected in problem.message
    assert problem.name == item.get("id") or "_id" in problem.name


def test_transient_faults_are_retried_with_the_hubs_own_waits(hub: FakeHub) -> None:
    for index in range(3):
        hub.add(f"acme/model-{index}")
    hub.server.faults += [
        Fault.http(429, {"RateLimit": '"api";r=0;t=0', "Retry-After": "30"}),  # RateLimit's t= comes first
        Fault.http(503, {"Retry-After": "0"}), Fault.http(502), Fault.reset(), Fault.timeout(), Fault.truncated(),
    ]
    waits: list[tuple[float, str]] = []
    records = listed(adapter(hub, waits=waits, policy=RetryPolicy(attempts=7, first_backoff=0.01)))
    assert [r.name for r in records] == ["acme/model-0", "acme/model-1", "acme/model-2"]
    assert [seconds for seconds, _ in waits] == [0.0, 0.0, 0.04, 0.08, 0.16, 0.32]
    reasons = [why for _, why in waits]
    for reason, expected in zip(reasons, ["HTTP 429", "HTTP 503", "HTTP 502", "connection failed", "timed out",
                                          "connection failed"]):
        assert expected in reason and "listing models at" in reason


@pytest.mark.parametrize("faults, expected", [
    ([Fault.http(500)] * 3, "HTTP 500 .* after 3 attempts"),
    ([Fault.reset()] * 3, "connection failed .* after 3 attempts"),
    ([Fault.timeout()] * 3, "timed out .* after 3 attempts"),
    ([Fault.truncated()] * 3, "after 3 attempts"),
    ([Fault.http(200, {"Content-Type": "application/json"}, b'[{"_id": "66a0", "id": "acme/x"')], "not valid JSON"),
    ([Fault.http(200, {"Content-Type": "application/json"}, b'{"error": "maintenance"}')], "expected a JSON array"),
    ([Fault.http(429, {"RateLimit": '"api";r=0;t=3600'})], "asks to wait 3600 s"),
], ids=["500", "reset", "timeout", "truncated", "malformed", "not-a-list", "long-rate-limit"])
def test_a_listing_that_cannot_be_read_is_unavailable_never_short(hub: FakeHub, faults: list, expected: str) -> None:
    add_three(hub)
    hub.server.faults += faults
    with pytest.raises(RegistryUnavailable, match=expected):
        listed(adapter(hub))


# -- lookups -------------------------------------------------------------------------------------


@pytest.mark.parametrize("token, prepare, expected", [
    (TOKEN, lambda hub: hub.delete("acme/alpha"), Gone("404 RepoNotFound to the token of alice, which reads acme's")),
    (OUTSIDER, lambda hub: hub.delete("acme/alpha"),
     Withdrawn("404 RepoNotFound to the token of alice, which does not read acme's private repos")),
    (OUTSIDER, lambda hub: hub.update("acme/alpha", private=True),
     Withdrawn("404 RepoNotFound to the token of alice, which does not read acme's private repos")),
    (None, lambda hub: hub.delete("acme/alpha"), Withdrawn("401 RepoNotFound to an anonymous request")),
    (None, lambda hub: hub.update("acme/alpha", private=True), Withdrawn("401 RepoNotFound to an anonymous request")),
    (None, lambda hub: hub.update("acme/alpha", disabled=True), Hidden(Visibility.DISABLED, "")),
    (None, lambda hub: hub.server.faults.append(Fault.http(
        403, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to model acme/alpha is restricted."})),
     Hidden(Visibility.GATED, "")),
    (TOKEN, lambda hub: hub.server.faults.append(Fault.http(403, {"X-Error-Message": "Forbidden"})),
     Hidden(Visibility.DISABLED, "")),
    (None, lambda hub: hub.update("acme/alpha", gated="manual"), Visibility.GATED),
], ids=["deleted-member-token", "deleted-outsider-token", "private-outsider-token", "deleted-anonymously",
        "private-anonymously", "disabled", "gated-error", "forbidden", "gated"])
def test_lookup_reads_the_hubs_answers(hub: FakeHub, token: str | None, prepare: Callable, expected: Any) -> None:
    """Only a 404 to a token that reads the owner's namespace means gone: anonymously (401) and to a token of
    another namespace (404) the Hub answers alike for a private repo and a deleted one."""
    hub.add("acme/alpha")
    prepare(hub)
    answer = adapter(hub, token=token).lookup("acme/alpha")
    if isinstance(expected, Gone | Withdrawn):
        assert type(answer) is type(expected) and expected.reason in answer.reason
    elif isinstance(expected, Hidden):
        assert isinstance(answer, Hidden) and answer.visibility == expected.visibility
    else:
        assert isinstance(answer, Found) and answer.record.visibility == expected


@pytest.mark.parametrize("faults, expected", [
    ([Fault.http(404, {"Content-Type": "text/html"}, b"<html>not found</html>")], "HTTP 404"),
    ([Fault.http(502)] * 3, "HTTP 502 after 3 attempts"),
    ([Fault.timeout()] * 3, "timed out .* after 3 attempts"),
    ([Fault.http(200, {"Content-Type": "application/json"}, b'{"_id": "66a0", "id": ')], "cannot be read"),
    ([Fault.http(401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})],
     "HTTP 401 Repository not found to a request with a token"),
], ids=["404-without-error-code", "5xx", "timeout", "truncated-json", "401-to-a-token"])
def test_a_lookup_that_says_nothing_about_the_model_concludes_nothing(hub: FakeHub, faults: list,
                                                                      expected: str) -> None:
    hub.add("acme/alpha")
    hub.server.faults += faults
    with pytest.raises(RegistryUnavailable, match=expected):
        adapter(hub, token=TOKEN).lookup("acme/alpha")


def test_redirects_in_a_loop_conclude_nothing(hub: FakeHub) -> None:
    hub.add("acme/beta")
    hub.redirects.update({"acme/alpha": "acme/gamma", "acme/gamma": "acme/alpha"})
    with pytest.raises(RegistryUnavailable, match="redirects go round in a loop"):
        adapter(hub, token=TOKEN).lookup("acme/alpha")


def test_a_repo_renamed_back_to_a_name_it_had_serves_that_name(hub: FakeHub) -> None:
    hub.add("acme/alpha")
    hub.rename("acme/alpha", "acme/beta")
    hub.rename("acme/beta", "acme/alpha")
    answer = adapter(hub, token=TOKEN).lookup("acme/alpha")
    assert isinstance(answer, Found) and answer.record.name == "acme/alpha"
    assert hub.redirects == {"acme/beta": "acme/alpha"}


def test_renaming_one_repo_keeps_the_redirects_of_the_others(hub: FakeHub) -> None:
    hub.add("acme/alpha")
    hub.add("acme/gamma")
    hub.rename("acme/alpha", "acme/beta")
    hub.rename("acme/gamma", "acme/delta")
    hub.rename("acme/beta", "acme/omega")
    assert hub.redirects == {"acme/alpha": "acme/omega", "acme/beta": "acme/omega", "acme/gamma": "acme/delta"}
    answer = adapter(hub, token=TOKEN).lookup("acme/gamma")
    assert isinstance(answer, Found) and answer.record.name == "acme/delta"


def test_a_lookup_is_retried_and_follows_a_rename(hub: FakeHub) -> None:
    alpha = hub.add("acme/alpha")
    hub.rename("acme/alpha", "other-org/alpha-renamed")
    hub.server.faults.append(Fault.http(429, {"RateLimit": '"api";r=0;t=0'}))
    waits: list[tuple[float, str]] = []
    answer = adapter(hub, waits=waits).lookup("acme/alpha")
    assert isinstance(answer, Found)
    assert (answer.record.name, answer.record.key) == ("other-org/alpha-renamed", alpha.key)
    assert [seconds for seconds, _ in waits] == [0.0] and "HTTP 429" in waits[0][1]
    assert [r.path for r in hub.server.requests][-2:] == ["/api/models/acme/alpha",
                                                          "/api/models/other-org/alpha-renamed"]


def test_a_rejected_token_is_unavailable_and_never_shown(hub: FakeHub) -> None:
    hub.add("acme/alpha")
    wrong = "hf_revokedToken9876543210"
    registry = adapter(hub, token=wrong)
    for attempt in (lambda: listed(registry), lambda: registry.lookup("acme/alpha"), registry.check):
        with pytest.raises(RegistryUnavailable, match="rejected the token") as failure:
            attempt()
        assert wrong not in str(failure.value)


# -- file lists ----------------------------------------------------------------------------------


def test_file_lists_of_matching_models_are_read_once_per_revision(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    weights, tokenizer = b"\x00weights" * 100, b'{"vocab": {}}'
    with FakeHub(page_size=2, tree_page_size=2) as hub:  # the tree comes in pages too
        hub.add("acme/alpha", files={"README.md": b"# alpha", "config.json": b"{}", "model.safetensors": weights,
                                     "tokenizer/tokenizer.json": tokenizer})
        hub.add("acme/beta")
        first = scan(ledger, hub, files="acme/al*")
        assert first.events == {"appeared": 2}, first.error
        assert len(hub.tree_requests("acme/alpha")) == 3 and hub.tree_requests("acme/beta") == []

        stored = query(ledger, "SELECT f.path, f.size, f.sha256 FROM observation_files f JOIN models m"
                               " ON m.last_observation_id = f.observation_id WHERE m.name = 'acme/alpha'"
                               " ORDER BY f.path")
        assert [tuple(row) for row in stored] == [
            ("README.md", 7, None), ("config.json", 2, None),
            ("model.safetensors", len(weights), hashlib.sha256(weights).hexdigest()),  # the LFS oid
            ("tokenizer/tokenizer.json", len(tokenizer), None),
        ]
        tree_query = hub.tree_requests("acme/alpha")[0].query
        hub.server.requests.clear()
        list(HfApi(endpoint=hub.url, token=False).list_repo_tree("acme/alpha", recursive=True,
                                                                  revision=hub.repos["acme/alpha"].sha))
        assert tree_query == hub.server.requests[0].query  # the parameters list_repo_tree sends

        hub.server.requests.clear()
        hub.update("acme/alpha", downloads=1000)
        unchanged = scan(ledger, hub, files="acme/al*")
        assert unchanged.events == {} and hub.tree_requests("acme/alpha") == []

        new_weights = b"\x01retrained" * 100
        hub.commit("acme/alpha", files={**hub.repos["acme/alpha"].files, "model.safetensors": new_weights})
        pushed = scan(ledger, hub, files="acme/al*")
        assert [(kind, name) for kind, name, _ in events(ledger, pushed.scan_id)] == [("updated", "acme/alpha")]
        assert {"files", "revision"} <= set(events(ledger, pushed.scan_id)[0][2]["changed"])
        assert {r.path for r in hub.tree_requests("acme/alpha")} == {
            f"/api/models/acme/alpha/tree/{hub.repos['acme/alpha'].sha}"}


def test_a_file_list_that_cannot_be_read_is_a_problem_and_read_again_next_time(hub: FakeHub) -> None:
    hub.add("acme/alpha")
    hub.server.faults.append(Fault.http(404, {"X-Error-Code": "RevisionNotFound"}, path_prefix="/api/models/acme/"))
    cache = MemoryCache()
    [problem] = listed(adapter(hub, files="acme/*", cache=cache))
    assert isinstance(problem, RecordProblem) and "RevisionNotFound" in problem.message
    assert cache.values == {}
    [record] = listed(adapter(hub, files="acme/*", cache=cache))
    assert isinstance(record, ModelRecord) and FileEntry("config.json", 23, None) in record.files
    assert list(cache.values) == [f"files:acme/alpha@{hub.repos['acme/alpha'].sha}"]


# -- scans into the ledger -----------------------------------------------------------------------


def test_first_scan_records_every_model_and_a_second_finds_nothing_new(tmp_path: Path, hub: FakeHub) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    add_three(hub)
    hub.add("other/outside")
    first = scan(ledger, hub, token=TOKEN)
    assert first.status == "complete", first.error
    assert [(kind, name) for kind, name, _ in events(ledger, first.scan_id)] == [
        ("appeared", "acme/alpha"), ("appeared", "acme/beta"), ("appeared", "acme/gamma")]
    assert first.pages == 2
    hub.update("acme/beta", downloads=10, likes=3)
    second = scan(ledger, hub, token=TOKEN)
    assert (second.status, second.events) == ("complete", {})
    with open(ledger, "rb") as raw:
        assert TOKEN.encode() not in raw.read()


@pytest.mark.parametrize("telemetry", [None, "0"])
def test_a_scan_sends_no_telemetry_unless_the_user_turns_it_on(tmp_path: Path, hub: FakeHub,
                                                               telemetry: str | None) -> None:
    """With huggingface_hub's telemetry on, building the user agent asks HF_ENDPOINT (huggingface.co; here
    the fake) for its list of AI agents at each start, and names torch and any detected agent."""
    add_three(hub)
    (tmp_path / "weightkeeper.toml").write_text(
        f'[registries.hub]\nkind = "hf"\nendpoint = "{hub.url}"\nauthor = "acme"\n', encoding="utf-8")
    env = {key: value for key, value in os.environ.items()
           if key != "HF_HUB_DISABLE_TELEMETRY" and not key.startswith("WEIGHTKEEPER")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"))
    if telemetry is not None:
        env["HF_HUB_DISABLE_TELEMETRY"] = telemetry
    done = subprocess.run([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(tmp_path), "scan", "--json"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["events"] == {"appeared": 3}
    assert bool(hub.requests_to("/api/agent-harnesses")) == (telemetry == "0")


def test_a_deleted_repo_is_suspected_then_deleted_when_a_token_can_tell(tmp_path: Path, hub: FakeHub) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    add_three(hub)
    scan(ledger, hub, token=TOKEN)
    hub.delete("acme/beta")
    result = scan(ledger, hub, token=TOKEN)
    assert [(kind, name) for kind, name, _ in events(ledger, result.scan_id)] == [
        ("suspected_missing", "acme/beta"), ("deleted", "acme/beta")]
    assert "RepoNotFound" in events(ledger, result.scan_id)[1][2]["reason"]
    assert state(ledger, "acme/beta") == ("deleted", "public")


@pytest.mark.parametrize("token", [None, OUTSIDER], ids=["anonymous", "outsider-token"])
def test_a_vanished_repo_is_withdrawn_never_deleted_unless_a_member_token_tells(tmp_path: Path, hub: FakeHub,
                                                                                token: str | None) -> None:
    """Of eight models that vanish, three were made private and five deleted: the Hub answers an anonymous caller
    and a token of another namespace alike for both, so all eight are withdrawn and none is deleted. A member's
    token then tells them apart: the five are deleted, the three restored as private."""
    ledger = tmp_path / "ledger.sqlite3"
    names = [f"acme/m{i}" for i in range(10)]
    for name in names:
        hub.add(name)
    scan(ledger, hub, token=token)
    for name in names[:3]:
        hub.update(name, private=True)
    for name in names[3:8]:
        hub.delete(name)
    result = scan(ledger, hub, token=token)
    assert result.status == "complete", result.error
    found = events(ledger, result.scan_id)
    assert sorted((kind, name) for kind, name, _ in found) == sorted(
        [("suspected_missing", name) for name in names[:8]] + [("withdrawn", name) for name in names[:8]])
    caller = "an anonymous request" if token is None else "the token of alice, which does not read acme's"
    assert all(caller in detail["reason"] for kind, _, detail in found if kind == "withdrawn")
    assert {state(ledger, name) for name in names[:8]} == {("withdrawn", "public")}
    with Ledger(ledger) as opened:
        counted = stats(opened)["models"]
    assert (counted["withdrawn"], counted["deleted"], counted["hidden"], counted["persist"]) == (8, 0, 0, 2)
    again = scan(ledger, hub, token=token)
    assert events(ledger, again.scan_id) == []  # still withdrawn: asked again, nothing new
    assert len(hub.requests_to(f"/api/models/{names[0]}")) == 2

    member = scan(ledger, hub, token=TOKEN)
    assert member.status == "complete", member.error
    assert sorted((kind, name) for kind, name, _ in events(ledger, member.scan_id)) == sorted(
        [("deleted", name) for name in names[3:8]] + [(kind, name) for name in names[:3]
                                                      for kind in ("restored", "visibility_changed")])
    assert {state(ledger, name) for name in names[3:8]} == {("deleted", "public")}
    assert {state(ledger, name) for name in names[:3]} == {("present", "private")}


def test_a_withdrawn_repo_seen_again_is_restored(tmp_path: Path, hub: FakeHub) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    add_three(hub)
    scan(ledger, hub)
    hub.update("acme/beta", private=True)
    scan(ledger, hub)
    assert state(ledger, "acme/beta") == ("withdrawn", "public")
    hub.update("acme/beta", private=False)
    result = scan(ledger, hub)
    assert [(kind, name) for kind, name, _ in events(ledger, result.scan_id)] == [("restored", "acme/beta")]
    assert events(ledger, result.scan_id)[0][2] == {"was": "withdrawn", "via": "listing"}
    assert state(ledger, "acme/beta") == ("present", "public")


def test_a_repo_known_through_lookups_that_vanishes_is_described_as_it_was_seen(tmp_path: Path,
                                                                                  hub: FakeHub) -> None:
    """A model renamed out of the author's scope is followed by lookups; when it vanishes, the reason says so,
    not that it was hidden."""
    ledger = tmp_path / "ledger.sqlite3"
    add_three(hub)
    scan(ledger, hub, token=TOKEN)
    hub.rename("acme/beta", "other-lab/beta")
    scan(ledger, hub, token=TOKEN)
    hub.delete("other-lab/beta")
    result = scan(ledger, hub, token=TOKEN)
    found = events(ledger, result.scan_id)
    assert [kind for kind, _, _ in found] == ["suspected_missing", "withdrawn"]
    assert "last seen through a direct lookup, not in a listing" in found[0][2]["reason"]
    assert "does not read other-lab's private repos" in found[1][2]["reason"]


@pytest.mark.parametrize("change, token, lists_disabled, expected", [
    ({"private": True}, TOKEN, False, ["visibility_changed"]),  # the token reads acme's private repos
    ({"gated": "auto"}, None, False, ["visibility_changed"]),
    ({"disabled": True}, None, False, ["suspected_missing", "visibility_changed"]),
    ({"disabled": True}, TOKEN, True, ["visibility_changed"]),
], ids=["private-readable", "gated", "disabled-unlisted", "disabled-listed"])
def test_hidden_repos_change_visibility_and_are_never_deleted(tmp_path: Path, change: dict, token: str | None,
                                                              lists_disabled: bool, expected: list[str]) -> None:
    [visibility] = change  # private, gated or disabled: the field is named as the visibility
    ledger = tmp_path / "ledger.sqlite3"
    with FakeHub(page_size=2, tokens={TOKEN: {"acme"}}, lists_disabled=lists_disabled) as hub:
        add_three(hub)
        scan(ledger, hub, token=token)
        hub.update("acme/beta", **change)
        result = scan(ledger, hub, token=token)
        assert result.status == "complete", result.error
        found = events(ledger, result.scan_id)
        assert [(kind, name) for kind, name, _ in found] == [(kind, "acme/beta") for kind in expected]
        detail = found[-1][2]
        assert {key: detail[key] for key in ("from", "to")} == {"from": "public", "to": visibility}
        # Found by a direct lookup (the listing left it out), the event keeps what the Hub answered.
        assert ("reason" in detail) == ("suspected_missing" in expected)
        again = scan(ledger, hub, token=token)
        assert events(ledger, again.scan_id) == []
    assert state(ledger, "acme/beta") == ("present", visibility)
    assert query(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'deleted'")[0][0] == 0


def test_a_renamed_repo_is_recorded_as_renamed(tmp_path: Path, hub: FakeHub) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    add_three(hub)
    scan(ledger, hub)
    hub.rename("acme/beta", "acme/beta-instruct")
    result = scan(ledger, hub)
    assert events(ledger, result.scan_id) == [
        ("renamed", "acme/beta-instruct", {"from": "acme/beta", "to": "acme/beta-instruct"})]
    assert [row["name"] for row in query(ledger, "SELECT name FROM models ORDER BY name")] == [
        "acme/alpha", "acme/beta-instruct", "acme/gamma"]


def test_a_listing_failing_midway_concludes_nothing_and_the_next_scan_resumes_at_its_link(
        tmp_path: Path, hub: FakeHub) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    for index in range(5):
        hub.add(f"acme/model-{index}")
    assert scan(ledger, hub).events == {"appeared": 5}

    hub.after_listing_page(1, *[Fault.http(500, path_prefix="/api/models")] * 3)
    failed = scan(ledger, hub)
    assert failed.status == "failed" and "HTTP 500" in failed.error
    assert events(ledger, failed.scan_id) == []
    [stored] = query(ledger, "SELECT cursor FROM scans WHERE id = ?", (failed.scan_id,))
    assert parse_qs(urlsplit(stored["cursor"]).query)["cursor"]  # the first page's next link

    hub.server.requests.clear()
    resumed = scan(ledger, hub)
    assert (resumed.status, resumed.resumed, resumed.events) == ("complete", True, {})
    assert url_of(hub.requests_to("/api/models")[0]) == parsed(stored["cursor"])
    assert query(ledger, "SELECT COUNT(*) FROM events WHERE kind IN ('suspected_missing', 'deleted')")[0][0] == 0


# -- the registry as configured --------------------------------------------------------------------


def test_open_registry_builds_the_adapter_with_the_configured_token(tmp_path: Path, hub: FakeHub) -> None:
    config = RegistryConfig("hub", "hf", {"endpoint": hub.url, "author": "acme", "files": "acme/*"},
                            token_env="WK_HF_TOKEN")
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        registry_id = ledger.registry_id(config.name, config.kind, config.location)
        registry = open_registry(config, digests=LedgerDigestCache(ledger, registry_id),
                                 cache=LedgerAdapterCache(ledger, registry_id), environ={"WK_HF_TOKEN": TOKEN})
        assert isinstance(registry, HubRegistry)
        assert registry.unlisted == frozenset({Visibility.DISABLED})
        assert "token is accepted for alice" in registry.check()
    assert adapter(hub).unlisted == frozenset({Visibility.PRIVATE, Visibility.DISABLED})


@pytest.mark.parametrize("token, author, says", [
    (None, "acme", "anonymous, so private and disabled models are not listed, and a model that vanishes is recorded as "
                   "withdrawn (deleted or made private alike); add a token of acme (token_env) to tell them apart"),
    (OUTSIDER, "acme", "the token is accepted for alice and reads the private repos of alice, other-lab: a model of "
                       "acme that vanishes is recorded as withdrawn"),
    (TOKEN, "acme", "the token is accepted for alice and reads the private repos of acme, alice: a model of acme that "
                    "vanishes is recorded as deleted or made private, as it was"),
    (TOKEN, None, "reads the private repos of acme, alice: a vanished model of those is recorded as deleted or made "
                  "private, as it was; of any other owner, as withdrawn"),
], ids=["anonymous", "outsider-token", "member-token", "member-token-no-author"])
def test_check_says_what_this_caller_can_conclude(hub: FakeHub, token: str | None, author: str | None,
                                                  says: str) -> None:
    assert says in adapter(hub, token=token, author=author).check()


def test_check_tells_an_unreachable_endpoint_from_a_wrong_url(hub: FakeHub) -> None:
    with FakeHub() as gone:
        closed = gone.url
    with pytest.raises(RegistryUnavailable, match="connection failed .* after 3 attempts"):
        HubRegistry(closed, author="acme", search=None, filter=None, files=None, token=None, cache=MemoryCache(),
                    policy=POLICY, timeout=TIMEOUT).check()
    with pytest.raises(RegistryUnavailable, match="not as a Hugging Face Hub .*HTTP 404.* without /api"):
        HubRegistry(f"{hub.url}/api", author="acme", search=None, filter=None, files=None, token=None,
                    cache=MemoryCache(), policy=POLICY, timeout=TIMEOUT).check()
