"""What the console reads and decides through, for one home and one reviewer.

Every call opens the ledger on the thread that makes it (the console reads and decides in worker threads, so
the screen never waits on the ledger), and every decision goes through the same functions as `weightkeeper
review approve|reject|defer|edit` (weightkeeper/cli/reviewing.py), recorded on the channel `tui`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from weightkeeper import config
from weightkeeper.cli import reviewing
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.store import TIMESTAMP
from weightkeeper.review import Headline, Review, ReviewQueue

TABS: dict[str, tuple[str, ...]] = {  # inbox tab -> the review statuses it lists
    "pending": ("pending",),
    "deferred": ("deferred",),
    "decided": ("approved", "rejected"),
    "executed": ("executed",),
}


def lead(headline: Headline) -> str:
    """The model a proposal is about, and how many more (near-duplicates of one recipient) it covers."""
    return headline.model + (f" +{headline.members}" if headline.members else "")


def critic_status(headline: Headline) -> str:
    if headline.errors:
        return f"{headline.errors} error{'s' if headline.errors != 1 else ''}"
    notes = headline.findings - headline.errors
    return f"{notes} note{'s' if notes != 1 else ''}" if notes else "ok"


def age(timestamp: str, now: datetime) -> str:
    """How long ago a ledger time was, in the largest whole unit: 45s, 12m, 5h, 3d."""
    seconds = max(0, int((now - datetime.strptime(timestamp, TIMESTAMP).replace(tzinfo=UTC)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Triaged:
    """An event the coordinator chose not to propose on (or not yet), and why."""

    event_id: int
    registry: str
    model: str
    event: str
    reason: str


@dataclass(frozen=True)
class Dossier:
    """A review with what the proposal screen shows beside it."""

    review: Review
    members: list[str]
    decisions: list[dict[str, Any]]
    results: dict[int, dict[str, Any]]  # action index -> its latest outcome and detail, for this version
    ledger_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # evidence id -> its ledger rows


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Desk:
    home: Path
    reviewer: str
    now: Callable[[], datetime] = now_utc

    @contextmanager
    def opened(self) -> Iterator[tuple[config.Config, Ledger]]:
        settings = config.load(self.home)
        with Ledger(settings.ledger_path) as ledger:
            yield settings, ledger

    # -- reading ------------------------------------------------------------------------------

    def headlines(self, tab: str) -> list[Headline]:
        with self.opened() as (_, ledger):
            return ReviewQueue(ledger).headlines(TABS[tab])

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes whenever a review arrives or is decided: what the console polls for."""
        with self.opened() as (_, ledger):
            return tuple(ledger.conn.execute("SELECT COUNT(*), MAX(updated_at), (SELECT MAX(id) FROM events)"
                                             " FROM reviews").fetchone())

    def triaged(self) -> list[Triaged]:
        from agents.triage import triaged

        with self.opened() as (settings, ledger):
            return [Triaged(*row) for row in triaged(ledger, settings.proposals)]

    def dossier(self, review_id: int) -> Dossier:
        with self.opened() as (_, ledger):
            queue = ReviewQueue(ledger)
            review = queue.get(review_id)
            return Dossier(review, queue.members(review_id), queue.decisions(review_id), _results(ledger, review),
                           {item.id: _ledger_rows(ledger, item.source) for item in review.evidence.items})

    # -- deciding: the same functions as the CLI, on the channel `tui` --------------------------

    def _decider(self) -> Any:
        from weightkeeper.deciding import HumanReviewer
        from weightkeeper.signing import signer

        return HumanReviewer(signer(self.reviewer, self.home), "tui")

    def approve(self, review: Review, shown: dict[int, str], overrides: tuple[str, ...]) -> list[dict[str, Any]]:
        with self.opened() as (settings, ledger):
            return reviewing.approve_and_run(ledger, self.home, settings, self._decider(), review, shown, overrides)

    def reject(self, reviews: list[Review], reason: str, *, recipient_refused: bool = False) -> None:
        with self.opened() as (_, ledger):
            for review in reviews:
                reviewing.reject(ledger, self._decider(), review, reason, recipient_refused=recipient_refused)

    def defer(self, reviews: list[Review], *, until: date | None, reason: str | None) -> None:
        with self.opened() as (_, ledger):
            for review in reviews:
                reviewing.defer(ledger, self._decider(), review, until=until, reason=reason)

    def edit(self, review: Review, *, title: str, body: str, note: str | None) -> int:
        with self.opened() as (_, ledger):
            return reviewing.edit(ledger, self._decider(), review, title=title, body=body, note=note)

    def run_again(self, review: Review) -> list[dict[str, Any]]:
        with self.opened() as (settings, ledger):
            return reviewing.run_approved(ledger, self.home, settings, review.id)

    def reviews(self, review_ids: list[int]) -> list[Review]:
        with self.opened() as (_, ledger):
            queue = ReviewQueue(ledger)
            return [queue.get(review_id) for review_id in review_ids]


def _results(ledger: Ledger, review: Review) -> dict[int, dict[str, Any]]:
    """The latest outcome of each action of the review's current version that an executor ran."""
    import json

    rows = ledger.conn.execute(
        "SELECT d.action_index, res.outcome, res.detail FROM decisions d JOIN executions x ON x.decision_id = d.id"
        " JOIN execution_results res ON res.execution_id = x.id WHERE d.review_id = ? AND d.version = ?"
        " ORDER BY res.rowid", (review.id, review.version)).fetchall()
    return {row["action_index"]: {"outcome": row["outcome"], **json.loads(row["detail"])} for row in rows}


SHOWN = {  # what the evidence pane shows of a ledger row it names
    "model": ("name", "state", "visibility", "first_seen", "last_seen"),
    "observation": ("scan_id", "observed_at", "found", "name", "revision", "visibility", "downloads", "likes",
                    "license", "shutdown_date"),
    "event": ("at", "kind", "scan_id", "detail"),
}


def _ledger_rows(ledger: Ledger, source: str) -> list[dict[str, Any]]:
    """The ledger rows an evidence item names as its source: `observation 812`, `event 40`, `model 14`, or the
    two ends of `observations 3–812` (agents/documenter.py)."""
    import re

    rows = []
    for noun, first, last in re.findall(r"\b(observation|event|model)s? (\d+)(?:–(\d+))?", source):
        for row_id in dict.fromkeys(int(found) for found in (first, last) if found):
            row = ledger.conn.execute(f"SELECT {', '.join(SHOWN[noun])} FROM {noun}s WHERE id = ?", (row_id,)).fetchone()
            if row is not None:
                rows.append({"row": f"{noun} {row_id}", **{key: row[key] for key in row.keys()}})
    return rows
