"""What the console reads and decides through, for one home and one reviewer.

Every call opens the ledger on the thread that makes it (the console reads and decides in worker threads, so
the screen never waits on the ledger), and every decision goes through the same functions as `weightkeeper
review approve|reject|defer|edit` (weightkeeper/cli/reviewing.py), recorded on the channel `tui`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightkeeper import config
from weightkeeper.cli import reviewing
from weightkeeper.ledger import Ledger
from weightkeeper.review import Headline, Review, ReviewQueue, utc_now
from weightkeeper.words import counted

if TYPE_CHECKING:
    from weightkeeper.ledger.notices import LedgerNotices

TABS: dict[str, tuple[str, ...]] = {  # inbox tab -> the review statuses it lists
    "pending": ("pending",),
    "deferred": ("deferred",),
    "decided": ("approved", "rejected"),
    "executed": ("executed",),
}


def lead(headline: Headline) -> str:
    """The model a proposal is about, and how many more (near-duplicates of one recipient) it covers."""
    return headline.model + (f" +{headline.members}" if headline.members else "")


def came_back(item: Headline | Triaged) -> bool:
    """A pending proposal that was deferred before: its deferral's date came, or a new event amended it."""
    return isinstance(item, Headline) and item.status == "pending" and item.deferral is not None


def critic_status(headline: Headline) -> str:
    if headline.errors:
        return counted(headline.errors, "error")
    notes = headline.findings - headline.errors
    return counted(notes, "note") if notes else "ok"


def age(timestamp: str, now: datetime) -> str:
    """How long ago a ledger time was, in the largest whole unit: 45s, 12m, 5h, 3d."""
    seconds = max(0, int((now - datetime.fromisoformat(timestamp)).total_seconds()))
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


@dataclass(frozen=True)
class Figures:
    """The ledger's statistics (`weightkeeper stats`), in all and per registry."""

    overall: dict[str, Any]
    per_registry: dict[str, dict[str, int]]


@dataclass(frozen=True)
class RegistryState:
    name: str
    kind: str
    location: str
    schedule: str
    last_scan: dict[str, Any] | None
    problems: list[str]
    next_run: str


@dataclass(frozen=True)
class Archived:
    object_id: str
    versions: int
    head: str
    files: int
    bytes: int
    fixity: str | None  # fixity_ok or fixity_failed, from the latest check
    checked_at: str | None


@dataclass(frozen=True)
class Desk:
    home: Path
    reviewer: str
    now: Callable[[], datetime] = utc_now  # the clock the queue ends deferrals by, and ages are counted from

    @contextmanager
    def opened(self) -> Iterator[tuple[config.Config, Ledger]]:
        settings = config.load(self.home)
        with Ledger(settings.store) as ledger:
            yield settings, ledger

    # -- reading ------------------------------------------------------------------------------

    def headlines(self, tab: str, limit: int | None = None) -> list[Headline]:
        with self.opened() as (_, ledger):
            return self.queue(ledger).headlines(TABS[tab], limit)

    def queue(self, ledger: Ledger) -> ReviewQueue:
        return ReviewQueue(ledger, clock=self.now)

    async def notices(self) -> LedgerNotices | None:
        """The ledger's notices of its changes, heard on a connection of their own, on a PostgreSQL store (a
        LedgerError says why not); None on SQLite, whose console polls."""
        from weightkeeper.ledger.notices import LedgerNotices

        store = await asyncio.to_thread(lambda: config.load(self.home).store)
        return await LedgerNotices.listen(store) if isinstance(store, str) else None  # a str store is a URL

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes whenever a review arrives or is decided, or a day begins (a deferral may end): what the console
        polls for."""
        with self.opened() as (_, ledger):
            return self.queue(ledger).fingerprint()

    def triaged(self) -> list[Triaged]:
        from agents.triage import triaged

        with self.opened() as (settings, ledger):
            return [Triaged(*row) for row in triaged(ledger, settings.proposals)]

    def dossier(self, review_id: int) -> Dossier:
        with self.opened() as (_, ledger):
            queue = self.queue(ledger)
            review = queue.get(review_id)
            return Dossier(review, queue.members(review_id), queue.decisions(review_id), queue.results(review),
                           {item.id: _ledger_rows(ledger, item.source) for item in review.evidence.items})

    def events(self) -> list[dict[str, Any]]:
        """Every ledger event, newest first, as `weightkeeper ledger` reads them."""
        from weightkeeper.ledger.queries import events

        with self.opened() as (_, ledger):
            return events(ledger)[::-1]

    def observations(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The observations an event was recorded from (the one before it and the one it saw)."""
        with self.opened() as (_, ledger):
            return [row for key in ("prior_observation", "observation") if event.get(key)
                    for row in _ledger_rows(ledger, f"observation {event[key]}")]

    def figures(self) -> Figures:
        from weightkeeper.ledger.queries import registry_names, stats

        with self.opened() as (settings, ledger):
            names = registry_names(ledger)
            return Figures(stats(ledger), {name: stats(ledger, registry=name)["models"] for name in names})

    def registries(self) -> list[RegistryState]:
        from weightkeeper.cli.watch import next_run
        from weightkeeper.ledger.queries import last_scan

        with self.opened() as (settings, ledger):
            states = []
            for registry in settings.registries.values():
                scan, problems = last_scan(ledger, registry.name)
                states.append(RegistryState(registry.name, registry.kind, self.shown_path(registry.location),
                                            registry.schedule,
                                            scan, problems,
                                            next_run(registry.schedule, self.now()).strftime("%Y-%m-%d %H:%M")))
            return states

    def shown_path(self, location: str) -> str:
        """A location inside the weightkeeper home as `HOME/…`, the way the config may write it."""
        path = Path(location)
        return f"HOME/{path.relative_to(self.home)}" if path.is_absolute() and path.is_relative_to(self.home) else location

    def scan(self, name: str, display: Any) -> str:
        """Scan one registry now, as `weightkeeper scan NAME` does (a scan acts on nobody's model and needs no
        approval); `display` hears its progress. Returns the CLI's summary of it."""
        from weightkeeper.cli.scanning import describe, scan_registries

        (result,) = scan_registries(self.home, [name], log=None, display=display)
        return describe(result)

    def archive(self) -> list[Archived]:
        from tools.archive.archiving import open_store
        from weightkeeper.ledger.queries import fixity_checks

        with self.opened() as (settings, ledger):
            checks = fixity_checks(ledger)
            return [Archived(item.object_id, item.versions, item.head, item.files, item.bytes,
                             *checks.get(item.object_id, (None, None))) for item in open_store(settings).objects()]

    def verify(self, object_id: str) -> Any:
        """Check every byte of one archived object, recorded as `archive verify ID` records it."""
        from weightkeeper.cli.archiving import verify_archive

        (report,) = verify_archive(config.load(self.home), object_id, sample=None)
        return report

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
                reviewing.defer(ledger, self._decider(), review, until=until, reason=reason, clock=self.now)

    def edit(self, review: Review, *, title: str, body: str, note: str | None) -> int:
        with self.opened() as (_, ledger):
            return reviewing.edit(ledger, self._decider(), review, title=title, body=body, note=note)

    def run_again(self, review: Review) -> list[dict[str, Any]]:
        with self.opened() as (settings, ledger):
            return reviewing.run_approved(ledger, self.home, settings, review.id)

    def reviews(self, review_ids: list[int]) -> list[Review]:
        with self.opened() as (_, ledger):
            queue = self.queue(ledger)
            return [queue.get(review_id) for review_id in review_ids]


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

    from weightkeeper.ledger.queries import ledger_row

    rows = []
    for noun, first, last in re.findall(r"\b(observation|event|model)s? (\d+)(?:–(\d+))?", source):
        for row_id in dict.fromkeys(int(found) for found in (first, last) if found):
            row = ledger_row(ledger, noun, row_id, SHOWN[noun])
            if row is not None:
                rows.append({"row": f"{noun} {row_id}", **row})
    return rows
