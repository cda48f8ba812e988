"""The scan engine's rules, one scenario each, on a real SQLite ledger and an in-memory registry."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from ledger_reading import integrity_errors
from registry_fakes import MemoryRegistry, SharedList

from weightkeeper.config import ScanSettings
from weightkeeper.domain import CARD_DIGEST_FORM, Card, FileEntry, Found, Hidden, Lineage, LookupResult, ModelRecord, Visibility
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.queries import EventFilter, events
from weightkeeper.scan import Scanner, ScanResult


def record(name: str, key: str | None = None, **changes: object) -> ModelRecord:
    base = ModelRecord(
        name=name,
        key=key or f"id-{name}",
        revision="r1",
        downloads=10,
        likes=1,
        lineage=(Lineage("meta-llama/Llama-3.1-8B", "finetune"),),
        card=Card(digest="c1", license="llama3.1", emissions={"emissions": 1200}, training={"epochs": 3}),
        files=(FileEntry("model.safetensors", 100, "a" * 64), FileEntry("README.md", 10, "b" * 64)),
    )
    return replace(base, **changes)


@pytest.fixture
def ledger(store: str | Path) -> Ledger:
    with Ledger(store) as opened:
        yield opened


def scan(ledger: Ledger, registry: MemoryRegistry) -> ScanResult:
    return Scanner(ledger, registry.config(), registry).run()


def kinds(ledger: Ledger, result: ScanResult) -> list[tuple[str, str]]:
    return [(row["event"], row["model"]) for row in events(ledger, EventFilter(scan_id=result.scan_id))]


def registry_of(*records: ModelRecord, page_size: int = 2) -> MemoryRegistry:
    return MemoryRegistry(models={r.name: r for r in records}, page_size=page_size)


def test_first_scan_records_every_model_once_and_an_unchanged_rescan_records_nothing(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two"), record("b/three"))
    first = scan(ledger, registry)
    assert first.status == "complete" and first.pages == 2 and first.models_seen == 3
    assert sorted(kinds(ledger, first)) == [("appeared", "a/one"), ("appeared", "a/two"), ("appeared", "b/three")]
    second = scan(ledger, registry)
    assert second.status == "complete" and kinds(ledger, second) == []
    assert ledger.conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 3


def test_content_change_is_an_update_naming_the_fields_and_usage_alone_is_no_event(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two"))
    scan(ledger, registry)
    registry.models["a/one"] = record("a/one", revision="r2",
                                      card=Card(digest="c2", license="apache-2.0", emissions={"emissions": 1200},
                                                training={"epochs": 3}))
    registry.models["a/two"] = record("a/two", downloads=99, likes=5)
    result = scan(ledger, registry)
    rows = events(ledger, EventFilter(scan_id=result.scan_id))
    assert [(row["event"], row["model"]) for row in rows] == [("updated", "a/one")]
    assert rows[0]["detail"]["changed"] == ["revision", "card.license"]
    usage = ledger.conn.execute(
        "SELECT downloads, likes FROM observations WHERE name = 'a/two' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert tuple(usage) == (99, 5)


def test_visibility_and_deprecation_are_their_own_events_not_updates(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two"))
    scan(ledger, registry)
    registry.models["a/one"] = record("a/one", visibility=Visibility.GATED)
    registry.models["a/two"] = record("a/two", shutdown_date="2027-03-01", successor="a/three")
    result = scan(ledger, registry)
    rows = {(row["event"], row["model"]): row["detail"] for row in events(ledger, EventFilter(scan_id=result.scan_id))}
    assert rows == {
        ("visibility_changed", "a/one"): {"from": "public", "to": "gated"},
        ("deprecation_announced", "a/two"): {"shutdown_date": "2027-03-01", "successor": "a/three"},
    }


def test_a_model_first_seen_with_an_announced_shutdown_gets_its_deprecation_announced(ledger: Ledger) -> None:
    """A watcher started after the announcement records it all the same, saying it was made before the model
    was first seen; a successor without a date announces nothing; a rescan repeats nothing."""
    deprecated = record("a/two", shutdown_date="2027-03-01", successor="a/three")
    registry = registry_of(record("a/one"), deprecated, record("a/four", successor="a/five"))
    first = scan(ledger, registry)
    assert first.events == {"appeared": 3, "deprecation_announced": 1}
    rows = events(ledger, EventFilter(scan_id=first.scan_id))
    (appeared,) = [row for row in rows if row["event"] == "appeared" and row["model"] == "a/two"]
    (announced,) = [row for row in rows if row["event"] == "deprecation_announced"]
    assert (announced["model"], announced["detail"]) == (
        "a/two", {"shutdown_date": "2027-03-01", "successor": "a/three", "first_seen": True})
    assert (announced["observation"], announced["at"]) == (appeared["observation"], appeared["at"])
    assert announced["id"] > appeared["id"], "the model appears before anything else is said of it"
    assert scan(ledger, registry).events == {}

    # A copy (a new name of a listed key) appears only once the listing is complete: announced as well.
    registry.models["a/two-copy"] = replace(deprecated, name="a/two-copy")
    copy = scan(ledger, registry)
    assert kinds(ledger, copy) == [("appeared", "a/two-copy"), ("deprecation_announced", "a/two-copy")]


def test_a_model_that_comes_back_with_a_new_shutdown_date_is_restored_and_announced(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two"))
    scan(ledger, registry)
    removed = registry.models.pop("a/two")
    scan(ledger, registry)
    registry.models["a/two"] = replace(removed, shutdown_date="2027-03-01")
    result = scan(ledger, registry)
    assert [(row["event"], row["model"], row["detail"]) for row in events(ledger, EventFilter(scan_id=result.scan_id))
            ] == [("restored", "a/two", {"was": "deleted", "via": "listing"}),
                  ("deprecation_announced", "a/two", {"shutdown_date": "2027-03-01", "successor": None})]


def test_a_model_absent_from_a_complete_listing_is_deleted_only_after_the_lookup_confirms(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two"), record("a/three"))
    scan(ledger, registry)
    del registry.models["a/two"]
    result = scan(ledger, registry)
    assert kinds(ledger, result) == [("suspected_missing", "a/two"), ("deleted", "a/two")]
    assert registry.lookups == ["a/two"]
    deleted = events(ledger, EventFilter(kinds=("deleted",)))[0]
    gone = ledger.conn.execute("SELECT found, source FROM observations WHERE id = ?",
                               (deleted["observation"],)).fetchone()
    assert tuple(gone) == (0, "lookup"), "a deletion points at the lookup that confirmed it"
    assert deleted["prior_observation"] is not None


def test_a_failed_lookup_leaves_the_model_suspected_and_the_next_scan_confirms(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two"))
    scan(ledger, registry)
    del registry.models["a/two"]
    registry.fail_lookup = lambda name: True
    result = scan(ledger, registry)
    assert kinds(ledger, result) == [("suspected_missing", "a/two")]
    assert "lookup failed" in result.problems[0]["message"]
    registry.fail_lookup = None
    again = scan(ledger, registry)
    assert kinds(ledger, again) == [("deleted", "a/two")]


@pytest.mark.parametrize("sees_renames", [False, True])
def test_an_incomplete_listing_concludes_nothing_and_the_next_scan_resumes_it(ledger: Ledger,
                                                                              sees_renames: bool) -> None:
    registry = registry_of(*(record(f"a/m{i}") for i in range(6)), page_size=2)
    registry.resumes_see_renames = sees_renames
    scan(ledger, registry)
    for name in ("a/m0", "a/m5"):
        del registry.models[name]
    registry.fail_page = 1
    failed = scan(ledger, registry)
    assert failed.status == "failed" and "injected fault" in failed.error
    assert failed.pages == 1, "the first page was committed before the fault"
    assert kinds(ledger, failed) == []
    assert registry.lookups == []
    registry.fail_page = None
    resumed = scan(ledger, registry)
    assert resumed.resumed and resumed.scan_id == failed.scan_id and resumed.status == "complete"
    deletions = [("deleted", "a/m0"), ("deleted", "a/m5")]
    suspicions = [("suspected_missing", "a/m0"), ("suspected_missing", "a/m5")]
    if sees_renames:  # a rename would have been found: a lookup's "gone" is conclusive
        assert sorted(kinds(ledger, resumed)) == sorted(suspicions + deletions)
        return
    # The resumed listing may have missed them renamed behind its resume point: suspected, never looked up...
    assert kinds(ledger, resumed) == suspicions and registry.lookups == []
    reason = events(ledger, EventFilter(scan_id=resumed.scan_id))[0]["detail"]["reason"]
    assert reason.startswith("absent from a listing resumed after an interruption")
    # ...until a listing from the start confirms their absence.
    again = scan(ledger, registry)
    assert not again.resumed and kinds(ledger, again) == deletions


def test_a_model_renamed_behind_the_resume_point_is_renamed_never_deleted(ledger: Ledger) -> None:
    registry = registry_of(*(record(f"a/m{i}", key=f"k{i}") for i in range(1, 6)), page_size=2)
    scan(ledger, registry)
    registry.fail_page = 1
    assert scan(ledger, registry).status == "failed"  # a/m1 and a/m2 committed
    registry.fail_page = None
    registry.models["a/m0"] = replace(registry.models.pop("a/m5"), name="a/m0")  # before the cursor (a/m2)
    resumed = scan(ledger, registry)
    assert resumed.resumed and kinds(ledger, resumed) == [("suspected_missing", "a/m5")]
    again = scan(ledger, registry)
    rows = events(ledger, EventFilter(scan_id=again.scan_id))
    assert [(row["event"], row["detail"]) for row in rows] == [("renamed", {"from": "a/m5", "to": "a/m0"})]
    assert events(ledger, EventFilter(kinds=("deleted",))) == []


def test_where_keys_are_identities_two_names_swapped_are_two_renames(ledger: Ledger) -> None:
    registry = registry_of(record("a/alpha", key="A"), record("a/beta", key="B"), record("a/gamma", key="G"))
    registry.stable_keys = True
    scan(ledger, registry)
    alpha, beta = registry.models["a/alpha"], registry.models["a/beta"]
    registry.models["a/alpha"], registry.models["a/beta"] = replace(beta, name="a/alpha"), replace(alpha, name="a/beta")
    result = scan(ledger, registry)
    rows = events(ledger, EventFilter(scan_id=result.scan_id))
    assert sorted((row["event"], row["detail"]["from"], row["detail"]["to"]) for row in rows) == [
        ("renamed", "a/alpha", "a/beta"), ("renamed", "a/beta", "a/alpha")]
    keys = dict(ledger.conn.execute("SELECT name, key FROM models WHERE state = 'present'").fetchall())
    assert keys == {"a/alpha": "B", "a/beta": "A", "a/gamma": "G"}


@pytest.mark.parametrize("conclusive, concluded", [(True, "deleted"), (False, "withdrawn")])
def test_where_keys_are_identities_a_name_taken_by_a_new_model_is_a_deletion_and_an_appearance(
        ledger: Ledger, conclusive: bool, concluded: str) -> None:
    registry = registry_of(record("a/alpha", key="A"), record("a/beta", key="B"))
    registry.stable_keys, registry.conclusive = True, conclusive
    scan(ledger, registry)
    registry.models["a/beta"] = record("a/beta", key="B2")  # deleted, and another created under its name
    result = scan(ledger, registry)
    assert kinds(ledger, result) == [("suspected_missing", "a/beta"), ("appeared", "a/beta"), (concluded, "a/beta")]
    rows = ledger.conn.execute("SELECT key, state FROM models WHERE name = 'a/beta' ORDER BY id").fetchall()
    assert [tuple(row) for row in rows] == [("B", concluded), ("B2", "present")]
    assert kinds(ledger, scan(ledger, registry)) == [], "settled: the next scan finds nothing new"


def test_where_keys_are_content_a_name_listed_with_another_key_is_the_same_model_updated(ledger: Ledger) -> None:
    registry = registry_of(record("a/alpha", key="A"), record("a/beta", key="B"))
    scan(ledger, registry)
    registry.models["a/beta"] = record("a/beta", key="B2", revision="r2")  # new weights in the same folder
    result = scan(ledger, registry)
    assert kinds(ledger, result) == [("updated", "a/beta")]


def test_where_keys_are_identities_a_model_renamed_onto_a_deleted_ones_name_is_renamed(ledger: Ledger) -> None:
    registry = registry_of(record("a/alpha", key="A"), record("a/beta", key="B"), record("a/gamma", key="G"))
    registry.stable_keys = True
    scan(ledger, registry)
    del registry.models["a/beta"]
    assert kinds(ledger, scan(ledger, registry)) == [("suspected_missing", "a/beta"), ("deleted", "a/beta")]
    registry.models["a/beta"] = replace(registry.models.pop("a/alpha"), name="a/beta")
    result = scan(ledger, registry)
    rows = events(ledger, EventFilter(scan_id=result.scan_id))
    assert [(row["event"], row["detail"]) for row in rows] == [("renamed", {"from": "a/alpha", "to": "a/beta"})]
    assert ledger.conn.execute("SELECT COUNT(*) FROM models WHERE state = 'suspected_missing'").fetchone()[0] == 0


def test_a_hidden_model_is_a_visibility_change_never_a_deletion(ledger: Ledger) -> None:
    class PrivateOnLookup(MemoryRegistry):
        def lookup(self, name: str) -> LookupResult:
            return Hidden(Visibility.PRIVATE, "401: repository is private")

    registry = PrivateOnLookup(models={"a/one": record("a/one"), "a/two": record("a/two")}, page_size=5)
    scan(ledger, registry)
    del registry.models["a/two"]
    result = scan(ledger, registry)
    assert kinds(ledger, result) == [("suspected_missing", "a/two"), ("visibility_changed", "a/two")]
    changed = events(ledger, EventFilter(scan_id=result.scan_id, kinds=("visibility_changed",)))
    assert changed[0]["detail"] == {"from": "public", "to": "private", "reason": "401: repository is private"}
    state = ledger.conn.execute("SELECT state, visibility FROM models WHERE name = 'a/two'").fetchone()
    assert tuple(state) == ("present", "private")


def test_a_model_that_comes_back_is_restored(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two"))
    scan(ledger, registry)
    removed = registry.models.pop("a/two")
    scan(ledger, registry)
    registry.models["a/two"] = removed
    result = scan(ledger, registry)
    rows = events(ledger, EventFilter(scan_id=result.scan_id))
    assert [(row["event"], row["model"], row["detail"]) for row in rows] == [
        ("restored", "a/two", {"was": "deleted", "via": "listing"})
    ]


def test_same_identity_under_a_new_name_is_a_rename_but_a_copy_is_a_new_model(ledger: Ledger) -> None:
    registry = registry_of(record("a/one", key="k1"), record("a/two", key="k2"), page_size=1)
    scan(ledger, registry)
    registry.models["z/moved"] = replace(registry.models.pop("a/one"), name="z/moved")
    registry.models["a/copy"] = replace(registry.models["a/two"], name="a/copy")
    result = scan(ledger, registry)
    rows = events(ledger, EventFilter(scan_id=result.scan_id))
    assert [(row["event"], row["model"]) for row in rows] == [("appeared", "a/copy"), ("renamed", "z/moved")]
    assert rows[1]["detail"] == {"from": "a/one", "to": "z/moved"}
    history = events(ledger, EventFilter(model="a/one"))
    assert [row["event"] for row in history] == ["appeared", "renamed"], "either name finds the whole history"


def test_events_are_append_only(ledger: Ledger) -> None:
    scan(ledger, registry_of(record("a/one")))
    with pytest.raises(integrity_errors(), match="append-only"):
        ledger.conn.execute("UPDATE events SET kind = 'deleted'")
    with pytest.raises(integrity_errors(), match="append-only"):
        ledger.conn.execute("DELETE FROM events")
    assert ledger.conn.execute("SELECT kind FROM events").fetchall()[0][0] == "appeared"


def test_every_event_points_at_an_observation_of_its_model(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two"), record("a/three", key="k3"))
    scan(ledger, registry)
    registry.models.pop("a/one")
    registry.models["a/two"] = record("a/two", visibility=Visibility.DISABLED)
    registry.models["a/renamed"] = replace(registry.models.pop("a/three"), name="a/renamed")
    scan(ledger, registry)
    orphans = ledger.conn.execute(
        "SELECT e.kind FROM events e LEFT JOIN observations o ON o.id = e.observation_id"
        " WHERE o.id IS NULL OR o.model_id != e.model_id"
    ).fetchall()
    assert orphans == []


def test_an_empty_listing_of_a_registry_that_had_models_is_refused_unless_allowed(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two"))
    scan(ledger, registry)
    registry.models.clear()
    refused = scan(ledger, registry)
    assert refused.status == "failed" and "--allow-empty" in refused.error
    assert kinds(ledger, refused) == [] and registry.lookups == []
    allowed = Scanner(ledger, registry.config(), registry, allow_empty=True).run()
    assert allowed.status == "complete"
    assert sorted(event for event, _ in kinds(ledger, allowed)) == ["deleted", "deleted",
                                                                     "suspected_missing", "suspected_missing"]


class ListsOnlyVisible(MemoryRegistry):
    """Like the Hub to an anonymous caller: private and disabled models are left out of the listing,
    and a direct lookup of one answers Hidden."""

    unlisted = frozenset({Visibility.PRIVATE, Visibility.DISABLED})

    def pages(self, cursor: str | None):
        visible = {n: r for n, r in self.models.items() if r.visibility not in self.unlisted}
        return MemoryRegistry(models=visible, page_size=self.page_size).pages(cursor)

    def lookup(self, name: str) -> LookupResult:
        found = self.models.get(name)
        if found is not None and found.visibility in self.unlisted:
            self.lookups.append(name)
            return Hidden(found.visibility, "401: private")
        return super().lookup(name)


def test_a_model_its_registry_does_not_list_is_checked_quietly_and_its_deletion_still_found(
    ledger: Ledger,
) -> None:
    registry = ListsOnlyVisible(models={"a/one": record("a/one"), "a/two": record("a/two")}, page_size=5)
    scan(ledger, registry)
    registry.models["a/two"] = record("a/two", visibility=Visibility.PRIVATE)
    hidden = scan(ledger, registry)
    assert kinds(ledger, hidden) == [("suspected_missing", "a/two"), ("visibility_changed", "a/two")]
    observations = ledger.conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
    for _ in range(2):
        quiet = scan(ledger, registry)
        assert kinds(ledger, quiet) == [], "still hidden, as recorded: no event"
    assert registry.lookups.count("a/two") == 3, "every scan asks about it directly"
    assert ledger.conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == observations
    del registry.models["a/two"]
    gone = scan(ledger, registry)
    assert kinds(ledger, gone) == [("suspected_missing", "a/two"), ("deleted", "a/two")]


def test_a_registry_that_lists_hidden_models_suspects_them_like_any_other(ledger: Ledger) -> None:
    registry = registry_of(record("a/one"), record("a/two", visibility=Visibility.PRIVATE))
    scan(ledger, registry)
    del registry.models["a/two"]
    result = scan(ledger, registry)
    assert kinds(ledger, result) == [("suspected_missing", "a/two"), ("deleted", "a/two")]


@dataclass
class Redirecting(MemoryRegistry):
    """Like the Hub after a repo moved out of the watched scope: the old name answers for the new one."""

    moved: dict[str, ModelRecord] = field(default_factory=dict)  # old name -> what a lookup of it answers

    def lookup(self, name: str) -> LookupResult:
        if name in self.moved:
            self.lookups.append(name)
            return Found(self.moved[name])
        return super().lookup(name)


def test_a_lookup_answering_under_a_new_name_is_a_rename_never_a_deletion(ledger: Ledger) -> None:
    registry = Redirecting(models={"acme/one": record("acme/one", key="k1"), "acme/two": record("acme/two")})
    scan(ledger, registry)
    registry.moved["acme/one"] = replace(registry.models.pop("acme/one"), name="other-org/one")
    result = scan(ledger, registry)
    rows = events(ledger, EventFilter(scan_id=result.scan_id))
    assert [(row["event"], row["detail"]) for row in rows] == [
        ("suspected_missing", {"reason": "absent from a complete listing"}),
        ("renamed", {"from": "acme/one", "to": "other-org/one"}),  # explained, so not "restored"
    ]
    assert ledger.conn.execute("SELECT state FROM models WHERE name = 'other-org/one'").fetchone()[0] == "present"
    # Out of the listed scope now, it is known through lookups: later scans ask quietly, with no false alarm.
    registry.moved["other-org/one"] = registry.moved["acme/one"]
    quiet = scan(ledger, registry)
    assert kinds(ledger, quiet) == [] and registry.lookups.count("other-org/one") == 1
    del registry.moved["other-org/one"]
    gone = scan(ledger, registry)
    assert kinds(ledger, gone) == [("suspected_missing", "other-org/one"), ("deleted", "other-org/one")]


def test_a_lookup_answering_as_a_model_the_ledger_holds_concludes_nothing(ledger: Ledger) -> None:
    registry = Redirecting(models={"acme/one": record("acme/one", key="k1"), "acme/two": record("acme/two")})
    scan(ledger, registry)
    del registry.models["acme/one"]
    registry.moved["acme/one"] = registry.models["acme/two"]
    result = scan(ledger, registry)
    assert kinds(ledger, result) == [("suspected_missing", "acme/one")]
    assert "holds as another model" in result.problems[0]["message"]
    assert ledger.conn.execute("SELECT state FROM models WHERE name = 'acme/one'").fetchone()[0] == "suspected_missing"


def test_a_stage_change_is_its_own_event_and_other_extra_fields_are_named_in_updates(ledger: Ledger) -> None:
    registry = registry_of(record("m/one", extra={"stage": "Production", "aliases": ["champion"]}))
    scan(ledger, registry)
    registry.models["m/one"] = record("m/one", extra={"stage": "Archived", "aliases": ["champion"]})
    archived = scan(ledger, registry)
    assert [(row["event"], row["detail"]) for row in events(ledger, EventFilter(scan_id=archived.scan_id))] == [
        ("stage_changed", {"from": "Production", "to": "Archived"})
    ]
    registry.models["m/one"] = record("m/one", extra={"stage": "Archived", "aliases": []})
    realiased = scan(ledger, registry)
    assert [(row["event"], row["detail"]) for row in events(ledger, EventFilter(scan_id=realiased.scan_id))] == [
        ("updated", {"changed": ["extra.aliases"]})
    ]


def test_an_unfinished_scan_of_a_registry_whose_location_changed_lists_again_from_the_start(ledger: Ledger) -> None:
    cursors = SharedList()

    class Recording(MemoryRegistry):
        def pages(self, cursor: str | None):
            cursors.append(cursor)
            return super().pages(cursor)

    registry = Recording(models={r.name: r for r in (record("a/one"), record("a/two"), record("a/three"))},
                         page_size=1, fail_page=1)
    assert scan(ledger, registry).status == "failed"
    registry.fail_page = None
    moved = replace(registry.config(), settings={"path": "memory://moved"})  # say, another author on the Hub
    result = Scanner(ledger, moved, registry, settings=ScanSettings(commit_records=1)).run()
    assert (result.resumed, result.status, result.pages, result.models_seen) == (True, "complete", 3, 3)
    assert cursors.items() == [None, None], "the cursor of the old location was not followed"
    # a/one appeared in the first attempt; listed again, it matches and repeats nothing.
    assert sorted(kinds(ledger, result)) == [("appeared", "a/one"), ("appeared", "a/three"), ("appeared", "a/two")]


def test_a_deleted_name_whose_model_is_still_listed_under_another_says_so(ledger: Ledger) -> None:
    """Two tags of one Ollama manifest: removing one deletes a name, not the weights."""
    registry = registry_of(record("llama3:latest", key="manifest-1"), record("llama3:8b", key="manifest-1"))
    scan(ledger, registry)
    del registry.models["llama3:latest"]
    result = scan(ledger, registry)
    deleted = events(ledger, EventFilter(scan_id=result.scan_id, kinds=("deleted",)))
    assert [row["detail"]["key_still_listed_as"] for row in deleted] == ["llama3:8b"]


def written_by_an_earlier_version(ledger: Ledger, card_digest: str) -> None:
    """Make the ledger look as an earlier weightkeeper left it: other record digests and card digests
    in the bare sha256 form it wrote, which today's digests can match by no means."""
    ledger.conn.execute("UPDATE models SET digest = digest + 1")
    ledger.conn.execute("UPDATE observations SET card_digest = ? WHERE card_digest IS NOT NULL", (card_digest,))


def test_digests_of_an_earlier_version_cost_a_comparison_not_an_event_or_an_observation(ledger: Ledger) -> None:
    card = Card(digest=f"{CARD_DIGEST_FORM}:c1", license="llama3.1", emissions={"emissions": 1200},
                training={"epochs": 3})
    registry = registry_of(record("a/one", card=card), record("a/two", card=card))
    scan(ledger, registry)
    written_by_an_earlier_version(ledger, "9f" * 32)
    upgraded = scan(ledger, registry)
    assert upgraded.status == "complete" and kinds(ledger, upgraded) == []
    assert ledger.conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 2
    stored = dict(ledger.conn.execute("SELECT name, digest FROM models").fetchall())
    assert stored == {name: registry.models[name].digest() for name in ("a/one", "a/two")}


def test_a_real_change_across_digest_forms_is_still_an_update_of_the_fields_kept(ledger: Ledger) -> None:
    card = Card(digest=f"{CARD_DIGEST_FORM}:c1", license="llama3.1")
    registry = registry_of(record("a/one", card=card), record("a/two", card=card))
    scan(ledger, registry)
    written_by_an_earlier_version(ledger, "9f" * 32)
    registry.models["a/one"] = record("a/one", card=replace(card, license="apache-2.0"))
    result = scan(ledger, registry)
    rows = events(ledger, EventFilter(scan_id=result.scan_id))
    assert [(row["event"], row["model"], row["detail"]["changed"]) for row in rows] == [
        ("updated", "a/one", ["card.license"])]


def test_card_digests_of_one_form_are_compared(ledger: Ledger) -> None:
    card = Card(digest=f"{CARD_DIGEST_FORM}:c1", license="llama3.1")
    registry = registry_of(record("a/one", card=card))
    scan(ledger, registry)
    registry.models["a/one"] = record("a/one", card=replace(card, digest=f"{CARD_DIGEST_FORM}:c2"))
    result = scan(ledger, registry)
    assert [(row["event"], row["detail"]["changed"]) for row in events(ledger, EventFilter(scan_id=result.scan_id))] \
        == [("updated", ["card"])]


def test_a_model_is_never_last_seen_before_it_was_first_seen(ledger: Ledger) -> None:
    """A model that appeared in the last complete scan and is missing from the next was last seen by that scan's
    listing, which may have started before the model was first recorded: its last sighting is then its first."""
    registry = registry_of(record("acme/old"))
    scan(ledger, registry)
    registry.models["acme/new"] = record("acme/new")
    scan(ledger, registry)
    del registry.models["acme/new"]
    scan(ledger, registry)
    first_seen, last_seen, state = ledger.conn.execute(
        "SELECT first_seen, last_seen, state FROM models WHERE name = 'acme/new'").fetchone()
    assert state == "deleted" and last_seen >= first_seen, (first_seen, last_seen)
