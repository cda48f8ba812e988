"""Ledger migrations: a ledger written by an older schema opens, keeps its records, and scans on."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

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


def test_a_rescan_probes_only_the_covering_index_of_present_models(tmp_path: Path) -> None:
    """The probe of each listed digest and the walk over present models must never read table rows."""
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        plans = [
            " ".join(row[3] for row in ledger.conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            for sql, params in [
                ("SELECT json_group_array(m.id) FILTER (WHERE m.id IS NOT NULL) FROM json_each(?) j"
                 " LEFT JOIN models m INDEXED BY models_present"
                 " ON m.registry_id = ? AND m.state = 'present' AND m.digest = j.value", ("[1]", 1)),
                ("SELECT id FROM models INDEXED BY models_present WHERE registry_id = ? AND state = 'present'", (1,)),
            ]
        ]
    assert all("COVERING INDEX" in plan for plan in plans), plans


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
