"""The MLflow Model Registry adapter against a real `mlflow server`, scanned into a real SQLite ledger.

One server runs for the process (starting one takes 10-30 s; tests/conftest.py's `mlflow_server`); each test
changes its registry, emptied for it, through the REST API and scans it with the real scan engine.
Only the answers MLflow cannot be made to give here (401, HTML, a foreign 404) come from a fake.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_fakes import FakeServer, Reply, Request
from mlflow_server import MLflowServer
from ledger_reading import query, scan_events
from registry_fakes import SharedList
from tools.registries import open_registry
from tools.registries.http import RetryPolicy
from tools.registries.mlflow_models import MLflowRegistry
from weightkeeper.config import RegistryConfig, ScanSettings
from weightkeeper.domain import Found, Gone, ModelRecord, Page
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.store import LedgerAdapterCache, LedgerDigestCache
from weightkeeper.scan import Scanner, ScanResult

# `mlflow server` comes with the dev extra; its check is by spec, since importing mlflow takes seconds.
pytestmark = [pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                 reason="mlflow is not installed: pip install -e '.[dev]'"),
              pytest.mark.slow]  # the server takes 10-30 s to start
REGISTRY = "lab"
FAST = RetryPolicy(attempts=2, first_backoff=0.05)
EACH_PAGE = ScanSettings(commit_records=1)
TOKEN = "s3cret-test-token"


@pytest.fixture
def mlflow(mlflow_server: MLflowServer) -> MLflowServer:
    """The process's server (tests/conftest.py) with an empty registry."""
    return mlflow_server


# -- helpers --------------------------------------------------------------------------------------


def adapter(server: MLflowServer, **options: object) -> MLflowRegistry:
    return MLflowRegistry(server.url, token=None, policy=FAST, **options)


def scan(ledger_path: Path, registry: MLflowRegistry, settings: ScanSettings = ScanSettings()) -> ScanResult:
    config = RegistryConfig(REGISTRY, "mlflow", {"url": registry.url})
    with Ledger(ledger_path) as ledger:
        return Scanner(ledger, config, registry, settings=settings).run()


def states(ledger_path: Path) -> dict[str, str]:
    return {row["name"]: row["state"] for row in query(ledger_path, "SELECT name, state FROM models")}


def stored_record(ledger_path: Path, name: str) -> ModelRecord:
    with Ledger(ledger_path) as ledger:
        (observation_id,) = ledger.conn.execute(
            "SELECT last_observation_id FROM models WHERE name = ?", (name,)).fetchone()
        return ledger.load_record(observation_id)


def lineage_of(ledger_path: Path, name: str) -> list[tuple[str, str | None]]:
    return [tuple(row) for row in query(
        ledger_path,
        "SELECT base_model, relation FROM observation_lineage WHERE observation_id ="
        " (SELECT last_observation_id FROM models WHERE name = ?) ORDER BY rowid",
        (name,),
    )]


def listing_pass(page: Page) -> str:
    """Which pass of the listing read a page: "names", or "recent" (models updated since the listing began).
    The name pass's last page carries the cursor that starts the recent pass."""
    cursor = json.loads(page.cursor)
    last_of_names = (cursor["phase"], cursor["page_token"]) == ("recent", None)
    return "names" if cursor["phase"] == "names" or last_of_names else "recent"


def conclusions(ledger_path: Path) -> int:
    return query(ledger_path, "SELECT COUNT(*) FROM events WHERE kind IN ('suspected_missing', 'deleted')")[0][0]


# -- what a version records -----------------------------------------------------------------------


def test_versions_appear_with_lineage_stage_aliases_and_tags(mlflow: MLflowServer, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    mlflow.create_model("alpha", {"base_model": "meta/llama", "team": "nlp"})
    mlflow.create_version("alpha")
    mlflow.create_version("alpha", {"base_model": "acme/alpha-base", "base_model_relation": "adapter"})
    mlflow.set_alias("alpha", "champion", "2")
    mlflow.create_model("merged", {"base_model": "a/one, b/two"})
    mlflow.create_version("merged")
    mlflow.create_model("solo")
    mlflow.create_version("solo")
    mlflow.create_model("no-versions-yet")

    # Built the way `weightkeeper scan` builds it, with a token from the environment.
    config = RegistryConfig(REGISTRY, "mlflow", {"url": mlflow.url}, token_env="MLFLOW_TOKEN")
    with Ledger(ledger) as opened:
        registry_id = opened.registry_id(config.name, config.kind, config.location)
        registry = open_registry(config, digests=LedgerDigestCache(opened, registry_id),
                                 cache=LedgerAdapterCache(opened, registry_id), environ={"MLFLOW_TOKEN": TOKEN})
        assert isinstance(registry, MLflowRegistry)
        first = Scanner(opened, config, registry).run()

    assert first.status == "complete", first.error
    assert first.events == {"appeared": 4} and first.problems == []
    assert states(ledger) == dict.fromkeys(["alpha/1", "alpha/2", "merged/1", "solo/1"], "present")
    assert lineage_of(ledger, "alpha/1") == [("meta/llama", "finetune")]  # the registered model's tag
    assert lineage_of(ledger, "alpha/2") == [("acme/alpha-base", "adapter")]  # the version's own tag wins
    assert lineage_of(ledger, "merged/1") == [("a/one", "merge"), ("b/two", "merge")]
    assert lineage_of(ledger, "solo/1") == []

    record = stored_record(ledger, "alpha/2")
    run_id, artifact_uri = mlflow.source_run()
    source = mlflow.call("GET", "model-versions/get?name=alpha&version=2")["model_version"]["source"]
    assert source.startswith(f"{artifact_uri}/model-")  # numbered by the server's versions so far
    assert record.revision == "2"
    assert record.created_at.endswith("+00:00") and record.last_modified.endswith("+00:00")
    assert record.extra == {
        "stage": "None", "aliases": ["champion"],
        "tags": {"base_model": "acme/alpha-base", "base_model_relation": "adapter"},
        "model_tags": {"base_model": "meta/llama", "team": "nlp"},
        "source": source, "run_id": run_id, "model_id": None, "status": "READY",
    }
    assert stored_record(ledger, "alpha/1").extra["aliases"] == []
    # A lookup builds the very record the listing built, so an unlisted-then-found model reads as unchanged.
    assert registry.lookup("alpha/2") == Found(record)
    assert TOKEN.encode() not in ledger.read_bytes()

    again = scan(ledger, adapter(mlflow))
    assert again.status == "complete" and again.events == {}


def test_archived_stage_and_new_alias_are_recorded(mlflow: MLflowServer, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    mlflow.create_model("alpha")
    mlflow.create_version("alpha")
    mlflow.create_version("alpha")
    assert scan(ledger, adapter(mlflow)).events == {"appeared": 2}

    mlflow.transition_stage("alpha", "1", "Archived")
    mlflow.set_alias("alpha", "prod", "2")
    result = scan(ledger, adapter(mlflow))

    assert result.status == "complete", result.error
    assert stored_record(ledger, "alpha/1").extra["stage"] == "Archived"
    assert stored_record(ledger, "alpha/2").extra["aliases"] == ["prod"]
    assert scan_events(ledger, result.scan_id) == [
        ("stage_changed", "alpha/1", {"from": "None", "to": "Archived"}),
        ("updated", "alpha/2", {"changed": ["extra.aliases"]}),
    ]


# -- deletions and renames ------------------------------------------------------------------------


def test_deleted_version_is_suspected_then_confirmed_deleted(mlflow: MLflowServer, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    mlflow.create_model("alpha")
    mlflow.create_version("alpha")
    mlflow.create_version("alpha")
    scan(ledger, adapter(mlflow))

    mlflow.delete_version("alpha", "1")
    result = scan(ledger, adapter(mlflow))

    events = scan_events(ledger, result.scan_id)
    assert [(kind, model) for kind, model, _ in events] == [("suspected_missing", "alpha/1"), ("deleted", "alpha/1")]
    reason = events[1][2]["reason"]
    assert "RESOURCE_DOES_NOT_EXIST" in reason and "'alpha' exists, its version 1 no longer does" in reason
    assert states(ledger) == {"alpha/1": "deleted", "alpha/2": "present"}


def test_deleted_registered_model_deletes_every_version(mlflow: MLflowServer, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    mlflow.create_model("alpha")
    for _ in range(3):
        mlflow.create_version("alpha")
    mlflow.create_model("beta")
    mlflow.create_version("beta")
    scan(ledger, adapter(mlflow))

    mlflow.delete_model("alpha")
    result = scan(ledger, adapter(mlflow))

    assert result.status == "complete", result.error
    assert result.events == {"suspected_missing": 3, "deleted": 3}
    assert states(ledger) == {"alpha/1": "deleted", "alpha/2": "deleted", "alpha/3": "deleted", "beta/1": "present"}
    reasons = [detail["reason"] for kind, _, detail in scan_events(ledger, result.scan_id) if kind == "deleted"]
    assert all("registered model 'alpha' no longer exists" in reason for reason in reasons), reasons


def test_renamed_registered_model_is_a_rename_not_a_deletion(mlflow: MLflowServer, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    mlflow.create_model("alpha", {"base_model": "meta/llama"})
    mlflow.create_version("alpha")
    mlflow.create_version("alpha")
    mlflow.create_model("beta")
    mlflow.create_version("beta")
    scan(ledger, adapter(mlflow))
    ids = {row["name"]: row["id"] for row in query(ledger, "SELECT name, id FROM models")}

    mlflow.rename_model("alpha", "zeta")
    # MLflow keeps no trace of a rename: the old name answers like a deleted model.
    assert isinstance(adapter(mlflow).lookup("alpha/1"), Gone)
    result = scan(ledger, adapter(mlflow))

    assert result.status == "complete", result.error
    assert scan_events(ledger, result.scan_id) == [
        ("renamed", "zeta/1", {"from": "alpha/1", "to": "zeta/1"}),
        ("renamed", "zeta/2", {"from": "alpha/2", "to": "zeta/2"}),
    ]
    assert {row["name"]: row["id"] for row in query(ledger, "SELECT name, id FROM models")} == {
        "zeta/1": ids["alpha/1"], "zeta/2": ids["alpha/2"], "beta/1": ids["beta/1"]}
    assert lineage_of(ledger, "zeta/1") == [("meta/llama", "finetune")]


def test_model_renamed_behind_the_cursor_mid_listing_is_still_a_rename(mlflow: MLflowServer, tmp_path: Path) -> None:
    """Pages are offsets into a name-ordered list: a model renamed to a name before the cursor is skipped
    by the name pass, and only the pass over recently updated models lists it."""
    ledger = tmp_path / "ledger.sqlite3"
    for name in ("m1", "m2", "m3"):
        mlflow.create_model(name)
        mlflow.create_version(name)
    assert scan(ledger, adapter(mlflow, page_size=1)).events == {"appeared": 3}
    mlflow.wait_until_older(["m1", "m2", "m3"], 1.0)  # older than the next listing's start, by the server's clock
    listed = SharedList()  # (pass, model) as the process reading the listing met them

    class RenamingMidListing(MLflowRegistry):
        def pages(self, cursor: str | None) -> Iterator[Page]:
            for number, page in enumerate(super().pages(cursor)):
                for model in page.items:
                    listed.append((listing_pass(page), model["name"]))
                yield page
                if number == 0:
                    mlflow.rename_model("m3", "a0")

    result = scan(ledger, RenamingMidListing(mlflow.url, token=None, policy=FAST, page_size=1, clock_margin=0))

    assert result.status == "complete", result.error
    # The rename updated the model, so the recent pass lists it, and it alone.
    listed_by_pass: dict[str, set[str]] = {}
    for listing, name in listed.items():
        listed_by_pass.setdefault(listing, set()).add(name)
    assert listed_by_pass == {"names": {"m1", "m2"}, "recent": {"a0"}}
    assert scan_events(ledger, result.scan_id) == [("renamed", "a0/1", {"from": "m3/1", "to": "a0/1"})]
    assert conclusions(ledger) == 0


def test_model_deleted_behind_the_cursor_mid_listing_costs_a_false_suspicion_not_a_deletion(
        mlflow: MLflowServer, tmp_path: Path) -> None:
    """A registered model deleted behind the cursor shifts the offsets, so the name pass skips the next
    model. Unless it was updated lately (then the recent pass lists it), it is absent from this listing:
    suspected missing, and found again by the direct lookup."""
    ledger = tmp_path / "ledger.sqlite3"
    for name in ("m1", "m2", "m3"):
        mlflow.create_model(name)
        mlflow.create_version(name)
    scan(ledger, adapter(mlflow, page_size=1))
    mlflow.wait_until_older(["m1", "m2", "m3"], 1.0)  # older than the next listing's start, by the server's clock

    class DeletingMidListing(MLflowRegistry):
        def pages(self, cursor: str | None) -> Iterator[Page]:
            for number, page in enumerate(super().pages(cursor)):
                yield page
                if number == 0:
                    mlflow.delete_model("m1")

    result = scan(ledger, DeletingMidListing(mlflow.url, token=None, policy=FAST, page_size=1, clock_margin=0))

    assert result.status == "complete", result.error
    assert [(kind, model) for kind, model, _ in scan_events(ledger, result.scan_id)] == [
        ("suspected_missing", "m2/1"), ("restored", "m2/1")]
    assert set(states(ledger).values()) == {"present"}  # m1 was listed before it was deleted
    after = scan(ledger, adapter(mlflow))
    assert [(kind, model) for kind, model, _ in scan_events(ledger, after.scan_id)] == [
        ("suspected_missing", "m1/1"), ("deleted", "m1/1")]


# -- paging ---------------------------------------------------------------------------------------


def test_listing_longer_than_a_page_is_complete_and_resumes_after_a_page(mlflow: MLflowServer,
                                                                         tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    names = [f"m{number}" for number in range(5)]
    for name in names:
        mlflow.create_model(name)
        mlflow.create_version(name)
    mlflow.create_model("many")
    for _ in range(5):
        mlflow.create_version("many")
    registry = adapter(mlflow, page_size=2, versions_page_size=2)

    result = scan(ledger, registry, EACH_PAGE)
    assert result.status == "complete", result.error
    expected = {f"{name}/1" for name in names} | {f"many/{number}" for number in range(1, 6)}
    assert result.events == {"appeared": len(expected)}
    assert set(states(ledger)) == expected

    # A listing resumed from a page's cursor goes on with the next registered models by name.
    pages = list(registry.pages(None))
    by_name = [page for page in pages if listing_pass(page) == "names"]
    assert [[model["name"] for model in page.items] for page in by_name] == [["m0", "m1"], ["m2", "m3"], ["m4", "many"]]
    resumed = list(registry.pages(by_name[0].cursor))
    assert [model["name"] for model in resumed[0].items] == ["m2", "m3"]
    assert [model["name"] for model in resumed[1].items] == ["m4", "many"]
    # A cursor this adapter did not write starts the listing over.
    assert [page.items for page in registry.pages("not a cursor")][:3] == [page.items for page in by_name]


def test_names_with_quotes_list_their_versions(mlflow: MLflowServer, tmp_path: Path) -> None:
    """A version search filters by a quoted name; a name holding both quotes cannot be quoted at all."""
    ledger = tmp_path / "ledger.sqlite3"
    names = ["it's", 'say "hi"', "o'neil \"v2\"", "back\\slash"]
    for name in names:
        mlflow.create_model(name)
        mlflow.create_version(name)
        mlflow.create_version(name)
    result = scan(ledger, adapter(mlflow))
    assert result.status == "complete" and result.problems == []
    assert set(states(ledger)) == {f"{name}/{number}" for name in names for number in (1, 2)}


# -- a server that fails --------------------------------------------------------------------------


def test_check_says_what_it_verified(mlflow: MLflowServer) -> None:
    assert adapter(mlflow).check() == (
        f"the MLflow model registry at {mlflow.url} answers registered-models/search; "
        "no token was sent (none configured)")
    with_token = MLflowRegistry(mlflow.url, token=TOKEN, policy=FAST).check()
    assert "bearer token was accepted" in with_token and TOKEN not in with_token


def test_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    closed = MLflowServer(tmp_path)  # a free port nobody listens on
    registry = MLflowRegistry(closed.url, token=TOKEN, policy=FAST)
    for call in (registry.check, lambda: registry.lookup("alpha/1"), lambda: list(registry.pages(None))):
        with pytest.raises(RegistryUnavailable, match="connection failed") as raised:
            call()
        assert closed.url in str(raised.value) and TOKEN not in str(raised.value)
    with pytest.raises(RegistryUnavailable, match="Is the MLflow tracking server running there"):
        registry.check()


def _fake(status: int, body: bytes, content_type: str) -> FakeServer:
    return FakeServer(lambda request: Reply(status, body, {"Content-Type": content_type}))


@pytest.mark.parametrize(
    ("status", "body", "content_type", "token", "expected"),
    [
        (401, b'{"error_code": "UNAUTHENTICATED"}', "application/json", TOKEN, "rejected the bearer token"),
        (403, b'{"error_code": "PERMISSION_DENIED"}', "application/json", TOKEN, "may not read this model registry"),
        (403, b'{"error_code": "PERMISSION_DENIED"}', "application/json", None, "none were sent; name the environment"),
        (200, b"<html>a web app</html>", "text/html", None, "not JSON"),
        (404, b"Not Found", "text/plain", None, "is http://127.0.0.1:"),
        (404, b'{"error_code": "ENDPOINT_NOT_FOUND"}', "application/json", None, "an MLflow tracking server"),
        (503, b"overloaded", "text/plain", None, "HTTP 503"),
    ],
    ids=["401-token", "403-token", "403-no-token", "html", "foreign-404", "404-not-a-missing-resource", "503"],
)
def test_answers_that_are_not_mlflow_conclude_nothing(status: int, body: bytes, content_type: str,
                                                      token: str | None, expected: str) -> None:
    with _fake(status, body, content_type) as fake:
        registry = MLflowRegistry(fake.url, token=token, policy=FAST)
        for call in (registry.check, lambda: registry.lookup("alpha/1"), lambda: list(registry.pages(None))):
            with pytest.raises(RegistryUnavailable, match=expected) as raised:
                call()
            assert token is None or token not in str(raised.value)
        sent = {request.headers.get("authorization") for request in fake.requests}
        assert sent == {f"Bearer {token}" if token else None}


def test_lookup_gone_only_on_resource_does_not_exist() -> None:
    def route(request: Request) -> Reply:
        return Reply.json({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not found"}, status=404)

    with FakeServer(route) as fake:
        answer = MLflowRegistry(fake.url, token=None, policy=FAST).lookup("alpha/1")
    assert isinstance(answer, Gone) and "RESOURCE_DOES_NOT_EXIST" in answer.reason
    assert [request.path for request in fake.requests] == [
        "/api/2.0/mlflow/model-versions/get", "/api/2.0/mlflow/registered-models/get"]


def test_server_killed_mid_scan_fails_and_concludes_nothing(mlflow: MLflowServer, tmp_path: Path) -> None:
    """Last in the module: the server stays down (starting it again costs 10-30 s; `mlflow_server` does should
    a later test need it)."""
    ledger = tmp_path / "ledger.sqlite3"
    for name in ("m1", "m2", "m3", "m4"):
        mlflow.create_model(name)
        mlflow.create_version(name)
    assert scan(ledger, adapter(mlflow, page_size=1), EACH_PAGE).events == {"appeared": 4}
    waits: list[str] = []

    class StoppingMidListing(MLflowRegistry):
        def pages(self, cursor: str | None) -> Iterator[Page]:
            for number, page in enumerate(super().pages(cursor)):
                yield page
                if number == 0:
                    mlflow.kill()

    stopping = StoppingMidListing(mlflow.url, token=None, policy=FAST, page_size=1,
                                  on_wait=lambda seconds, why: waits.append(why))
    failed = scan(ledger, stopping, EACH_PAGE)

    assert failed.status == "failed" and "connection failed" in failed.error and mlflow.url in failed.error
    assert waits and all("connection failed" in why for why in waits)
    assert conclusions(ledger) == 0
    assert set(states(ledger).values()) == {"present"}
    # The page read before the outage is kept, with the cursor the next scan resumes from.
    (interrupted,) = query(ledger, "SELECT phase, pages, cursor FROM scans WHERE id = ?", (failed.scan_id,))
    assert (interrupted["phase"], interrupted["pages"]) == ("listing", 1)
    assert json.loads(interrupted["cursor"])["phase"] == "names"
