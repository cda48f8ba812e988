"""The one connection interface of both backends (weightkeeper/ledger/database.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from weightkeeper.errors import LedgerError
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.database import placeholders, shown_url


@pytest.mark.parametrize(("sqlite", "postgres"), [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("UPDATE t SET a = :a WHERE id = :id", "UPDATE t SET a = %(a)s WHERE id = %(id)s"),
    ("SELECT '?', ':not', 'it''s ?' FROM t WHERE a = ?", "SELECT '?', ':not', 'it''s ?' FROM t WHERE a = %s"),
    ('SELECT "odd?name" FROM t WHERE a LIKE ?', 'SELECT "odd?name" FROM t WHERE a LIKE %s'),
    ("SELECT CAST(? AS jsonb), x::text, 5 % 2 FROM t", "SELECT CAST(%s AS jsonb), x::text, 5 %% 2 FROM t"),
])
def test_placeholders_become_psycopgs_and_quoted_text_is_left_alone(sqlite: str, postgres: str) -> None:
    assert placeholders(sqlite) == postgres


def test_a_url_is_shown_without_its_password() -> None:
    assert shown_url("postgresql://wk:s3cret%40x@db.example:5433/ledger") == "postgresql://wk@db.example:5433/ledger"
    assert shown_url("postgresql://wk@db/ledger") == "postgresql://wk@db/ledger"


def test_rows_read_by_name_and_position_alike_on_both_backends(store: str | Path) -> None:
    with Ledger(store) as ledger:
        ledger.registry_id("hub", "huggingface", "https://hf.co")
        row = ledger.conn.execute("SELECT id, name AS registry FROM registries WHERE name = ?", ("hub",)).fetchone()
        assert (row[0], row["registry"], dict(row), tuple(row)) == (1, "hub", {"id": 1, "registry": "hub"}, (1, "hub"))
        (only,) = ledger.conn.execute("SELECT name FROM registries").fetchall()
        assert list(only) == ["hub"] and ledger.conn.execute("SELECT 1 WHERE 1 = 0").fetchone() is None


def test_an_unreachable_server_is_named_without_the_password(unused_port: int) -> None:
    url = f"postgresql://wk:hunter2hunter2@127.0.0.1:{unused_port}/ledger"
    with pytest.raises(LedgerError) as refused:
        Ledger(url)
    assert f"cannot open the ledger at postgresql://wk@127.0.0.1:{unused_port}/ledger" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_a_ledger_at_another_schema_version_is_refused_in_words(postgres_url: str) -> None:
    Ledger(postgres_url).close()
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'later')")
    with pytest.raises(LedgerError, match="schema version 99 and this weightkeeper knows 12; upgrade weightkeeper"):
        Ledger(postgres_url)


def test_a_postgresql_ledger_made_at_version_11_gets_the_notices_of_version_12(postgres_url: str) -> None:
    import psycopg

    from weightkeeper.domain import EventKind
    from weightkeeper.ledger.notices import CHANNEL
    from weightkeeper.ledger.store import NewEvent

    made_at_version_11(postgres_url)
    with Ledger(postgres_url) as ledger, psycopg.connect(postgres_url, autocommit=True) as listener:
        assert ledger.conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 12
        listener.execute(f"LISTEN {CHANNEL}")
        registry = ledger.registry_id("hub", "huggingface", "https://hf.co")
        ledger.add_events([NewEvent(EventKind.PROPOSAL_AMENDED, registry, None, None, None, None, {})])
        assert [notice.payload for notice in listener.notifies(timeout=10, stop_after=1)] == ["events"]


def test_a_migration_the_role_may_not_apply_is_refused_in_words(postgres_url: str) -> None:
    import psycopg

    made_at_version_11(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # a reviewer's role, which owns no table
        conn.execute("DROP ROLE IF EXISTS bea")
        conn.execute("CREATE ROLE bea LOGIN")
        conn.execute("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO bea")
    with pytest.raises(LedgerError, match=r"schema version 11 and migrating it to 12 was refused \(.+\): run a "
                                          "weightkeeper command once as the PostgreSQL role that owns its tables"):
        Ledger(postgres_url.replace("//weightkeeper@", "//bea@"))
    with Ledger(postgres_url) as ledger:  # the owner then brings it to 12
        assert ledger.conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 12


def made_at_version_11(url: str) -> None:
    """An empty PostgreSQL ledger as weightkeeper made it at schema version 11: without its notices."""
    import psycopg

    Ledger(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION notify_ledger_change() CASCADE")
        conn.execute("UPDATE schema_migrations SET version = 11")


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_scan_event_appended_again_is_recorded_once_on_postgresql(postgres_url: str) -> None:
    """The events' natural key (scan, model, kind): a repeated append adds nothing; the database refuses to
    rewrite the event either way."""
    from weightkeeper.domain import EventKind, ModelRecord
    from weightkeeper.ledger.models import ModelStore
    from weightkeeper.ledger.scans import ScanStore
    from weightkeeper.ledger.store import NewEvent

    with Ledger(postgres_url) as ledger:
        registry = ledger.registry_id("lab", "local", "/models")
        with ledger.transaction(registry=registry):
            scan_id = ScanStore(ledger, registry).start().scan_id
            record = ModelRecord(name="acme/med-ft", key="k1")
            (model_id,) = ModelStore(ledger, registry).appear(scan_id, [(record.row(), record.digest())])
            updated = NewEvent(EventKind.UPDATED, registry, model_id, scan_id, None, None, {"changed": ["license"]})
            ledger.add_events([updated])
            ledger.add_events([updated, updated])
        kinds = [row[0] for row in ledger.conn.execute("SELECT kind FROM events ORDER BY id")]
        assert kinds == ["appeared", "updated"]


def test_scans_of_two_registries_write_side_by_side_on_postgresql(postgres_url: str) -> None:
    """Two processes' worth of scans at once (threads, each with its ledger): each registry's models get blocks
    of ids of their own, and every model appears once."""
    import threading

    from registry_fakes import MemoryRegistry
    from test_scan_engine import record

    from weightkeeper.scan import Scanner

    registries = {name: MemoryRegistry(models={f"{name}/m{i:02d}": record(f"{name}/m{i:02d}") for i in range(40)},
                                       page_size=4) for name in ("left", "right")}
    results, start = {}, threading.Barrier(2)

    def scan(name: str) -> None:
        with Ledger(postgres_url) as ledger:
            start.wait()
            results[name] = Scanner(ledger, registries[name].config(name), registries[name]).run()

    threads = [threading.Thread(target=scan, args=(name,)) for name in registries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {name: (result.status, result.events) for name, result in results.items()} == {
        name: ("complete", {"appeared": 40}) for name in registries}
    with Ledger(postgres_url) as ledger:
        rows = ledger.conn.execute("SELECT m.name, o.name FROM models m JOIN observations o"
                                   " ON o.id = m.last_observation_id AND o.model_id = m.id").fetchall()
        assert len(rows) == 80 and all(model == observed for model, observed in rows)


@pytest.mark.parametrize(("columns", "rows"), [(2, 2_005), (70, 1_000)])
def test_many_rows_inserted_at_once_on_postgresql_arrive_in_order_and_a_conflict_is_skipped(
        postgres_url: str, columns: int, rows: int) -> None:
    """An executemany INSERT goes as multi-row statements: more rows than one holds, or than its parameters do."""
    names = [f"c{index}" for index in range(columns)]
    with Ledger(postgres_url) as ledger:
        conn = ledger.conn
        conn.execute(f"CREATE TABLE wide (rowid BIGSERIAL, kind TEXT, {', '.join(f'{n} BIGINT' for n in names)},"
                     " PRIMARY KEY (c0))")
        values = [tuple(row * columns + index for index in range(columns)) for row in range(rows)]
        conn.executemany(f"INSERT INTO wide (kind, {', '.join(names)}) VALUES ('it''s', {', '.join('?' * columns)})"
                         " ON CONFLICT DO NOTHING", [*values, (0,) * columns])
        stored = conn.execute(f"SELECT kind, {', '.join(names)} FROM wide ORDER BY rowid").fetchall()
    assert [tuple(row) for row in stored] == [("it's", *row) for row in values]
