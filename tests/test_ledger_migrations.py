"""Ledger migrations: a ledger written by an older schema opens, keeps its records, and scans on."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from registry_fakes import MemoryRegistry
from weightkeeper.config import RegistryConfig
from weightkeeper.domain import ModelRecord
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.migrations import MIGRATIONS
from weightkeeper.scan import Scanner


def version_one_ledger(path: Path) -> None:
    """A ledger at schema version 1, with a model, its appearance, and a scan left unfinished mid-resolution."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        conn.executescript(f"BEGIN; {MIGRATIONS[0]}; INSERT INTO schema_migrations VALUES (1, '2026-11-01'); COMMIT;")
        conn.executescript("""
            INSERT INTO registries VALUES (1, 'memory', 'memory', 'memory', '2026-11-01');
            INSERT INTO scans (id, registry_id, started_at, finished_at, status, phase, pages, models_seen)
                VALUES (1, 1, '2026-11-01', '2026-11-01', 'complete', 'done', 1, 1);
            INSERT INTO models VALUES (1, 1, 'org/a', 'k1', 'present', 'public', 42, 1, '2026-11-01', '2026-11-01');
            INSERT INTO observations (id, model_id, scan_id, observed_at, source, found, name, key, visibility)
                VALUES (1, 1, 1, '2026-11-01', 'listing', 1, 'org/a', 'k1', 'public');
            INSERT INTO events (at, kind, registry_id, model_id, scan_id, observation_id)
                VALUES ('2026-11-01', 'appeared', 1, 1, 1, 1);
            INSERT INTO scans (id, registry_id, started_at, status, phase, cursor, pages, models_seen)
                VALUES (2, 1, '2026-11-02', 'interrupted', 'resolving', NULL, 3, 7);
            INSERT INTO scan_pages VALUES (2, 1, '[42]');
        """)


def test_version_one_ledger_migrates_keeping_records_and_relisting_its_unfinished_scan(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    version_one_ledger(path)
    with Ledger(path) as ledger:
        conn = ledger.conn
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
        assert [tuple(row) for row in conn.execute("SELECT name, state FROM models")] == [("org/a", "present")]
        assert [tuple(row) for row in conn.execute("SELECT kind, model_id FROM events")] == [("appeared", 1)]
        # Its listed digests are gone with scan_pages, so the unfinished scan lists again from the start.
        unfinished = conn.execute("SELECT phase, cursor, pages, models_seen FROM scans WHERE id = 2").fetchone()
        assert tuple(unfinished) == ("listing", None, 0, 0)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "scan_listed" in tables and "scan_pages" not in tables


def test_a_rescan_matches_each_batch_against_the_models_by_index_probes_never_a_walk(tmp_path: Path) -> None:
    """Every query that matches a batch's names or keys against the models (unchanged, changed, new, renamed)
    probes an index once per listed model; none reads every model of the registry."""
    registry = MemoryRegistry(models={f"org/m{i}": ModelRecord(f"org/m{i}", f"k{i}") for i in range(6)})
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        Scanner(ledger, registry.config(), registry).run()
        registry.models["org/m1"] = ModelRecord("org/m1", "k1", revision="r2")  # changed
        registry.models["org/new"] = ModelRecord("org/new", "k-new")  # new
        registry.models["org/m2-renamed"] = ModelRecord("org/m2-renamed", "k2")  # renamed
        del registry.models["org/m2"]
        statements: list[str] = []
        ledger.conn.set_trace_callback(statements.append)
        result = Scanner(ledger, registry.config(), registry).run()
        ledger.conn.set_trace_callback(None)
        matching = [sql for sql in statements if "json_each" in sql and sql.lstrip().startswith("SELECT")]
        plans = [" / ".join(row[3] for row in ledger.conn.execute("EXPLAIN QUERY PLAN " + sql)) for sql in matching]
    assert result.events == {"appeared": 1, "renamed": 1, "updated": 1}
    probes = ("m.digest = ", "m.name = j.value", "m.key = j.value")  # unchanged; known by name; known by key
    assert {probe for sql in matching for probe in probes if probe in sql} == set(probes), matching
    assert all("SEARCH m USING" in plan and "SCAN m" not in plan for plan in plans), plans


def test_the_migrated_unfinished_scan_resumes_and_repeats_no_event(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    version_one_ledger(path)
    registry = MemoryRegistry(models={"org/a": ModelRecord("org/a", "k1"), "org/b": ModelRecord("org/b", "k2")})
    with Ledger(path) as ledger:
        resumed = Scanner(ledger, RegistryConfig("memory", "memory", {"path": "memory"}), registry).run()
        appeared = ledger.conn.execute("SELECT m.name FROM events e JOIN models m ON m.id = e.model_id"
                                       " WHERE e.kind = 'appeared' ORDER BY e.id").fetchall()
    assert (resumed.scan_id, resumed.resumed, resumed.status) == (2, True, "complete")
    assert resumed.events == {"appeared": 1}
    assert [row[0] for row in appeared] == ["org/a", "org/b"]


def test_an_hmac_approval_of_an_older_ledger_is_kept_and_authorises_nothing(tmp_path: Path) -> None:
    """Decisions signed with the home's shared key (schema 7) stay, marked so; an approved review is pending
    again, and a replacing insert into the rebuilt decisions table is refused."""
    path = tmp_path / "ledger.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version, migration in enumerate(MIGRATIONS[:7], start=1):
            conn.executescript(f"BEGIN; {migration}; INSERT INTO schema_migrations VALUES ({version}, '2026'); COMMIT;")
        conn.executescript("""
            INSERT INTO registries VALUES (1, 'memory', 'memory', 'memory', '2026-11-01');
            INSERT INTO scans (id, registry_id, started_at, status, phase) VALUES (1, 1, '2026', 'complete', 'done');
            INSERT INTO models VALUES (1, 1, 'org/a', 'k1', 'deleted', 'public', 42, 1, '2026', '2026');
            INSERT INTO events (id, at, kind, registry_id, model_id) VALUES (1, '2026', 'deleted', 1, 1);
            INSERT INTO reviews VALUES (1, 't', 'i', 1, 1, 1, 'org', 1.0, 'approved', 1, '{}', '{}', '[]', '2026', '2026');
            INSERT INTO decisions VALUES (1, 1, 1, 'approve', 0, 'ab', 'ada', 'cli', NULL, '2026', 'hmac');
        """)
    with Ledger(path) as ledger:
        conn = ledger.conn
        assert tuple(conn.execute("SELECT reviewer, channel, scheme, signature, overrides, previous FROM decisions")
                     .fetchone()) == ("ada", "cli", "hmac-sha256", "hmac", "[]", "")
        assert conn.execute("SELECT status FROM reviews").fetchone()[0] == "pending"
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("INSERT OR REPLACE INTO decisions (id, review_id, version, decision, reviewer, channel,"
                         " decided_at, signature) VALUES (1, 1, 1, 'reject', 'ada', 'cli', '2026', 'x')")


def test_a_name_is_unique_among_present_models_only_after_migration_10(tmp_path: Path) -> None:
    """Schema 9 made a name unique for good; from 10 a deleted model keeps its name beside a new one of that name,
    and an unfinished scan's listing starts out not resumed."""
    path = tmp_path / "ledger.sqlite3"
    version_one_ledger(path)
    with Ledger(path) as ledger:
        conn = ledger.conn
        assert conn.execute("SELECT listing_resumed FROM scans WHERE id = 2").fetchone()[0] == 0
        model = "INSERT INTO models VALUES (?, 1, 'org/a', ?, ?, 'public', 42, 1, '2026', '2026')"
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(model, (2, "k2", "present"))
        conn.execute("UPDATE models SET state = 'deleted' WHERE id = 1")
        conn.execute(model, (2, "k2", "present"))
        plan = " ".join(row[3] for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM models WHERE registry_id = 1 AND name = 'org/a'"))
        assert "models_by_name" in plan or "models_present_name" in plan


def test_the_consoles_poll_reads_an_index_not_every_review(tmp_path: Path) -> None:
    """ReviewQueue.fingerprint runs every two seconds while the console is open."""
    from weightkeeper.review import LATEST_CHANGE, ReviewQueue

    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        ReviewQueue(ledger).fingerprint()  # runs on an empty ledger
        plan = " ".join(row[3] for row in ledger.conn.execute(f"EXPLAIN QUERY PLAN {LATEST_CHANGE}"))
    assert "USING COVERING INDEX reviews_by_update" in plan, plan
