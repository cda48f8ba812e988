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
    with pytest.raises(LedgerError, match="schema version 99 and this weightkeeper knows 11; upgrade weightkeeper"):
        Ledger(postgres_url)


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
