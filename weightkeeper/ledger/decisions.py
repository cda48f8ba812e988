"""The writes of signed rows: reviewers' decisions (and the review status each sets) and endorsed reviewer keys.

Only the code that signs (weightkeeper/deciding.py, weightkeeper/signing.py) imports this; no agent may reach it
(tests/test_import_contracts.py). A row written here still counts only if its signature verifies
(weightkeeper/review.py)."""

from __future__ import annotations

import sqlite3
from typing import Any

from weightkeeper.ledger.store import now_iso


def record_decision(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    """Append a signed decision: every column of `decisions` but its id."""
    conn.execute(
        "INSERT INTO decisions (review_id, version, decision, action_index, payload_sha256, reviewer, channel,"
        " reason, overrides, previous, decided_at, signature) VALUES (:review_id, :version, :decision,"
        " :action_index, :payload_sha256, :reviewer, :channel, :reason, :overrides, :previous, :decided_at,"
        " :signature)", row)


def set_status(conn: sqlite3.Connection, review_id: int, status: str) -> None:
    """The review's status after a decision (approved, rejected, deferred)."""
    conn.execute("UPDATE reviews SET status = ?, updated_at = ? WHERE id = ?", (status, now_iso(), review_id))


def replace_draft(conn: sqlite3.Connection, review_id: int, draft_json: str) -> None:
    """An edit: the review's next version, pending again."""
    conn.execute("UPDATE reviews SET draft = ?, version = version + 1, status = 'pending', updated_at = ?"
                 " WHERE id = ?", (draft_json, now_iso(), review_id))


def record_reviewer(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    """Append an endorsed reviewer key: name, public_key, added_by, added_at, signature."""
    conn.execute("INSERT INTO reviewers (name, public_key, added_by, added_at, signature)"
                 " VALUES (:name, :public_key, :added_by, :added_at, :signature)", row)
