"""The Ollama adapter against a fake Ollama server over real HTTP, scanned into a real SQLite ledger.

Every scan runs the real `Scanner` with the real `OllamaRegistry`; only the server is a fake
(`fake_ollama.FakeOllama`). It keeps Ollama's wire format strictly, so a request of the wrong
shape fails these tests.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import httpx
import pytest

from fake_ollama import FakeOllama
from http_fakes import Fault, Reply
from registry_fakes import MemoryCache
from tools.registries import open_registry
from tools.registries.http import RetryPolicy
from tools.registries.ollama import OllamaRegistry
from weightkeeper.config import RegistryConfig
from weightkeeper.domain import FileEntry, Found, Gone, Lineage, Page, RecordProblem
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.store import LedgerAdapterCache, LedgerDigestCache
from weightkeeper.scan import Scanner, ScanResult

ATTEMPTS = 3
POLICY = RetryPolicy(attempts=ATTEMPTS, first_backoff=0.01)
TIMEOUT = 0.3
BASE, FINETUNE = "llama3.1:8b-instruct-q4_K_M", "myorg/finetune:latest"

# Each fault replaces one answer; queued ATTEMPTS times, it outlasts the adapter's retries.
FAULTS = {
    "500": lambda path: Fault.http(500, body=b'{"error":"internal"}', path_prefix=path),
    "502": lambda path: Fault.http(502, body=b"<html>Bad Gateway</html>", path_prefix=path),
    "503": lambda path: Fault.http(503, {"Retry-After": "0"}, path_prefix=path),
    "429": lambda path: Fault.http(429, {"Retry-After": "0"}, path_prefix=path),
    "timeout": lambda path: Fault.timeout(path_prefix=path),
    "reset": lambda path: Fault.reset(path_prefix=path),
    "truncated": lambda path: Fault.truncated(path_prefix=path),
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    """One server for the module; each test resets it."""
    with FakeOllama() as running:
        running.server.hang_seconds = TIMEOUT * 2
        yield running


@pytest.fixture
def fake(server: FakeOllama) -> FakeOllama:
    server.reset()
    server.pull(BASE, family="llama", parameter_size="8.0B")
    server.pull(FINETUNE, parent_model=BASE, quantization_level="Q5_K_M")
    return server


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as opened:
        yield opened


def adapter(fake: FakeOllama, **options) -> OllamaRegistry:
    """An adapter with a cache of its own unless one is given (as the ledger's adapter cache)."""
    return OllamaRegistry(fake.url, **{"cache": MemoryCache(), "timeout": TIMEOUT, "policy": POLICY, **options})


def scan(ledger: Ledger, fake: FakeOllama, **options) -> ScanResult:
    """One scan through a fresh adapter, as `weightkeeper scan` makes one (with the ledger's adapter cache)."""
    config = RegistryConfig("ollama", "ollama", {"url": fake.url})
    registry_id = ledger.registry_id(config.name, config.kind, config.location)
    registry = adapter(fake, **{"cache": LedgerAdapterCache(ledger, registry_id), **options})
    try:
        return Scanner(ledger, config, registry).run()
    finally:
        registry.close()


def events(ledger: Ledger, scan_id: int) -> list[tuple[str, str, dict]]:
    """(kind, model name at the event, detail) of one scan's events."""
    rows = ledger.conn.execute(
        "SELECT e.kind, COALESCE(o.name, m.name) AS model, e.detail FROM events e"
        " JOIN models m ON m.id = e.model_id LEFT JOIN observations o ON o.id = e.observation_id"
        " WHERE e.scan_id = ? ORDER BY e.id", (scan_id,))
    return [(row["kind"], row["model"], json.loads(row["detail"])) for row in rows]


def state(ledger: Ledger, name: str) -> str:
    return ledger.conn.execute("SELECT state FROM models WHERE name = ?", (name,)).fetchone()[0]


def count(ledger: Ledger, kind: str) -> int:
    return ledger.conn.execute("SELECT COUNT(*) FROM events WHERE kind = ?", (kind,)).fetchone()[0]


# -- what a scan records -------------------------------------------------------------------------


def test_first_scan_records_each_tag_with_its_lineage(ledger: Ledger, fake: FakeOllama) -> None:
    result = scan(ledger, fake)
    assert result.status == "complete", result.error
    assert sorted((kind, name) for kind, name, _ in events(ledger, result.scan_id)) == [
        ("appeared", BASE), ("appeared", FINETUNE)]

    row = ledger.conn.execute("SELECT key, last_observation_id FROM models WHERE name = ?", (FINETUNE,)).fetchone()
    record = ledger.load_record(row["last_observation_id"])
    tag = fake.tags[FINETUNE]
    assert row["key"] == record.key == record.revision == tag.digest
    assert record.lineage == (Lineage(BASE, None),)
    assert record.files == (FileEntry("blobs", tag.manifest.size, None),)  # the manifest digest hashes no blob
    assert record.last_modified == tag.modified_at.astimezone(UTC).isoformat()
    assert record.last_modified.endswith("+00:00")
    assert record.extra == {"format": "gguf", "family": "llama", "families": ["llama"],
                            "parameter_size": "8.0B", "quantization_level": "Q5_K_M"}
    base = ledger.load_record(ledger.conn.execute(
        "SELECT last_observation_id FROM models WHERE name = ?", (BASE,)).fetchone()[0])
    assert base.lineage == ()

    again = scan(ledger, fake)
    assert again.status == "complete" and again.events == {}


def test_older_servers_give_the_parent_through_show_once_per_digest(ledger: Ledger, server: FakeOllama) -> None:
    """Before the model-list cache, /api/tags always says parent_model "": /api/show has it."""
    server.reset(parent_in_tags=False)
    server.pull(BASE)
    server.pull(FINETUNE, parent_model=BASE)
    first = scan(ledger, server)
    assert first.status == "complete", first.error
    assert sorted(server.shown(), key=str) == [{"model": BASE}, {"model": FINETUNE}]
    record = ledger.load_record(ledger.conn.execute(
        "SELECT last_observation_id FROM models WHERE name = ?", (FINETUNE,)).fetchone()[0])
    assert record.lineage == (Lineage(BASE, None),)

    scan(ledger, server)
    assert len(server.shown()) == 2  # the digests did not change: the adapter cache answers
    server.change(FINETUNE, parent_model="llama3.2:3b")
    changed = scan(ledger, server)
    ((kind, name, detail),) = events(ledger, changed.scan_id)
    assert (kind, name) == ("updated", FINETUNE) and "lineage" in detail["changed"]
    assert server.shown()[2:] == [{"model": FINETUNE}]


def test_with_a_fresh_cache_an_adapter_asks_once_per_digest(server: FakeOllama) -> None:
    server.reset(parent_in_tags=False)
    server.pull(BASE)
    registry = adapter(server)
    try:
        (page,) = registry.pages(None)
        assert registry.records(page) == registry.records(page)
    finally:
        registry.close()
    assert server.shown() == [{"model": BASE}]


def test_removed_tag_is_suspected_then_deleted(ledger: Ledger, fake: FakeOllama) -> None:
    scan(ledger, fake)
    fake.remove(FINETUNE)
    result = scan(ledger, fake)
    assert result.status == "complete", result.error
    assert [(kind, name) for kind, name, _ in events(ledger, result.scan_id)] == [
        ("suspected_missing", FINETUNE), ("deleted", FINETUNE)]
    assert state(ledger, FINETUNE) == "deleted"
    assert fake.shown()[-1:] == [{"model": FINETUNE}]  # the confirming lookup, in the shape Ollama reads


def test_copy_then_remove_is_a_rename(ledger: Ledger, fake: FakeOllama) -> None:
    scan(ledger, fake)
    model_id = ledger.conn.execute("SELECT id FROM models WHERE name = ?", (FINETUNE,)).fetchone()[0]
    fake.copy(FINETUNE, "myorg/finetune-v2:latest")  # ollama cp …
    fake.remove(FINETUNE)                            # ollama rm …
    result = scan(ledger, fake)
    assert result.status == "complete", result.error
    assert events(ledger, result.scan_id) == [
        ("renamed", "myorg/finetune-v2:latest", {"from": FINETUNE, "to": "myorg/finetune-v2:latest"})]
    assert tuple(ledger.conn.execute("SELECT id, state FROM models WHERE name = 'myorg/finetune-v2:latest'"
                                     ).fetchone()) == (model_id, "present")
    assert count(ledger, "deleted") == 0 and {"model": FINETUNE} not in fake.shown()


def test_a_copy_alone_is_a_new_model(ledger: Ledger, fake: FakeOllama) -> None:
    scan(ledger, fake)
    fake.copy(FINETUNE, "backup/finetune:latest")
    result = scan(ledger, fake)
    assert [(kind, name) for kind, name, _ in events(ledger, result.scan_id)] == [
        ("appeared", "backup/finetune:latest")]
    assert state(ledger, FINETUNE) == "present"


def test_a_tag_pointing_at_a_new_manifest_is_updated(ledger: Ledger, fake: FakeOllama) -> None:
    scan(ledger, fake)
    old = fake.tags[BASE].digest
    fake.retag(BASE)  # ollama pull brought a newer build under the same tag
    result = scan(ledger, fake)
    ((kind, name, detail),) = events(ledger, result.scan_id)
    assert (kind, name) == ("updated", BASE) and "revision" in detail["changed"]
    assert ledger.conn.execute("SELECT key FROM models WHERE name = ?", (BASE,)).fetchone()[0] != old

    fake.change(BASE, quantization_level="Q8_0")
    requantized = scan(ledger, fake)
    ((kind, _, detail),) = events(ledger, requantized.scan_id)
    assert kind == "updated" and {"revision", "extra.quantization_level"} <= set(detail["changed"])


def test_a_rename_goes_to_the_tag_that_was_listed_last_time(ledger: Ledger, fake: FakeOllama) -> None:
    """Two tags of one manifest (as `ollama pull llama3` leaves llama3:latest and llama3:8b). One is removed
    while /api/show is down, so it stays suspected; then the other is renamed."""
    fake.reset()
    fake.pull("llama3:latest")
    fake.copy("llama3:latest", "llama3:8b")
    scan(ledger, fake)
    ids = dict(ledger.conn.execute("SELECT name, id FROM models").fetchall())
    suspect = min(ids, key=ids.get)  # the lower id: the engine's pick today
    renamed = max(ids, key=ids.get)
    fake.remove(suspect)
    fake.faults.extend(FAULTS["503"]("/api/show") for _ in range(ATTEMPTS))
    scan(ledger, fake)
    fake.rename(renamed, "llama3:backup")
    result = scan(ledger, fake)
    assert sorted((kind, name) for kind, name, _ in events(ledger, result.scan_id)) == [
        ("deleted", suspect), ("renamed", "llama3:backup")]
    assert ledger.conn.execute("SELECT id FROM models WHERE name = 'llama3:backup'").fetchone()[0] == ids[renamed]


# -- faults while listing ------------------------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_failing_listing_concludes_nothing(ledger: Ledger, fake: FakeOllama, fault: str) -> None:
    scan(ledger, fake)
    fake.remove(FINETUNE)
    fake.faults.extend(FAULTS[fault]("/api/tags") for _ in range(ATTEMPTS))
    failed = scan(ledger, fake)
    assert failed.status == "failed"
    assert "GET /api/tags" in failed.error and "nothing was concluded" in failed.error
    assert count(ledger, "suspected_missing") == count(ledger, "deleted") == 0
    assert state(ledger, FINETUNE) == "present"

    recovered = scan(ledger, fake)  # the faults have stopped: the deletion is found
    assert recovered.status == "complete" and recovered.resumed
    assert [(kind, name) for kind, name, _ in events(ledger, recovered.scan_id)] == [
        ("suspected_missing", FINETUNE), ("deleted", FINETUNE)]


def test_malformed_json_and_a_missing_models_list_conclude_nothing(ledger: Ledger, fake: FakeOllama) -> None:
    scan(ledger, fake)
    fake.remove(FINETUNE)
    fake.faults.append(Fault.http(200, {"Content-Type": "application/json"}, b'{"models": [{"name": "x"',
                                  path_prefix="/api/tags"))
    assert "not valid JSON" in scan(ledger, fake).error
    fake.faults.append(Fault.http(200, {"Content-Type": "application/json"}, b'{"error": "busy"}',
                                  path_prefix="/api/tags"))
    assert 'no "models" list' in scan(ledger, fake).error
    assert count(ledger, "suspected_missing") == 0


def test_transient_faults_are_retried_and_each_wait_reported(ledger: Ledger, fake: FakeOllama) -> None:
    fake.faults.extend([Fault.http(429, {"Retry-After": "0.2"}, path_prefix="/api/tags"),
                        Fault.reset(path_prefix="/api/tags")])
    waits: list[tuple[float, str]] = []
    result = scan(ledger, fake, on_wait=lambda seconds, why: waits.append((seconds, why)))
    assert result.status == "complete", result.error
    assert [seconds for seconds, _ in waits] == [0.2, POLICY.first_backoff * 2]  # the server's wait, then backoff
    assert "HTTP 429" in waits[0][1] and "connection failed" in waits[1][1]


def test_a_malformed_entry_is_a_problem_not_a_deletion(ledger: Ledger, fake: FakeOllama) -> None:
    scan(ledger, fake)
    good = fake.route  # answer /api/tags with one entry broken, as a buggy proxy might

    def broken(request):
        reply = good(request)
        if request.path == "/api/tags":
            answer = json.loads(reply.body)
            for entry in answer["models"]:
                if entry["name"] == FINETUNE:
                    entry["modified_at"] = "yesterday"
            answer["models"].append({"model": "no-digest:latest", "size": 1})
            reply = Reply.json(answer)
        return reply

    fake.server.route = broken
    result = scan(ledger, fake)
    assert result.status == "complete", result.error
    assert {problem["model"]: problem["message"] for problem in result.problems} == {
        FINETUNE: f"{FINETUNE}: modified_at 'yesterday' is not an RFC 3339 time with a zone",
        "no-digest:latest": "no-digest:latest has no manifest digest in /api/tags"}
    assert result.events == {} and state(ledger, FINETUNE) == "present"


GOOD = {"name": "a:latest", "size": 10, "digest": "d" * 64, "modified_at": "2025-03-01T09:31:00.123456789-07:00",
        "details": {"parent_model": "base:latest"}}


@pytest.mark.parametrize(("entry", "problem"), [
    (["a:latest"], ("(unnamed entry)", 'an entry of /api/tags is not an object: ["a:latest"]')),
    ({**GOOD, "name": ""}, ("(unnamed entry)", "an entry of /api/tags has no name")),
    ({**GOOD, "digest": None}, ("a:latest", "a:latest has no manifest digest in /api/tags")),
    ({**GOOD, "size": "10"}, ("a:latest", "a:latest has no valid size in /api/tags (got '10')")),
    ({**GOOD, "size": True}, ("a:latest", "a:latest has no valid size in /api/tags (got True)")),
    ({**GOOD, "details": "gguf"}, ("a:latest", 'a:latest: "details" is not an object in /api/tags')),
    ({**GOOD, "modified_at": "2025-03-01T09:31:00"}, (
        "a:latest", "a:latest: modified_at '2025-03-01T09:31:00' is not an RFC 3339 time with a zone")),
    ({**GOOD, "modified_at": 1740846660}, (
        "a:latest", "a:latest: modified_at 1740846660 is not an RFC 3339 time with a zone")),
], ids=["not-object", "no-name", "no-digest", "size-text", "size-bool", "details-text", "naive-time", "epoch"])
def test_entries_that_cannot_be_read_are_problems(fake: FakeOllama, entry: object, problem: tuple[str, str]) -> None:
    registry = adapter(fake)
    try:
        (item,) = registry.records(Page((entry,), cursor=None))
    finally:
        registry.close()
    assert isinstance(item, RecordProblem) and item.name == problem[0] and item.message.startswith(problem[1])


@pytest.mark.parametrize("modified_at", [None, "0001-01-01T00:00:00Z"], ids=["absent", "go-zero-time"])
def test_an_unknown_modification_time_is_none(fake: FakeOllama, modified_at: str | None) -> None:
    registry = adapter(fake)
    try:
        (record,) = registry.records(Page(({**GOOD, "modified_at": modified_at},), cursor=None))
    finally:
        registry.close()
    assert record.last_modified is None and record.lineage == (Lineage("base:latest", None),)


# -- faults while confirming a deletion ----------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_failing_lookup_leaves_the_model_suspected_until_a_clean_scan(
        ledger: Ledger, fake: FakeOllama, fault: str) -> None:
    scan(ledger, fake)
    fake.remove(FINETUNE)
    fake.faults.extend(FAULTS[fault]("/api/show") for _ in range(ATTEMPTS))
    first = scan(ledger, fake)
    assert first.status == "complete", first.error
    assert [(kind, name) for kind, name, _ in events(ledger, first.scan_id)] == [("suspected_missing", FINETUNE)]
    assert state(ledger, FINETUNE) == "suspected_missing"
    ((problem),) = first.problems
    assert problem["model"] == FINETUNE and problem["message"].startswith("lookup failed, still suspected missing")

    fake.faults.extend(FAULTS[fault]("/api/show") for _ in range(ATTEMPTS))
    second = scan(ledger, fake)  # still failing: no second suspicion, no deletion
    assert events(ledger, second.scan_id) == [] and state(ledger, FINETUNE) == "suspected_missing"

    clean = scan(ledger, fake)
    assert [(kind, name) for kind, name, _ in events(ledger, clean.scan_id)] == [("deleted", FINETUNE)]
    assert count(ledger, "suspected_missing") == count(ledger, "deleted") == 1


def test_a_404_that_is_not_ollamas_is_no_deletion(ledger: Ledger, fake: FakeOllama) -> None:
    scan(ledger, fake)
    fake.remove(FINETUNE)
    fake.faults.append(Fault.http(404, {"Content-Type": "text/html"}, b"<html>Not Found</html>",
                                  path_prefix="/api/show"))  # a proxy that does not route /api/show
    result = scan(ledger, fake)
    assert state(ledger, FINETUNE) == "suspected_missing"
    assert "HTTP 404 without Ollama's" in result.problems[0]["message"]


def test_a_tag_that_comes_back_is_restored(ledger: Ledger, fake: FakeOllama) -> None:
    scan(ledger, fake)
    fake.remove(FINETUNE)
    fake.faults.extend(FAULTS["503"]("/api/show") for _ in range(ATTEMPTS))
    scan(ledger, fake)
    fake.pull(FINETUNE, parent_model=BASE)  # pulled again: a new manifest
    back = scan(ledger, fake)
    assert [kind for kind, _, _ in events(ledger, back.scan_id)] == ["restored", "updated"]
    assert state(ledger, FINETUNE) == "present" and count(ledger, "deleted") == 0


# -- lookups and the wire format -----------------------------------------------------------------


def test_lookup_answers_found_with_the_listed_record_or_gone(fake: FakeOllama) -> None:
    registry = adapter(fake)
    try:
        (page,) = registry.pages(None)
        assert page.cursor is None
        listed = {record.name: record for record in registry.records(page)}
        assert registry.lookup(FINETUNE) == Found(listed[FINETUNE])
        assert registry.lookup("gone:latest") == Gone(f"Ollama at {fake.url} answers 404 for gone:latest: "
                                                      "model not found")
        fake.faults.append(Fault.http(200, body=b'{"models": []}', path_prefix="/api/tags"))
        with pytest.raises(RegistryUnavailable, match="shows myorg/finetune:latest but /api/tags does not list it"):
            registry.lookup(FINETUNE)
    finally:
        registry.close()
    assert fake.shown()[-3:] == [{"model": FINETUNE}, {"model": "gone:latest"}, {"model": FINETUNE}]


def test_the_fake_rejects_show_requests_the_way_ollama_does(fake: FakeOllama) -> None:
    """So an adapter sending the wrong shape fails the tests above: no 404, so never a deletion."""
    with httpx.Client(base_url=fake.url) as client:
        assert client.post("/api/show").json() == {"error": "missing request body"}
        for body in (b"{model: x}", b'["x"]', b'{"model": 7}'):
            assert client.post("/api/show", content=body).status_code == 400
        assert client.get("/api/pull").text == "404 page not found"
        for body in ({}, {"tag": FINETUNE}, {"model": ""}):
            answer = client.post("/api/show", json=body)
            assert (answer.status_code, answer.json()) == (400, {"error": "model is required"})
        assert client.post("/api/show", json={"name": "old:client"}).json() == {"error": "model 'old:client' not found"}
        assert client.post("/api/show", json={"model": "myorg/finetune"}).status_code == 200  # :latest implied
        assert client.get("/api/show").status_code == 405


def test_a_lookup_that_cannot_be_read_concludes_nothing(fake: FakeOllama) -> None:
    registry = adapter(fake)
    try:
        fake.faults.append(Fault.http(200, body=b'["not", "an", "object"]', path_prefix="/api/show"))
        with pytest.raises(RegistryUnavailable, match="the answer is not a JSON object"):
            registry.lookup(FINETUNE)
        fake.faults.append(Fault.http(200, body=json.dumps({"models": [{"name": FINETUNE, "size": -1}]}).encode(),
                                      path_prefix="/api/tags"))
        with pytest.raises(RegistryUnavailable, match="is listed, but its entry cannot be read: .* no manifest digest"):
            registry.lookup(FINETUNE)
    finally:
        registry.close()


def test_a_record_problem_when_a_tag_vanishes_while_listing(server: FakeOllama) -> None:
    server.reset(parent_in_tags=False)
    server.pull("solo:latest")
    registry = adapter(server)
    try:
        (page,) = registry.pages(None)
        server.remove("solo:latest")
        assert registry.records(page) == [RecordProblem(
            "solo:latest", "solo:latest is listed by /api/tags, but /api/show answers 404 (removed while listing?)")]
    finally:
        registry.close()


# -- check ---------------------------------------------------------------------------------------


def test_check_says_the_version_and_what_is_listed(fake: FakeOllama) -> None:
    registry = adapter(fake)
    try:
        assert registry.check() == f"Ollama 0.6.5 at {fake.url} answers; /api/tags lists 2 models"
    finally:
        registry.close()


def test_check_of_an_unreachable_server_says_what_to_do() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens once the socket closes
    registry = OllamaRegistry(url, cache=MemoryCache(), timeout=TIMEOUT, policy=RetryPolicy(attempts=1))
    with pytest.raises(RegistryUnavailable) as failure:
        registry.check()
    message = str(failure.value)
    assert "connection failed" in message and "`ollama serve`" in message and url in message


@pytest.mark.parametrize("reply", [
    Reply(404, b"404 page not found", {"Content-Type": "text/plain"}),
    Reply(200, b"<html>a dashboard</html>", {"Content-Type": "text/html"}),
    Reply.json({"status": "ok"}),
], ids=["404", "html", "other-json"])
def test_check_of_something_else_says_it_is_not_ollama(server: FakeOllama, reply: Reply) -> None:
    server.reset()
    server.server.route = lambda request: reply
    registry = OllamaRegistry(server.url, cache=MemoryCache(), timeout=TIMEOUT, policy=POLICY)
    try:
        with pytest.raises(RegistryUnavailable, match="answers, but not like an Ollama server: GET /api/version"):
            registry.check()
    finally:
        registry.close()


def test_open_registry_builds_the_adapter_from_the_config(tmp_path: Path, fake: FakeOllama) -> None:
    config = RegistryConfig("home", "ollama", {"url": fake.url + "/"})
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        registry_id = ledger.registry_id(config.name, config.kind, config.location)
        registry = open_registry(config, digests=LedgerDigestCache(ledger, registry_id),
                                 cache=LedgerAdapterCache(ledger, registry_id))
        assert isinstance(registry, OllamaRegistry) and registry.url == fake.url
        try:
            assert "/api/tags lists 2 models" in registry.check()
        finally:
            registry.close()
