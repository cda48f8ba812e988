"""The OpenAI fine-tunes adapter against a fake OpenAI API on 127.0.0.1, scanned into a real SQLite ledger.

The fake (`fake_openai.py`) answers in the wire format the `openai` SDK reads, with injected faults;
the real SDK, the real scan engine and a real ledger do the rest. No test may find the API key in
the ledger, in a message or in a log line (the `no_key_leaks` fixture checks every test).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

import tools.registries.openai_finetunes as adapter_module
from agents import coordinator
from agents.graph import propose
from fake_openai import API_KEY, ORG, FakeOpenAI, error, rate_limited
from http_fakes import FakeServer, Fault, Reply
from ledger_reading import query
from tools.registries import open_registry
from tools.registries.http import RetryPolicy
from tools.registries.openai_finetunes import OpenAIRegistry
from weightkeeper.cli.main import main
from weightkeeper.cli.scanning import scan_registries
from weightkeeper import config as weightkeeper_config
from weightkeeper.config import ProposalSettings, RegistryConfig
from weightkeeper.domain import Found, Gone
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.store import LedgerAdapterCache, LedgerDigestCache
from weightkeeper.registry import registry_kind
from weightkeeper.review import ReviewQueue
from weightkeeper.scan import Scanner, ScanResult

MINI = "gpt-4o-mini-2024-07-18"
TURBO = "gpt-3.5-turbo-0125"
WRONG_KEY = "sk-wrong-Hv4Tq9LmX2cR7pYe"
BETA = "org-beta5678"  # a second organisation the key belongs to
FAST = RetryPolicy(attempts=3, first_backoff=0.05)
DEPRECATIONS_BEFORE = """# Deprecations

## Deprecation history

### 2025-04-28: o1-preview and o1-mini

| Shutdown date | Model / system | Recommended replacement |
| ------------- | -------------- | ----------------------- |
| 2025-07-28    | `o1-preview`   | `o3`                    |
"""
ANNOUNCEMENT = """
### 2026-04-22: Legacy GPT model snapshots

Older snapshots leave the API on the dates below.

| Shutdown date | Model snapshot         | Substitute model |
| ------------- | ---------------------- | ---------------- |
| 2026-07-23    | `gpt-4o-mini-2024-07-18` \\| `gpt-4o-mini` | `gpt-4.1-mini` |

### 2026-03-02: GPT-3.5 Turbo

| Shutdown date | Deprecated model     | Recommended replacement |
| ------------- | -------------------- | ----------------------- |
| 2026-10-23    | `gpt-3.5-turbo-0125` | `gpt-4.1-mini`          |

Fine-tuned models created from this base model are not affected by this deprecation.
"""


# -- the registry under test ------------------------------------------------------------------------


class Fleet:
    """The fake's models: two base models, a fine-tune with two checkpoints, a fine-tune of it,
    a fine-tune of the other base, and a failed job on that base that produced nothing."""

    def __init__(self, fake: FakeOpenAI) -> None:
        fake.add_base(MINI)
        fake.add_base(TURBO)
        fake.add_base("gpt-4.1-mini-2025-04-14")  # no fine-tune is built on it: not listed
        self.support_job = fake.fine_tune(MINI, suffix="support", checkpoints=2, validation_file="file-valid1")
        self.support = self.support_job["fine_tuned_model"]
        self.v2_job = fake.fine_tune(self.support, suffix="support-v2")
        self.v2 = self.v2_job["fine_tuned_model"]
        self.legal_job = fake.fine_tune(TURBO, suffix="legal")
        self.legal = self.legal_job["fine_tuned_model"]
        fake.fine_tune(TURBO, suffix="broken", status="failed")
        self.checkpoints = [f"{self.support}:ckpt-step-{step}" for step in (100, 200)]
        self.fine_tunes = [self.support, *self.checkpoints, self.v2, self.legal]
        self.listed = sorted([*self.fine_tunes, MINI, TURBO])


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture
def fleet(fake: FakeOpenAI) -> Fleet:
    return Fleet(fake)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[tuple[FakeServer, list[FakeOpenAI]]]:
    """One server for the module (stopping one takes half a second), answering for each test's own fake."""
    current: list[FakeOpenAI] = []
    with FakeServer(lambda request: current[-1].route(request)) as running:
        running.hang_seconds = 1.0
        yield running, current


@pytest.fixture
def server(fake: FakeOpenAI, shared_server: tuple[FakeServer, list[FakeOpenAI]]) -> Iterator[FakeServer]:
    running, current = shared_server
    current.append(fake)
    running.faults.clear()
    running.requests.clear()
    yield running
    running.faults.clear()


@pytest.fixture(autouse=True)
def no_key_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever a test does, neither key appears in a log record or in any file of the ledger."""
    caplog.set_level(logging.DEBUG)
    yield
    for key in (API_KEY, WRONG_KEY):
        assert key not in caplog.text
        for path in tmp_path.rglob("*.sqlite3*"):
            assert key.encode() not in path.read_bytes(), f"the API key is in {path.name}"


def config(server: FakeServer, *, deprecations: str | None = None, base_url: str | None = None,
           organization: str | None = None) -> RegistryConfig:
    settings = {"base_url": base_url or f"{server.url}/v1"}
    if deprecations:
        settings["deprecations"] = deprecations
    if organization:
        settings["organization"] = organization
    return RegistryConfig("openai-acme", "openai", settings, token_env="OPENAI_API_KEY")


def adapter(registry: RegistryConfig, *, key: str = API_KEY, waits: list | None = None,
            policy: RetryPolicy = FAST, page_size: int = 2) -> OpenAIRegistry:
    return OpenAIRegistry(registry.setting("base_url"), api_key=key, deprecations=registry.setting("deprecations"),
                          organization=registry.setting("organization"),
                          on_wait=None if waits is None else lambda seconds, why: waits.append((seconds, why)),
                          policy=policy, timeout=0.5, page_size=page_size, sleep=lambda seconds: None)


def scan(ledger_path: Path, registry: RegistryConfig, source: OpenAIRegistry | None = None) -> ScanResult:
    with Ledger(ledger_path) as ledger:
        return Scanner(ledger, registry, source or adapter(registry)).run()


def scan_events(ledger_path: Path, scan_id: int) -> list[tuple[str, str, dict]]:
    rows = query(ledger_path, "SELECT e.kind, m.name, e.detail FROM events e JOIN models m ON m.id = e.model_id"
                              " WHERE e.scan_id = ? ORDER BY e.id", (scan_id,))
    return [(row["kind"], row["name"], json.loads(row["detail"])) for row in rows]


def model_row(ledger_path: Path, name: str) -> sqlite3.Row:
    (row,) = query(ledger_path, "SELECT * FROM models WHERE name = ?", (name,))
    return row


def observation(ledger_path: Path, name: str) -> sqlite3.Row:
    (row,) = query(ledger_path, "SELECT * FROM observations WHERE id = ?",
                   (model_row(ledger_path, name)["last_observation_id"],))
    return row


def lineage_of(ledger_path: Path, name: str) -> list[tuple[str, str]]:
    return [tuple(row) for row in query(ledger_path, "SELECT base_model, relation FROM observation_lineage"
                                                     " WHERE observation_id = ?",
                                        (model_row(ledger_path, name)["last_observation_id"],))]


def ledger_text(ledger_path: Path) -> str:
    tables = [row[0] for row in query(ledger_path, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return "\n".join(str(tuple(row)) for table in tables for row in query(ledger_path, f"SELECT * FROM {table}"))


# -- listing -------------------------------------------------------------------------------------------


def test_first_scan_records_fine_tunes_with_lineage_and_training_evidence(tmp_path, fleet, server) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    result = scan(ledger, config(server))

    assert result.status == "complete", result.error
    assert result.problems == []
    assert result.events == {"appeared": len(fleet.listed)}
    assert sorted(row["name"] for row in query(ledger, "SELECT name FROM models")) == fleet.listed

    assert lineage_of(ledger, fleet.support) == [(MINI, "finetune")]
    assert lineage_of(ledger, fleet.v2) == [(fleet.support, "finetune")]  # a fine-tune of a fine-tune
    assert lineage_of(ledger, fleet.checkpoints[0]) == [(MINI, "finetune")]
    assert lineage_of(ledger, fleet.legal) == [(TURBO, "finetune")]
    assert lineage_of(ledger, MINI) == []

    support = observation(ledger, fleet.support)
    assert model_row(ledger, fleet.support)["key"] == fleet.support_job["id"]
    assert (support["visibility"], json.loads(support["extra"])) == ("private", {"owned_by": "acme"})
    assert json.loads(support["datasets"]) == ["file-train1", "file-valid1"]
    training = json.loads(support["training"])
    assert {key: training[key] for key in ("job", "status", "base_model", "training_file", "validation_file",
                                           "result_files", "trained_tokens", "seed")} == {
        "job": fleet.support_job["id"], "status": "succeeded", "base_model": MINI, "training_file": "file-train1",
        "validation_file": "file-valid1", "result_files": ["file-result1"], "trained_tokens": 12_000,
        "seed": fleet.support_job["seed"]}
    assert training["hyperparameters"] == {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 1.8}
    assert training["method"]["type"] == "supervised"
    assert training["finished_at"] == support["last_modified"]
    assert [(point["step"], point["model"], point["metrics"]["train_loss"]) for point in training["checkpoints"]] == [
        (100, fleet.checkpoints[0], 0.01), (200, fleet.checkpoints[1], 0.005)]

    checkpoint = observation(ledger, fleet.checkpoints[1])
    assert checkpoint["key"] == f"{fleet.support_job['id']}:ckpt-step-200"
    assert json.loads(checkpoint["extra"]) == {"owned_by": "acme", "checkpoint_of": fleet.support, "step": 200}
    base = observation(ledger, MINI)
    assert (base["key"], base["visibility"], base["training"]) == (MINI, "public", None)

    rescan = scan(ledger, config(server))
    assert (rescan.status, rescan.events) == ("complete", {}), "an unchanged registry records nothing"


def test_jobs_and_checkpoints_are_read_page_by_page(tmp_path, fleet, fake, server, monkeypatch) -> None:
    monkeypatch.setattr(adapter_module, "PER_REQUEST", 1)
    result = scan(tmp_path / "ledger.sqlite3", config(server))
    assert result.status == "complete" and result.events == {"appeared": len(fleet.listed)}
    afters = [request.query.get("after", [None])[0] for request in server.requests
              if request.path == "/v1/fine_tuning/jobs"]
    assert afters == [None] + [job["id"] for job in fake.jobs[:-1]], "each page starts after the last job seen"
    checkpoint_pages = [request.query.get("after", [None])[0] for request in server.requests
                        if request.path == f"/v1/fine_tuning/jobs/{fleet.support_job['id']}/checkpoints"]
    assert checkpoint_pages == [None, fake.checkpoints[fleet.support_job["id"]][0]["id"]]


def test_a_model_whose_data_cannot_be_read_is_a_problem_alone(tmp_path, fleet, fake, server) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    scan(ledger, config(server))
    fake.models[fleet.legal]["shutdown_date"] = "whenever"
    result = scan(ledger, config(server))
    assert result.status == "complete"
    assert [(p["model"], "'whenever', which is not a date" in p["message"]) for p in result.problems] == [
        (fleet.legal, True)]
    assert result.events == {}


# -- deletions --------------------------------------------------------------------------------------------


def test_a_deleted_fine_tune_is_suspected_missing_then_deleted(tmp_path, fleet, fake, server) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    scan(ledger, config(server))
    del fake.models[fleet.v2]  # DELETE /v1/models/{id}: the job stays

    result = scan(ledger, config(server))
    assert result.status == "complete", result.error
    events = scan_events(ledger, result.scan_id)
    assert [(kind, name) for kind, name, _ in events] == [("suspected_missing", fleet.v2), ("deleted", fleet.v2)]
    assert "404 model_not_found" in events[1][2]["reason"] and fleet.v2_job["id"] in events[1][2]["reason"]
    assert model_row(ledger, fleet.v2)["state"] == "deleted"
    lookups = [request.path for request in server.requests if request.path.startswith("/v1/models/")]
    assert lookups == [f"/v1/models/{fleet.v2}"]


def test_a_model_hidden_from_a_new_key_is_not_deleted(tmp_path, fleet, fake, server) -> None:
    """The key now belongs to another project: neither the model nor its job is visible. OpenAI answers
    404 model_not_found all the same, which must not read as a deletion."""
    ledger = tmp_path / "ledger.sqlite3"
    scan(ledger, config(server))
    del fake.models[fleet.legal]
    fake.jobs.remove(fleet.legal_job)

    result = scan(ledger, config(server))
    assert result.status == "complete"
    assert [(kind, name) for kind, name, _ in scan_events(ledger, result.scan_id)] == [
        ("suspected_missing", fleet.legal)]
    (problem,) = result.problems
    assert problem["model"] == fleet.legal
    assert "another project" in problem["message"] and "nothing was concluded" in problem["message"]
    assert model_row(ledger, fleet.legal)["state"] == "suspected_missing"


@pytest.mark.parametrize(("fault", "words"), [
    (Fault.http(404, {"Content-Type": "application/json"},
                error(404, "Invalid URL (GET /v1/models/x)").body, "/v1/models/"), "ending in /v1"),
    (Fault.http(401, {"Content-Type": "application/json"},
                error(401, "Incorrect API key provided", code="invalid_api_key").body, "/v1/models/"),
     "rejected the API key"),
    (Fault.http(403, {"Content-Type": "application/json"},
                error(403, "You have insufficient permissions", type_="invalid_request_error").body, "/v1/models/"),
     "restricted key"),
], ids=["404-without-model_not_found", "401", "403"])
def test_a_lookup_concludes_only_from_model_not_found(fleet, server, fault, words) -> None:
    source = adapter(config(server))
    server.faults.append(fault)
    with pytest.raises(RegistryUnavailable, match=words):
        source.lookup(fleet.support)
    assert isinstance(source.lookup(fleet.support), Found), "the next answer is read afresh"


def test_lookups_of_base_models_and_unknown_fine_tunes(fleet, server) -> None:
    source = adapter(config(server))
    found = source.lookup(fleet.v2)
    assert isinstance(found, Found) and found.record.key == fleet.v2_job["id"]
    assert found.record.lineage[0].base_model == fleet.support
    gone = source.lookup("davinci-002")
    assert isinstance(gone, Gone) and "model_not_found" in gone.reason
    with pytest.raises(RegistryUnavailable, match="no fine-tuning job this key can see produced it"):
        source.lookup("ft:gpt-4o-mini-2024-07-18:other-org::Zz999999")


# -- deprecations -----------------------------------------------------------------------------------------


def test_a_shutdown_date_in_models_list_is_announced_for_the_base_and_its_fine_tunes(tmp_path, fleet, fake,
                                                                                      server) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    scan(ledger, config(server))
    fake.models[MINI]["shutdown_date"] = "2026-07-23"

    result = scan(ledger, config(server))
    events = scan_events(ledger, result.scan_id)
    announced = {name: detail for kind, name, detail in events if kind == "deprecation_announced"}
    assert [kind for kind, _, _ in events] == ["deprecation_announced"] * 5
    assert announced == {name: {"shutdown_date": "2026-07-23", "successor": None}
                         for name in [MINI, fleet.support, *fleet.checkpoints, fleet.v2]}
    assert observation(ledger, fleet.v2)["shutdown_date"] == "2026-07-23"
    assert observation(ledger, fleet.legal)["shutdown_date"] is None


def test_a_deprecations_page_announces_the_base_and_every_fine_tune_on_it(tmp_path, fleet, server) -> None:
    ledger, page = tmp_path / "ledger.sqlite3", tmp_path / "deprecations.md"
    page.write_text(DEPRECATIONS_BEFORE, encoding="utf-8")
    registry = config(server, deprecations=str(page))
    first = scan(ledger, registry)
    assert first.status == "complete" and first.events == {"appeared": len(fleet.listed)}

    heading = "## Deprecation history\n"
    page.write_text(DEPRECATIONS_BEFORE.replace(heading, heading + ANNOUNCEMENT), encoding="utf-8")
    result = scan(ledger, registry)
    assert result.status == "complete", result.error
    announced = {name: detail for kind, name, detail in scan_events(ledger, result.scan_id)
                 if kind == "deprecation_announced"}
    assert announced == {
        MINI: {"shutdown_date": "2026-07-23", "successor": "gpt-4.1-mini"},
        fleet.support: {"shutdown_date": "2026-07-23", "successor": None},
        fleet.checkpoints[0]: {"shutdown_date": "2026-07-23", "successor": None},
        fleet.checkpoints[1]: {"shutdown_date": "2026-07-23", "successor": None},
        fleet.v2: {"shutdown_date": "2026-07-23", "successor": None},
        # The page says fine-tunes of gpt-3.5-turbo-0125 are not affected: only the base is announced.
        TURBO: {"shutdown_date": "2026-10-23", "successor": "gpt-4.1-mini"},
    }
    assert result.events == {"deprecation_announced": 6}


def test_the_api_date_comes_before_the_page_and_the_earliest_date_of_the_lineage_holds(fleet, fake, server,
                                                                                        tmp_path) -> None:
    page = tmp_path / "deprecations.md"
    page.write_text(DEPRECATIONS_BEFORE.replace("## Deprecation history\n", "## Deprecation history\n" + ANNOUNCEMENT),
                    encoding="utf-8")
    fake.models[MINI]["shutdown_date"] = "2026-08-01"
    fake.models[fleet.support]["shutdown_date"] = "2026-12-31"
    source = adapter(config(server, deprecations=str(page)))
    records = {record.name: record for listed in source.pages(None) for record in source.records(listed)}
    assert (records[MINI].shutdown_date, records[MINI].successor) == ("2026-08-01", "gpt-4.1-mini")
    assert records[fleet.support].shutdown_date == "2026-08-01"  # its base stops first
    assert records[fleet.v2].shutdown_date == "2026-08-01"


def test_fine_tunes_first_seen_after_their_base_was_announced_for_shutdown_are_announced_and_proposed(
        tmp_path, fake, server) -> None:
    """A watcher installed three months before a base model's shutdown: its first scan records the
    announcement for the base and each of the 30 fine-tunes on it, and `propose` drafts for them."""
    shutdown = (date.today() + timedelta(days=91)).isoformat()
    fake.add_base(MINI, shutdown_date=shutdown)
    fine_tunes = [fake.fine_tune(MINI, suffix=f"bot{i:02d}")["fine_tuned_model"] for i in range(30)]
    home = tmp_path / "home"
    weightkeeper_config.write_default(home)
    ledger_path = weightkeeper_config.load(home).ledger_path

    first = scan(ledger_path, config(server))
    assert first.status == "complete", first.error
    assert first.events == {"appeared": 31, "deprecation_announced": 31}
    announced = {name: detail for kind, name, detail in scan_events(ledger_path, first.scan_id)
                 if kind == "deprecation_announced"}
    assert announced == {name: {"shutdown_date": shutdown, "successor": None, "first_seen": True}
                         for name in [MINI, *fine_tunes]}
    assert scan(ledger_path, config(server)).events == {}, "a rescan announces nothing again"

    with Ledger(ledger_path) as ledger:
        candidates = coordinator.candidates(ledger)
        outcomes = asyncio.run(propose(ledger, home, ProposalSettings()))
        reviews = ReviewQueue(ledger).list()
    announcements = {row["id"] for row in query(ledger_path, "SELECT id FROM events WHERE kind = 'deprecation_announced'")}
    assert {(c.event_id, c.kind) for c in candidates} == {(event, "deprecation_announced") for event in announcements}
    assert {outcome.event_id for outcome in outcomes} == announcements
    # One registry is one recipient: one letter covers the base and its 30 fine-tunes (issue 14).
    (review,) = reviews
    assert {(outcome.status, outcome.review_id) for outcome in outcomes} == {("queued", review.id)}
    assert len(review.evidence.models) == 31
    assert (review.event, review.recipient) == ("deprecation_announced", "openai-acme")
    assert not [finding for finding in review.findings if finding.severity == "error"], review.findings
    assert "The notice was already there when we first saw" in review.draft.body
    assert "When the shutdown was announced" in review.draft.body


def test_a_deprecations_page_over_http(tmp_path, fleet, server) -> None:
    html = (Path(__file__).parent / "data" / "deprecations" / "openai_html.html").read_text(encoding="utf-8")
    html = html.replace("<code>o1-preview</code>", f"<code>{MINI}</code>")
    with FakeServer(lambda request: Reply(200, html.encode(), {"Content-Type": "text/html"})) as docs:
        result = scan(tmp_path / "ledger.sqlite3", config(server, deprecations=f"{docs.url}/docs/deprecations"))
    assert result.status == "complete", result.error
    shutdowns = {row["name"]: row["shutdown_date"] for row in query(
        tmp_path / "ledger.sqlite3", "SELECT name, shutdown_date FROM observations")}
    assert shutdowns[MINI] == shutdowns[fleet.v2] == "2025-07-28"


@pytest.mark.parametrize("problem", ["unreachable", "malformed"])
def test_an_unusable_deprecations_page_fails_the_scan_and_concludes_nothing(tmp_path, fleet, fake, server,
                                                                            problem) -> None:
    ledger, page = tmp_path / "ledger.sqlite3", tmp_path / "deprecations.md"
    page.write_text(DEPRECATIONS_BEFORE, encoding="utf-8")
    scan(ledger, config(server, deprecations=str(page)))
    del fake.models[fleet.v2]
    if problem == "unreachable":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            source = f"http://127.0.0.1:{probe.getsockname()[1]}/docs/deprecations"
        expected = ["fetching the deprecations page", "connection failed"]
    else:
        page.write_text(DEPRECATIONS_BEFORE + "| 2025-07-28 | `o1-mini` | `o3` | `o4` |\n", encoding="utf-8")
        source, expected = str(page), ["deprecations page", "line 10: the row has 4 cells"]

    result = scan(ledger, config(server, deprecations=source))
    assert result.status == "failed"
    for words in expected:
        assert words in result.error
    assert result.events == {}
    assert model_row(ledger, fleet.v2)["state"] == "present"


# -- failures conclude nothing ------------------------------------------------------------------------------


def test_a_listing_that_fails_midway_concludes_nothing_and_resumes(tmp_path, fleet, fake, server) -> None:
    ledger, registry = tmp_path / "ledger.sqlite3", config(server)
    scan(ledger, registry)
    del fake.models[fleet.legal]
    # One model a page: v2, support, its checkpoints, the base models. Reading support's checkpoints keeps
    # failing: the page read before the fault is kept, and nothing is concluded about the deleted model.
    assert sorted(fleet.listed)[:3] == [fleet.legal, fleet.v2, fleet.support]
    support_checkpoints = f"/v1/fine_tuning/jobs/{fleet.support_job['id']}/checkpoints"
    server.faults += [Fault.http(500, path_prefix=support_checkpoints)] * FAST.attempts

    failed = scan(ledger, registry, adapter(registry, page_size=1))
    assert failed.status == "failed"
    assert "HTTP 500" in failed.error and "nothing was concluded" in failed.error
    assert scan_events(ledger, failed.scan_id) == []
    assert model_row(ledger, fleet.legal)["state"] == "present"
    assert [tuple(row) for row in query(ledger, "SELECT cursor, pages FROM scans WHERE id = ?",
                                        (failed.scan_id,))] == [(fleet.v2, 1)]

    server.requests.clear()
    resumed = scan(ledger, registry, adapter(registry, page_size=1))
    assert (resumed.scan_id, resumed.resumed, resumed.status) == (failed.scan_id, True, "complete")
    checkpoint_requests = {request.path for request in server.requests if request.path.endswith("/checkpoints")}
    assert checkpoint_requests == {support_checkpoints}, "the page before the cursor is not read again"
    assert [(kind, name) for kind, name, _ in scan_events(ledger, resumed.scan_id)] == [
        ("suspected_missing", fleet.legal), ("deleted", fleet.legal)]
    assert model_row(ledger, TURBO)["state"] == "present", "a base stays listed while a job names it"


def test_a_bad_key_fails_the_scan_with_a_clear_message_and_concludes_nothing(tmp_path, fleet, server) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    scan(ledger, config(server))
    result = scan(ledger, config(server), adapter(config(server), key=WRONG_KEY))

    assert result.status == "failed"
    assert "rejected the API key (HTTP 401 invalid_api_key" in result.error
    assert "OPENAI_API_KEY" in result.error
    assert "[API key]" in result.error, "the key the server quoted back is redacted"
    assert result.events == {} and result.problems == []
    assert {row["state"] for row in query(ledger, "SELECT state FROM models")} == {"present"}
    text = ledger_text(ledger)
    assert WRONG_KEY not in text and API_KEY not in text
    assert len([r for r in server.requests if r.headers.get("authorization") == f"Bearer {WRONG_KEY}"]) == 1, \
        "a rejected key is not retried"


def test_the_registry_is_built_from_its_config_with_the_key_from_the_environment(tmp_path, fleet, server) -> None:
    registry = config(server)
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        registry_id = ledger.registry_id(registry.name, registry.kind, registry.location)
        source = open_registry(registry, digests=LedgerDigestCache(ledger, registry_id),
                               cache=LedgerAdapterCache(ledger, registry_id), environ={"OPENAI_API_KEY": API_KEY})
        assert isinstance(source, OpenAIRegistry)
        assert Scanner(ledger, registry, source).run().events == {"appeared": len(fleet.listed)}
        with pytest.raises(RegistryUnavailable, match=r"\$OPENAI_API_KEY, which is not set"):
            open_registry(registry, digests=LedgerDigestCache(ledger, registry_id),
                          cache=LedgerAdapterCache(ledger, registry_id), environ={})


# -- organisations ------------------------------------------------------------------------------------------


def organizations_home(home: Path, server: FakeServer, organizations: list[str]) -> Path:
    (home / "weightkeeper.toml").write_text(f'[registries.ft]\nkind = "openai"\nbase_url = "{server.url}/v1"\n'
                                            f"organizations = {json.dumps(organizations)}\n", encoding="utf-8")
    return home


def test_each_organization_is_scanned_as_a_registry_of_its_own(tmp_path, fake, server, monkeypatch) -> None:
    fake.add_base(TURBO)
    legal = fake.fine_tune(TURBO, suffix="legal")
    beta = fake.member_of(BETA, "beta-lab")
    beta.add_base(MINI)
    triage = beta.fine_tune(MINI, suffix="triage")
    home = organizations_home(tmp_path, server, [ORG, BETA])
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)

    first = scan_registries(home, [], log=None)
    assert [(r.registry, r.status, r.models_seen) for r in first] == [
        (f"ft/{ORG}", "complete", 2), (f"ft/{BETA}", "complete", 2)]
    rows = query(home / "ledger.sqlite3", "SELECT r.name AS registry, m.name, m.key FROM models m"
                                          " JOIN registries r ON r.id = m.registry_id ORDER BY m.name")
    assert [tuple(row) for row in rows] == [
        (f"ft/{ORG}", legal["fine_tuned_model"], legal["id"]), (f"ft/{BETA}", triage["fine_tuned_model"], triage["id"]),
        (f"ft/{ORG}", TURBO, TURBO), (f"ft/{BETA}", MINI, MINI)]

    del beta.models[triage["fine_tuned_model"]]
    second = scan_registries(home, [], log=None)
    assert [(r.registry, r.events) for r in second] == [
        (f"ft/{ORG}", {}), (f"ft/{BETA}", {"suspected_missing": 1, "deleted": 1})]
    assert {request.headers.get("openai-organization") for request in server.requests} == {ORG, BETA}, \
        "every request of a shard, its lookups too, names its organisation"


def test_an_organization_the_key_does_not_belong_to_fails_its_shard_alone(tmp_path, server, monkeypatch,
                                                                        capsys) -> None:
    home = organizations_home(tmp_path, server, [ORG, "org-unknown999"])
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    results = scan_registries(home, [], log=None)
    assert [(r.registry, r.status) for r in results] == [(f"ft/{ORG}", "complete"), ("ft/org-unknown999", "failed")]
    assert ("the OpenAI API at {}/v1 refused organisation org-unknown999 for this API key (HTTP 401 "
            "mismatched_organization: OpenAI-Organization header should match organization for API key): the key "
            "does not belong to it; correct the organisation id in `organization` or `organizations` in "
            "weightkeeper.toml, or give the registry a key of that organisation").format(server.url) in results[1].error
    assert len([r for r in server.requests if r.headers.get("openai-organization") == "org-unknown999"]) == 1, \
        "a refused organisation is not retried"
    assert main(["--home", str(home), "registry", "check", "ft"]) != 0
    assert "refused organisation org-unknown999" in capsys.readouterr().err


def test_the_organization_is_the_registrys_never_the_environments(server, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", BETA)  # the SDK would send it: a scan's scope must not depend on the shell
    assert adapter(config(server)).check().startswith(f"the OpenAI API at {server.url}/v1 accepted the API key:")
    assert {request.headers.get("openai-organization") for request in server.requests} == {None}
    assert adapter(config(server, organization=ORG)).check().startswith(
        f"the OpenAI API at {server.url}/v1 accepted the API key for organisation {ORG}:")


def test_a_shards_archive_reads_its_organizations_job(fake, server, monkeypatch) -> None:
    beta = fake.member_of(BETA, "beta-lab")
    triage = beta.fine_tune(MINI, suffix="triage")
    shard = config(server, organization=BETA)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    found = adapter(shard).lookup(triage["fine_tuned_model"])
    assert isinstance(found, Found)
    documents = registry_kind("openai").archive_source(shard, found.record).documents()
    assert documents["openai/job.json"]["organization_id"] == BETA


# -- retries, rate limits and faults ------------------------------------------------------------------------


def test_rate_limits_and_server_errors_are_waited_out_as_the_server_asks(fleet, server) -> None:
    server.faults += [rate_limited({"retry-after-ms": "1500"}, "/v1/models"),
                      rate_limited({"retry-after": "2"}, "/v1/models"),
                      Fault.http(503, path_prefix="/v1/models")]
    waits: list[tuple[float, str]] = []
    source = adapter(config(server), waits=waits, policy=RetryPolicy(attempts=4, first_backoff=0.25))
    assert "models.list answered with 8 models (5 fine-tuned)" in source.check()
    assert [seconds for seconds, _ in waits] == [1.5, 2.0, 1.0]  # retry-after-ms, retry-after, then backoff
    assert "HTTP 429 rate_limit_exceeded" in waits[0][1] and "HTTP 503" in waits[2][1]
    assert len([r for r in server.requests if r.path == "/v1/models"]) == 4, "the SDK itself does not retry"


def test_a_wait_longer_than_allowed_or_a_do_not_retry_fails_at_once(fleet, server) -> None:
    server.faults.append(rate_limited({"retry-after": "3600"}))
    with pytest.raises(RegistryUnavailable, match="asks to wait 3600 s, more than the 120 s allowed"):
        adapter(config(server), policy=RetryPolicy(attempts=3)).check()
    server.faults.append(Fault.http(500, {"x-should-retry": "false"}))
    with pytest.raises(RegistryUnavailable, match="HTTP 500; nothing was concluded"):
        adapter(config(server)).check()
    assert len(server.requests) == 2


@pytest.mark.parametrize("fault", [Fault.http(500), Fault.http(502, body=b"<html>Bad gateway</html>"),
                                   Fault.http(503), Fault.timeout(), Fault.reset(), Fault.truncated()],
                         ids=["500", "502", "503", "timeout", "reset", "truncated"])
def test_transient_faults_are_retried_and_persistent_ones_conclude_nothing(fleet, server, fault) -> None:
    waits: list[tuple[float, str]] = []
    server.faults.append(fault)
    assert "accepted the API key" in adapter(config(server), waits=waits).check()
    assert len(waits) == 1

    server.faults += [fault] * FAST.attempts
    with pytest.raises(RegistryUnavailable, match="after 3 attempts; nothing was concluded"):
        adapter(config(server)).check()


@pytest.mark.parametrize(("content_type", "body", "words"), [
    ("application/json", b'{"object": "list", "data": [{"id', "not valid JSON .* cut off, nothing was concluded"),
    ("text/html", b"<!DOCTYPE html><title>Acme</title>", "answered with text/html, not JSON; is base_url the API root"),
    ("application/json", b"[]", "JSON but not an object of the API; is base_url the API root"),
    ("application/json", b'{"object": "list", "data": [{"id": 3}]}', "not a list of models with ids"),
], ids=["cut-off", "html", "array", "ids-not-strings"])
def test_an_answer_the_api_would_not_give_is_unavailable(fleet, server, content_type, body, words) -> None:
    server.faults.append(Fault.http(200, {"Content-Type": content_type}, body, "/v1/models"))
    with pytest.raises(RegistryUnavailable, match=words):
        adapter(config(server)).check()
    assert len(server.requests) == 1, "an answer of the wrong shape is not retried"


# -- check ------------------------------------------------------------------------------------------------


def test_check_says_what_it_verified(tmp_path, fleet, server) -> None:
    page = tmp_path / "deprecations.md"
    page.write_text(DEPRECATIONS_BEFORE, encoding="utf-8")
    verified = adapter(config(server, deprecations=str(page))).check()
    assert verified == (f"the OpenAI API at {server.url}/v1 accepted the API key: models.list answered with 8 models"
                        f" (5 fine-tuned) and fine_tuning.jobs.list answered; the deprecations page {page} names 1 "
                        "models")


def test_check_explains_a_bad_key_a_wrong_base_url_and_an_unreachable_server(fleet, server) -> None:
    with pytest.raises(RegistryUnavailable, match=r"rejected the API key \(HTTP 401 invalid_api_key: Incorrect API "
                                                  r"key provided: \[API key\]"):
        adapter(config(server), key=WRONG_KEY).check()
    with pytest.raises(RegistryUnavailable, match=r"answered HTTP 404: Invalid URL \(GET /models\); is base_url the "
                                                  "API root, ending in /v1"):
        adapter(config(server, base_url=server.url)).check()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with pytest.raises(RegistryUnavailable, match=r"cannot reach http://127.0.0.1:\d+/v1 \(ConnectError: .*\); "
                                                  "is the server up and base_url right\\? after 3 attempts"):
        adapter(config(server, base_url=closed)).check()
