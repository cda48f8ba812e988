"""The do-not-contact list: owners no proposal is drafted for, kept in the ledger beside the config's list."""

from __future__ import annotations

from typing import Any

from weightkeeper.ledger.store import Ledger, now_iso


def block(ledger: Ledger, owner: str, *, reason: str | None, by: str) -> None:
    """Put `owner` on the list (again: a new reason and time replace the old)."""
    with ledger.transaction() as conn:
        conn.execute("INSERT INTO contact_blocks (owner, reason, blocked_at, blocked_by) VALUES (?, ?, ?, ?)"
                     " ON CONFLICT (owner) DO UPDATE SET reason = excluded.reason, blocked_at = excluded.blocked_at,"
                     " blocked_by = excluded.blocked_by", (owner, reason, now_iso(), by))


def unblock(ledger: Ledger, owner: str) -> bool:
    """Take `owner` off the list; False when they were not on it."""
    with ledger.transaction() as conn:
        return conn.execute("DELETE FROM contact_blocks WHERE owner = ?", (owner,)).rowcount > 0


def blocked(ledger: Ledger, owner: str) -> bool:
    return ledger.conn.execute("SELECT 1 FROM contact_blocks WHERE owner = ?", (owner,)).fetchone() is not None


def blocks(ledger: Ledger) -> list[dict[str, Any]]:
    """Everyone on the list, by owner: owner, reason, blocked_at, blocked_by."""
    return [dict(row) for row in ledger.conn.execute(
        "SELECT owner, reason, blocked_at, blocked_by FROM contact_blocks ORDER BY owner")]
