"""The coordinator: which events get a proposal, gathered into one letter per recipient, and which wait
or are left alone (and why).

A proposal is worth a person's attention when a model vanished or may vanish: `deleted`,
`withdrawn` (deleted or hidden, the registry does not say which), `suspected_missing`, `deprecation_announced`,
a `visibility_changed` to private or disabled of a model others build on, and a `stage_changed` to MLflow's
`Archived` (a version retired). Outreach must be welcome, so a recipient (an author, an organisation, the
keeper of a local registry) gets one letter covering all their models, ranked by what would be lost:

- while their proposal is open (pending, deferred, or approved and not yet sent), a new event joins it as a
  new version, which voids any approval of the old one;
- once a letter was sent (a publish action ran), new events wait out the cooldown and join the next letter,
  unless an announced shutdown falls inside the cooldown: then the letter is drafted anyway, marked, for the
  reviewer to decide;
- a pending, deferred or rejected proposal blocks nothing; the do-not-contact list (config and
  `weightkeeper contact block`) is honoured before anything is drafted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tools.memory import case_key
from weightkeeper.config import ProposalSettings
from weightkeeper.domain import EventKind
from weightkeeper.ledger import Ledger, contacts, queries
from weightkeeper.letter import human_date
from weightkeeper.review import ReviewQueue

ALWAYS = (EventKind.DELETED, EventKind.WITHDRAWN, EventKind.SUSPECTED_MISSING, EventKind.DEPRECATION_ANNOUNCED)
HIDDEN = ("private", "disabled")
RETIRED_STAGE = "Archived"  # MLflow's stage for a version taken out of use


@dataclass(frozen=True)
class Candidate:
    event_id: int
    registry: str
    model_id: int
    model: str
    kind: str
    recipient: str


def recipient(model: str, registry: str) -> str:
    """Whom a proposal is addressed to: the owner part of `owner/name`, else the registry's keeper."""
    owner, slash, _ = model.partition("/")
    return owner if slash else registry


def candidates(ledger: Ledger, *, model: str | None = None, addressed_to: str | None = None) -> list[Candidate]:
    """Per model, its latest event of the kinds that may need a proposal, when no proposal was drafted for
    it yet: a `deleted` or `withdrawn` supersedes the `suspected_missing` before it, and one letter tells both.
    With `addressed_to`, only those of the models whose proposals go to that recipient."""
    rows = queries.latest_unproposed_events(
        ledger, (*ALWAYS, EventKind.VISIBILITY_CHANGED, EventKind.STAGE_CHANGED), model=model)
    found = [Candidate(row["id"], row["registry"], row["model_id"], row["model"], row["kind"],
                       recipient(row["model"], row["registry"])) for row in rows]
    return [candidate for candidate in found if addressed_to in (None, candidate.recipient)]


@dataclass(frozen=True)
class Ranked:
    """A candidate with its priority, the text it is compared by (tools/memory.py `case_text`), the
    near-duplicates of the same owner grouped under it, and the shutdown date its registry announced."""

    priority: float
    candidate: Candidate
    case: str
    members: tuple[tuple[Candidate, float], ...] = ()
    shutdown: str | None = None


@dataclass(frozen=True)
class Letter:
    """The events one proposal to `recipient` covers, ranked (the lead first). `joins` is the open review they
    join as a new version; `cooldown` says why the letter is drafted although a letter was sent within the
    cooldown."""

    recipient: str
    entries: tuple[Ranked, ...]
    joins: int | None = None
    cooldown: str = ""


def letters(ledger: Ledger, settings: ProposalSettings,
            ranked: list[Ranked]) -> tuple[list[Letter], list[tuple[Ranked, str]]]:
    """The ranked candidates gathered per recipient into letters, in the order of each recipient's best candidate,
    and those that wait for the next letter (with where they will go)."""
    by_recipient: dict[str, list[Ranked]] = {}
    for entry in ranked:
        by_recipient.setdefault(entry.candidate.recipient, []).append(entry)
    queue, found, waiting = ReviewQueue(ledger), [], []
    for recipient, entries in by_recipient.items():
        open_review = queue.open_for(recipient)
        if open_review is not None:
            found.append(Letter(recipient, tuple(entries), joins=open_review.id))
            continue
        sent = queue.last_sent(recipient)
        until = sent and datetime.strptime(sent[1][:10], "%Y-%m-%d") + timedelta(days=settings.cooldown_days)
        if not sent or until <= datetime.now(UTC).replace(tzinfo=None):
            found.append(Letter(recipient, tuple(entries)))
            continue
        ends, sent_on = human_date(until.strftime("%Y-%m-%d")), human_date(sent[1])
        urgent = [entry for entry in entries if entry.shutdown and entry.shutdown[:10] < until.strftime("%Y-%m-%d")]
        if urgent:
            shutdowns = "; ".join(f"{entry.candidate.model} shuts down on {human_date(entry.shutdown or '')}"
                                  for entry in urgent)
            found.append(Letter(recipient, tuple(entries), cooldown=(
                f"inside the cooldown: {recipient} was sent a letter on {sent_on} (review {sent[0]}), and {shutdowns}, "
                f"before the cooldown ends on {ends}. Drafted anyway, for you to decide whether it goes now")))
            continue
        waiting += [(entry, f"waits for the next letter to {recipient}: they were sent one on {sent_on} (review "
                            f"{sent[0]}), and the {settings.cooldown_days}-day cooldown ends on {ends}")
                    for entry in entries]
    return found, waiting


def group_near_duplicates(ranked: list[Ranked], vectors: Callable[[dict[str, str]], dict[str, list[float]]],
                          threshold: float) -> list[Ranked]:
    """One proposal for models of one owner that are near-duplicates (a quantisation, a re-upload, a version):
    in rank order, a candidate whose case is at least `threshold` similar (cosine) to a group's lead joins
    the most similar such group; otherwise it leads a group of its own. Only owners with two or more
    candidates are embedded, and owners are never mixed: one proposal is one letter to one owner."""
    by_owner: dict[str, list[Ranked]] = {}
    for entry in ranked:
        by_owner.setdefault(entry.candidate.recipient, []).append(entry)
    shared = {key(entry): entry.case for entries in by_owner.values() if len(entries) > 1 for entry in entries}
    embedded = vectors(shared) if shared else {}
    leads: dict[str, list[Ranked]] = {}
    grouped: dict[int, list[tuple[Candidate, float]]] = {}
    for entry in ranked:
        owner_leads = leads.setdefault(entry.candidate.recipient, [])
        similar = [(cosine(embedded[key(lead)], embedded[key(entry)]), lead) for lead in owner_leads
                   ] if key(entry) in embedded else []
        best = max(similar, key=lambda pair: pair[0], default=None)
        if best is not None and best[0] >= threshold:
            grouped[best[1].candidate.event_id].append((entry.candidate, round(best[0], 4)))
        else:
            owner_leads.append(entry)
            grouped[entry.candidate.event_id] = []
    return [Ranked(entry.priority, entry.candidate, entry.case, tuple(grouped[entry.candidate.event_id]))
            for entry in ranked if entry.candidate.event_id in grouped]


def key(entry: Ranked) -> str:
    return case_key(entry.candidate.registry, entry.candidate.model_id)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)) or 1.0)


def skip_reason(candidate: Candidate, dependents: int, to: str | None = None) -> str | None:
    """Why this event gets no proposal, or None when it should get one. `to` is what a visibility or stage change
    moved the model to."""
    if candidate.kind == EventKind.VISIBILITY_CHANGED and (to not in HIDDEN or not dependents):
        return "a visibility change only needs a proposal when a model others build on turns private or disabled"
    if candidate.kind == EventKind.STAGE_CHANGED and to != RETIRED_STAGE:
        return f"a stage change only needs a proposal when a version is moved to {RETIRED_STAGE}"
    return None


def blocked(ledger: Ledger, settings: ProposalSettings, recipient: str) -> str | None:
    """Why nothing may be drafted for `recipient`, or None."""
    if recipient in settings.do_not_contact or contacts.blocked(ledger, recipient):
        return f"{recipient} is on the do-not-contact list"
    return None


def priority(impact: dict[str, float]) -> float:
    """Rank by what would be lost: usage, the models built on it (weighted most: their lineage breaks
    too), and how soon an announced shutdown comes. Logarithms keep one famous model from drowning
    out the rest; the figures come from the evidence, so the ranking is explainable."""
    score = math.log1p(impact.get("downloads", 0)) + 0.5 * math.log1p(impact.get("likes", 0))
    score += 2 * math.log1p(impact.get("dependents", 0))
    days = impact.get("days_to_shutdown")
    if days is not None:
        score += max(0.0, (90 - max(days, 0)) / 30)
    return round(score, 3)
