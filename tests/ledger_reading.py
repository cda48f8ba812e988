"""Reading a ledger file in tests the way a user's tool would: a separate SQLite connection."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def query(ledger_path: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(ledger_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def scan_events(ledger_path: Path, scan_id: int) -> list[tuple[str, str, dict]]:
    """(kind, model name at the event, detail) of one scan's events."""
    rows = query(
        ledger_path,
        "SELECT e.kind, COALESCE(o.name, m.name) AS model, e.detail FROM events e"
        " LEFT JOIN models m ON m.id = e.model_id LEFT JOIN observations o ON o.id = e.observation_id"
        " WHERE e.scan_id = ? ORDER BY e.id",
        (scan_id,),
    )
    return [(row["kind"], row["model"], json.loads(row["detail"])) for row in rows]


def integrity_errors() -> tuple[type[Exception], ...]:
    """What either backend raises when the database refuses a write (a trigger, a constraint)."""
    import psycopg

    return sqlite3.IntegrityError, psycopg.IntegrityError
