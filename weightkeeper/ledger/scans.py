"""A registry's scans as the ledger keeps them: each scan's row (phase, cursor, counts), the known models
its committed pages listed (`scan_listed`), the records it deferred until its listing was complete
(`deferred_records`, possible renames), and its problems.

The scan engine (`weightkeeper.scan`) decides what a listing means; this is where it writes down how far
it got, so that an interrupted scan resumes. Nothing here opens a transaction: the engine commits each
batch's bookkeeping together with the models and events it wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from weightkeeper.ledger.store import Ledger, now_iso
from weightkeeper.listed import ListedModels
from weightkeeper.secrets import scrub
from weightkeeper.untrusted import shown


@dataclass(frozen=True, slots=True)
class ScanStart:
    """The scan a run works on: a new one, or the registry's unfinished one, resumed in its phase after its
    cursor."""

    scan_id: int
    phase: str  # listing, resolving
    cursor: str | None
    resumed: bool


@dataclass(frozen=True, slots=True)
class ScanSummary:
    status: str
    pages: int
    models_seen: int
    error: str | None
    events: dict[str, int]  # kind -> how many this scan recorded
    problems: list[dict[str, str | None]]  # {"model", "message"}, in order


class ScanStore:
    """The scans of one registry of the ledger."""

    def __init__(self, ledger: Ledger, registry_id: int) -> None:
        self.conn, self.registry_id = ledger.conn, registry_id

    def start(self) -> ScanStart:
        """Resume the registry's unfinished scan, or begin one (inside the caller's transaction)."""
        unfinished = self.conn.execute(
            "SELECT id, phase, cursor FROM scans WHERE registry_id = ? AND phase != 'done' ORDER BY id DESC LIMIT 1",
            (self.registry_id,),
        ).fetchone()
        if unfinished:
            # A listing resumed after its cursor may miss a model renamed behind it meanwhile (`listing_resumed`).
            resuming = unfinished["phase"] == "listing" and unfinished["cursor"] is not None
            self.conn.execute(
                "UPDATE scans SET status = 'running', attempts = attempts + 1, error = NULL,"
                " listing_resumed = CASE WHEN ? THEN 1 ELSE listing_resumed END WHERE id = ?",
                (resuming, unfinished["id"]),
            )
            return ScanStart(unfinished["id"], unfinished["phase"], unfinished["cursor"], True)
        scan_id = self.conn.execute(
            "INSERT INTO scans (registry_id, started_at, status, phase) VALUES (?, ?, 'running', 'listing') RETURNING id",
            (self.registry_id, now_iso()),
        ).fetchone()[0]
        return ScanStart(scan_id, "listing", None, False)

    def listing_resumed(self, scan_id: int) -> bool:
        """Whether some run of the scan's listing started after a committed cursor."""
        return bool(self.conn.execute("SELECT listing_resumed FROM scans WHERE id = ?", (scan_id,)).fetchone()[0])

    def pages(self, scan_id: int) -> int:
        return self.conn.execute("SELECT pages FROM scans WHERE id = ?", (scan_id,)).fetchone()[0]

    def models_seen(self, scan_id: int) -> int:
        return self.conn.execute("SELECT models_seen FROM scans WHERE id = ?", (scan_id,)).fetchone()[0]

    def advance(self, scan_id: int, cursor: str | None, pages: int, models: int, problems: int) -> None:
        """A batch written: the cursor after its last page, the scan's page count, and what the batch held."""
        self.conn.execute(
            "UPDATE scans SET cursor = ?, pages = ?, models_seen = models_seen + ?, problems = problems + ?"
            " WHERE id = ?",
            (cursor, pages, models, problems, scan_id),
        )

    def resolving(self, scan_id: int) -> None:
        """The listing is complete: what is left is concluding about the models it lacked."""
        self.conn.execute("UPDATE scans SET phase = 'resolving', cursor = NULL WHERE id = ?", (scan_id,))

    def finish(self, scan_id: int, status: str, error: str | None) -> None:
        """A run ends: `complete` closes the scan (its listed bits go), anything else leaves it to be resumed."""
        if status == "complete":
            self.conn.execute("DELETE FROM scan_listed WHERE scan_id = ?", (scan_id,))
        self.conn.execute(
            "UPDATE scans SET status = ?, phase = CASE WHEN ? = 'complete' THEN 'done' ELSE phase END,"
            " finished_at = ?, error = ? WHERE id = ?",
            (status, status, now_iso(), error and scrub(error), scan_id),
        )

    def last_complete_start(self) -> str | None:
        """When the registry's latest complete scan began."""
        return self.conn.execute(
            "SELECT MAX(started_at) FROM scans WHERE registry_id = ? AND status = 'complete'", (self.registry_id,)
        ).fetchone()[0]

    # -- what the listing showed

    def keep_listed(self, scan_id: int, part: int, model_ids: str) -> None:
        """The ids of the known models part `part` of the listing showed, as a JSON array."""
        self.conn.execute("INSERT INTO scan_listed (scan_id, part, model_ids) VALUES (?, ?, ?)",
                          (scan_id, part, model_ids))

    def listed(self, scan_id: int) -> ListedModels:
        """Every known model the scan's committed parts showed."""
        highest = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM models").fetchone()[0]
        listed = ListedModels(highest)
        for (model_ids,) in self.conn.execute("SELECT model_ids FROM scan_listed WHERE scan_id = ?", (scan_id,)):
            listed.add(json.loads(model_ids))
        return listed

    # -- records deferred until the listing is complete

    def defer(self, scan_id: int, records: list[tuple[str, str]]) -> None:
        """(name, record as JSON) of listed records whose model only the complete listing tells."""
        self.conn.executemany("INSERT INTO deferred_records (scan_id, name, record) VALUES (?, ?, ?)"
                              " ON CONFLICT (scan_id, name) DO UPDATE SET record = excluded.record",
                              [(scan_id, name, record) for name, record in records])

    def deferred(self, scan_id: int) -> list[tuple[str, str]]:
        return [tuple(row) for row in self.conn.execute(
            "SELECT name, record FROM deferred_records WHERE scan_id = ? ORDER BY name", (scan_id,))]

    def resolved(self, scan_id: int, name: str) -> None:
        self.conn.execute("DELETE FROM deferred_records WHERE scan_id = ? AND name = ?", (scan_id, name))

    # -- problems

    def add_problems(self, scan_id: int, problems: list[tuple[str | None, str]]) -> None:
        """(model name or None, message) of what could not be read; the scan's count is `advance`'s to keep."""
        self.conn.executemany("INSERT INTO problems (scan_id, at, model_name, message) VALUES (?, ?, ?, ?)",
                              [_problem_row(scan_id, name, message) for name, message in problems])

    def problem(self, scan_id: int, name: str | None, message: str) -> None:
        """One problem met after the listing, counted at once."""
        self.add_problems(scan_id, [(name, message)])
        self.conn.execute("UPDATE scans SET problems = problems + 1 WHERE id = ?", (scan_id,))

    def summary(self, scan_id: int) -> ScanSummary:
        scan = self.conn.execute("SELECT * FROM scans WHERE id = ?", (scan_id,)).fetchone()
        events: dict[str, Any] = dict(self.conn.execute(
            "SELECT kind, COUNT(*) FROM events WHERE scan_id = ? GROUP BY kind ORDER BY kind", (scan_id,)
        ).fetchall())
        problems = [dict(row) for row in self.conn.execute(
            "SELECT model_name AS model, message FROM problems WHERE scan_id = ? ORDER BY id", (scan_id,)
        )]
        return ScanSummary(scan["status"], scan["pages"], scan["models_seen"], scan["error"], events, problems)


def _problem_row(scan_id: int, name: str | None, message: str) -> tuple[int, str, str | None, str]:
    """A problem as the ledger keeps it: registry text escaped, configured secrets scrubbed."""
    return scan_id, now_iso(), name and shown(name), shown(scrub(message))
