"""The review queue, the signed decision log, and the executor's claim on an approval.

The approval invariant lives here, on the side that verifies (what signs is weightkeeper/signing.py and
weightkeeper/deciding.py, which no agent imports):

- A decision is written only by a `HumanReviewer` (weightkeeper/deciding.py), signed with its reviewer's own
  Ed25519 key, kept outside the home. The ledger holds reviewers' public keys, each endorsed by a reviewer
  before it, so a row written any other way (a forged INSERT, a reviewer nobody endorsed) is refused.
- What is approved comes from the signed decisions alone, never from `reviews.status` (a display cache):
  every decision covers the signature of the review's previous one (a removed, reordered or rewritten
  decision breaks the chain), the version must be the number of signed edits plus one, and the latest
  decisions must be approvals of that version, each bound to the sha256 of its action's exact payload and
  overriding every critic error by id.
- A chain cannot show its own cut end, nor a ledger vouch for its first reviewer: each user's witness
  (weightkeeper/witness.py, outside the ledger) pins the ledger's root reviewer and anchors every chain this
  user signed or verified; a ledger whose root differs, or whose chain lost a witnessed decision, is refused.
- The idempotency key derives from (review, version, action, payload sha256): an approval runs once however
  often it is claimed, and at most one approval per (review, version, action) exists. An executor runs a
  claim under a lease; a second executor skips it, and a crashed one's lease is taken over, same key.

Decisions, executions and their results are append-only tables, and every step is a ledger event.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from weightkeeper import letter
from weightkeeper.domain import EventKind, canonical_json
from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger, now_iso
from weightkeeper.ledger.database import NO_LIMIT, json_member
from weightkeeper.ledger.store import NewEvent, holder_alive
from weightkeeper.proposals import Dossier, Draft, Finding, PlannedAction
from weightkeeper.witness import Seen, Witness, described, keys_dir

STATUSES = ("pending", "approved", "rejected", "deferred", "executed")
CHANNELS = ("cli", "tui", "demo")
LEASE_SECONDS = 60.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class ReviewError(WeightkeeperError):
    """A review cannot be found or decided as asked."""


class ApprovalRefused(WeightkeeperError):
    """The executor found no valid approval for the exact action it was to run."""


@dataclass(frozen=True)
class Review:
    id: int
    thread_id: str
    interrupt_id: str
    registry: str
    registry_id: int
    model: str
    model_id: int
    event_id: int
    event: str
    recipient: str
    priority: float
    status: str
    version: int
    draft: Draft
    evidence: Dossier
    findings: tuple[Finding, ...]
    created_at: str
    updated_at: str
    deferral: str | None = None  # its latest deferral's reason ("" if it gave none); None if never deferred
    deferred_until: str | None = None  # the date that deferral ends (ISO), if it named one

    def payload(self, action_index: int) -> dict[str, Any]:
        """What the action runs with: the letter as its recipient reads it (weightkeeper/letter.py)."""
        return letter.payload(self.draft.actions[action_index], self.draft, self.evidence)

    def payload_sha256(self, action_index: int) -> str:
        return letter.payload_sha256(self.draft.actions[action_index], self.draft, self.evidence)

    def errors(self) -> list[str]:
        """The ids of the critic's errors: an approval must override each."""
        return [finding.id for finding in self.findings if finding.severity == "error"]

    def summary(self, states: list[str]) -> dict[str, Any]:
        """What `review list --json` shows of it, with its actions' states (`ReviewQueue.action_states`)."""
        return {"id": self.id, "status": shown_status(self, states), "model": self.model,
                "models": [evidence.model for evidence in self.evidence.models], "registry": self.registry,
                "event": self.event, "priority": round(self.priority, 3), "recipient": self.recipient,
                "title": self.draft.title, "drafter": self.draft.drafter, "version": self.version,
                "errors": sum(finding.severity == "error" for finding in self.findings),
                "deferral": self.deferral, "deferred_until": self.deferred_until,
                "actions": [{"kind": action.kind, "channel": action.channel, "target": action.target, "state": state}
                            for action, state in zip(self.draft.actions, states, strict=True)]}


@dataclass(frozen=True)
class Headline:
    """One line of a review, as an inbox lists it (`ReviewQueue.headlines`)."""

    id: int
    status: str
    priority: float
    recipient: str
    version: int
    created_at: str
    registry: str
    model: str
    event: str
    drafter: str
    title: str
    errors: int  # the critic's errors, each to be overridden by an approval
    findings: int
    members: int  # near-duplicate models it covers beside its own
    reason: str | None  # the latest decision's reason: why it was rejected or deferred
    deferral: str | None = None  # as Review.deferral: a pending one with a deferral is back from it
    deferred_until: str | None = None


_SEAL = object()  # only the queue builds a Claim


@dataclass(frozen=True)
class Claim:
    """An approved action the executor holds under its lease: run it with `idempotency_key`, then `finish` it.
    Built by `ReviewQueue.claim` alone; a sink checks it with `ReviewQueue.check` before acting."""

    execution_id: int
    review: Review
    action_index: int
    action: PlannedAction
    payload: dict[str, Any]
    idempotency_key: str
    holder: str
    seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seal is not _SEAL:
            raise ApprovalRefused("a claim is built by ReviewQueue.claim from a verified approval, never by hand")


@dataclass(frozen=True)
class Skipped:
    """An approved action another executor is running: who holds it, and for how long at most."""

    review_id: int
    action_index: int
    holder: str
    seconds_left: float


def idempotency_key(review_id: int, version: int, action_index: int, payload_sha256: str) -> str:
    """The same approved action always has the same key, whichever row or process claims it."""
    return hashlib.sha256(canonical_json([review_id, version, action_index, payload_sha256])).hexdigest()


def decision_fields(row: sqlite3.Row | dict[str, Any]) -> bytes:
    """What a decision's signature covers, the previous decision's signature included."""
    return canonical_json(["decision", row["review_id"], row["version"], row["decision"], row["action_index"],
                           row["payload_sha256"], row["reviewer"], row["channel"], row["reason"],
                           json.loads(row["overrides"]), row["decided_at"], row["previous"]])


def reviewer_fields(row: sqlite3.Row | dict[str, Any]) -> bytes:
    """What an endorsement covers: the reviewer's name and public key, by whom and when."""
    return canonical_json(["reviewer", row["name"], row["public_key"], row["added_by"], row["added_at"]])


def verified(public_key: str, message: bytes, signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def reviewer_keys(conn: sqlite3.Connection) -> dict[str, str]:
    """The reviewers whose public key is endorsed: the first by itself, each later one by a reviewer before it.
    A row nobody endorsed is left out, so a decision signed with its key is refused."""
    trusted: dict[str, str] = {}
    for row in conn.execute("SELECT * FROM reviewers ORDER BY rowid"):
        endorser = row["public_key"] if not trusted and row["added_by"] == row["name"] else trusted.get(row["added_by"])
        if endorser is not None and verified(endorser, reviewer_fields(row), row["signature"]):
            trusted[row["name"]] = row["public_key"]
    return trusted


class ReviewQueue:
    """The queue of proposals waiting for a human, in the ledger."""

    def __init__(self, ledger: Ledger, witness: Witness | None = None, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
        """`witness`: what verifies against, by default this user's (in their keys folder). `clock`: what time it
        is, for the deferrals it ends."""
        self.ledger, self.conn = ledger, ledger.conn
        self.witness = witness or Witness(keys_dir())
        self.clock = clock

    def today(self) -> str:
        """The date (UTC, ISO) on which this queue ends deferrals: one deferred until it is pending again."""
        return self.clock().astimezone(UTC).date().isoformat()

    def enqueue(self, *, thread_id: str, interrupt_id: str, evidence: Dossier, draft: Draft,
                findings: list[Finding], priority: float, recipient: str,
                similarity: dict[int, float] | None = None) -> int:
        """Put a proposal in front of reviewers; the same (thread, interrupt) twice is one row. Every model's event
        but the lead's is a member of the proposal: it gets none of its own. `similarity` gives a member's cosine
        to the model it is a near-duplicate of.

        A thread that already has an open proposal (a new event of its recipient joined it) amends that row: a new
        version, pending again, so any approval of the previous version is void (`approvals` counts amendments
        like edits). The `proposal_amended` event says which models were added."""
        with self.ledger.transaction() as conn:
            row = conn.execute("SELECT id FROM reviews WHERE thread_id = ? AND interrupt_id = ?",
                               (thread_id, interrupt_id)).fetchone()
            if row is not None:
                return row["id"]
            open_row = conn.execute("SELECT id FROM reviews WHERE thread_id = ? AND status IN"
                                    " ('pending', 'deferred', 'approved') ORDER BY id DESC LIMIT 1",
                                    (thread_id,)).fetchone()
            registry_id = conn.execute("SELECT registry_id FROM models WHERE id = ?", (evidence.lead.model_id,)).fetchone()[0]
            now = now_iso()
            texts = (json.dumps(draft.to_dict()), json.dumps(evidence.to_dict()),
                     json.dumps([finding.to_dict() for finding in findings]))
            if open_row is not None:
                review_id, before = open_row["id"], self.get(open_row["id"])
                conn.execute(
                    "UPDATE reviews SET interrupt_id = ?, registry_id = ?, model_id = ?, event_id = ?, priority = ?,"
                    " status = 'pending', version = version + 1, draft = ?, evidence = ?, findings = ?, updated_at = ?"
                    " WHERE id = ?", (interrupt_id, registry_id, evidence.lead.model_id, evidence.lead.event_id, priority, *texts,
                                      now, review_id))
            else:
                review_id = conn.execute(
                    "INSERT INTO reviews (thread_id, interrupt_id, registry_id, model_id, event_id, recipient, priority,"
                    " status, draft, evidence, findings, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?) RETURNING id",
                    (thread_id, interrupt_id, registry_id, evidence.lead.model_id, evidence.lead.event_id, recipient, priority,
                     *texts, now, now)).fetchone()[0]
            members = [model.event_id for model in evidence.models] + ([before.event_id] if open_row else [])
            conn.executemany(
                "INSERT INTO review_members (event_id, review_id, model_id, similarity)"
                " SELECT id, ?, model_id, ? FROM events WHERE id = ? AND id != ? ON CONFLICT DO NOTHING",
                [(review_id, (similarity or {}).get(event_id), event_id, evidence.lead.event_id) for event_id in members])
            if open_row is not None:
                covered = {model.event_id for model in before.evidence.models}
                self.record_event(EventKind.PROPOSAL_AMENDED, registry_id, evidence.lead.model_id, {
                    "review_id": review_id, "version": before.version + 1,
                    "added": [model.model for model in evidence.models if model.event_id not in covered],
                    "events": [model.event_id for model in evidence.models if model.event_id not in covered],
                    "voided": before.status == "approved"})
            else:
                self.record_event(EventKind.PROPOSAL_DRAFTED, registry_id, evidence.lead.model_id,
                                  {"review_id": review_id, "event_id": evidence.lead.event_id, "drafter": draft.drafter,
                                   "prompt": draft.prompt, "errors": sum(f.severity == "error" for f in findings),
                                   "models": len(evidence.models)})
            return review_id

    def get(self, review_id: int) -> Review:
        row = self.conn.execute(f"{_SELECT[self.conn.dialect]} WHERE r.id = :id", {"id": review_id, "today": self.today()}).fetchone()
        if row is None:
            raise ReviewError(f"there is no review {review_id}; `weightkeeper review list` shows the queue")
        return _review(row)

    def list(self, status: str | None = None) -> list[Review]:
        """The reviews (those in `status`, as `_STATUS` reads it: a deferral that ended is pending), pending first."""
        where = f"WHERE {_STATUS} = :status" if status else ""
        return [_review(row) for row in self.conn.execute(
            f"{_SELECT[self.conn.dialect]} {where} ORDER BY {_STATUS} != 'pending', r.priority DESC, r.id",
            {"status": status, "today": self.today()})]

    def open_for(self, recipient: str) -> Review | None:
        """The recipient's open proposal: pending, deferred, or approved with no letter sent yet."""
        row = self.conn.execute(
            "SELECT id FROM reviews WHERE recipient = ? AND status IN ('pending', 'deferred', 'approved')"
            f" AND NOT EXISTS (SELECT 1 FROM events WHERE kind = 'action_executed' AND {self._member('detail', 'review_id')}"
            f" = reviews.id AND {self._member('detail', 'kind')} = 'publish') ORDER BY id DESC LIMIT 1",
            (recipient,)).fetchone()
        return row and self.get(row["id"])

    def last_sent(self, recipient: str) -> tuple[int, str] | None:
        """The recipient's latest letter that was sent (a publish action that ran): (review id, when)."""
        row = self.conn.execute(
            f"SELECT r.id, e.at FROM events e JOIN reviews r ON r.id = {self._member('e.detail', 'review_id')}"
            f" WHERE e.kind = 'action_executed' AND {self._member('e.detail', 'kind')} = 'publish' AND r.recipient = ?"
            " ORDER BY e.id DESC LIMIT 1", (recipient,)).fetchone()
        return row and (row["id"], row["at"])

    def amendments(self, review_id: int) -> int:
        """How many times new events joined the review (each a new version, as an edit is)."""
        return self.conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'proposal_amended'"
                                 f" AND {self._member('detail', 'review_id')} = ?", (review_id,)).fetchone()[0]

    def _member(self, document: str, key: str) -> str:
        """SQL reading a member of a JSON column in this ledger's dialect (a review id as an integer)."""
        return json_member(self.conn.dialect, document, key, integer=key == "review_id")

    def headlines(self, statuses: tuple[str, ...], limit: int | None = None) -> list[Headline]:
        """The reviews in these statuses as one line each, highest priority first (the first `limit`): what an
        inbox lists, read without decoding any draft or evidence."""
        marks = ", ".join(f":s{index}" for index in range(len(statuses)))
        return [Headline(**row) for row in self.conn.execute(
            f"SELECT r.id, {_STATUS} AS status, r.priority, r.recipient, r.version, r.created_at, g.name AS registry,"
            f" m.name AS model, e.kind AS event, {self._member('r.draft', 'drafter')} AS drafter,"
            f" {self._member('r.draft', 'title')} AS title, {_FINDINGS[self.conn.dialect]},"
            " (SELECT COUNT(*) FROM review_members x WHERE x.review_id = r.id) AS members,"
            " (SELECT reason FROM decisions d WHERE d.review_id = r.id ORDER BY d.id DESC LIMIT 1) AS reason,"
            f" u.reason AS deferral, u.until AS deferred_until FROM reviews r {_DEFERRED[self.conn.dialect]}"
            " JOIN registries g ON g.id = r.registry_id JOIN models m ON m.id = r.model_id"
            " JOIN events e ON e.id = r.event_id"
            # The first `limit` chosen on id and priority alone: the columns above are then made for those rows
            # only, not for every review before the sort.
            f" WHERE r.id IN (SELECT r.id FROM reviews r {_DEFERRED[self.conn.dialect]} WHERE {_STATUS} IN ({marks})"
            " ORDER BY r.priority DESC, r.id LIMIT :limit) ORDER BY r.priority DESC, r.id", {**{f"s{index}": status for index, status in enumerate(statuses)},
                              "limit": NO_LIMIT if limit is None else limit, "today": self.today()})]

    def members(self, review_id: int) -> list[str]:
        """The names of the near-duplicate models a review covers beside its own, most similar first."""
        return [row["name"] for row in self.conn.execute(
            "SELECT m.name FROM review_members x JOIN models m ON m.id = x.model_id WHERE x.review_id = ?"
            " ORDER BY x.similarity DESC, m.name", (review_id,))]

    def recheck(self, review_id: int, version: int, findings: list[Finding]) -> None:
        """Replace the critic's findings on the review's current version (after an edit, the critic read the new
        text): an approval overrides the errors found in the text it approves."""
        with self.ledger.transaction() as conn:
            conn.execute("UPDATE reviews SET findings = ? WHERE id = ? AND version = ?",
                         (json.dumps([finding.to_dict() for finding in findings]), review_id, version))

    def decisions(self, review_id: int) -> list[dict[str, Any]]:
        return [dict(row) for row in self.conn.execute(
            "SELECT * FROM decisions WHERE review_id = ? ORDER BY id", (review_id,))]

    # -- the executor's side ----------------------------------------------------------------

    def chain(self, review: Review, witness: Witness | None = None, *, anchor: bool = True) -> list[sqlite3.Row]:
        """The review's signed decisions, verified against `witness` (by default this user's), which then
        anchors them unless `anchor` is false (for decisions not committed yet): each signed by an endorsed
        reviewer under the root reviewer the witness pinned (pinned now if this user never saw the ledger),
        each following the one before, and the head the witness holds still at its place. Refuses
        (ApprovalRefused) otherwise."""
        keys = reviewer_keys(self.conn)
        decisions = self.conn.execute("SELECT * FROM decisions WHERE review_id = ? AND scheme = 'ed25519'"
                                      " ORDER BY id", (review.id,)).fetchall()
        witness = witness or self.witness
        root = next(iter(keys.items()), None)
        with witness.seen(self.ledger.path) as seen:
            pinned = self._rooted(seen, root, witness)
            previous = ""
            for row in decisions:
                where = f"decision {row['id']} of review {review.id}"
                if row["previous"] != previous:
                    raise ApprovalRefused(f"{where} does not follow the review's previous decision: the decision log "
                                          "was rewritten, reordered or had a decision removed; nothing runs")
                key = keys.get(row["reviewer"])
                if key is None or not verified(key, decision_fields(row), row["signature"]):
                    raise ApprovalRefused(f"{where} was not signed by an endorsed reviewer (its signature does not "
                                          "match); nothing runs")
                previous = row["signature"]
            length, head = seen.heads.get(review.id, (0, ""))
            if length and (len(decisions) < length or decisions[length - 1]["signature"] != head):
                now = f"it holds {len(decisions)}" if len(decisions) < length else f"its decision {length} is another"
                raise ApprovalRefused(
                    f"decision(s) of review {review.id} seen on this machine are gone from the ledger "
                    f"{self.ledger.path}: this user signed or verified {length} ({witness.path}), {now}. Someone who "
                    "can write the ledger cut or rewrote its decision log; nothing runs. Restore the ledger from a "
                    "backup that holds those decisions, or, to accept it as it is now, run `weightkeeper reviewer "
                    "trust --reset` on a terminal")
            if decisions and anchor:
                seen.heads[review.id] = (len(decisions), decisions[-1]["signature"])
        if pinned is not None:
            print(f"weightkeeper: first verification of the ledger {self.ledger.path} by this user: its root reviewer "
                  f"{described(pinned)} is now pinned in {witness.path}; a ledger whose root reviewer differs will "
                  "be refused", file=sys.stderr)
        return decisions

    def _rooted(self, seen: Seen, root: tuple[str, str] | None, witness: Witness) -> tuple[str, str] | None:
        """Pin the ledger's root reviewer the first time this user sees it (and return it); refuse another root."""
        if seen.root is None:
            seen.root = root
            return root
        if seen.root != root:
            raise ApprovalRefused(
                f"the root reviewer of the ledger {self.ledger.path} is {described(root)}, but this user pinned "
                f"{described(seen.root)} ({witness.path}): someone who can write the ledger replaced its reviewers; "
                "nothing runs. Restore the ledger from a backup, or, if its reviewers were replaced on purpose, re-pin "
                "with `weightkeeper reviewer trust --reset` on a terminal")
        return None

    def approvals(self, review: Review) -> list[sqlite3.Row]:
        """The signed approvals in force for the review's current version, from the decision log alone.

        Refuses (ApprovalRefused) when the log is broken (see `chain`), when its version is not the number of
        signed edits plus one, when the latest signed decision is not an approval of this version, or when an
        approval is for another payload or leaves a critic error without an override."""
        decisions = self.chain(review)
        edits = sum(row["decision"] == "edit" for row in decisions)
        amended = self.amendments(review.id)  # an unsigned amendment can only raise the version: it voids, never revives
        if review.version != edits + amended + 1:
            raise ApprovalRefused(f"review {review.id} says version {review.version}, but its signed decisions "
                                  f"hold {edits} edit(s)" + (f" and the ledger {amended} amendment(s) by new events"
                                                             if amended else "")
                                  + f", so version {edits + amended + 1}; nothing runs")
        latest = decisions[-1]["decision"] if decisions else "none"
        if latest != "approve":
            raise ApprovalRefused(f"review {review.id}'s latest signed decision is {latest}, not an approval; "
                                  "nothing runs")
        tail = len(decisions)
        while tail and decisions[tail - 1]["decision"] == "approve":
            tail -= 1
        approvals = decisions[tail:]
        for approval in approvals:
            self._check(review, approval)
        if len({approval["action_index"] for approval in approvals}) != len(approvals):
            raise ApprovalRefused(f"review {review.id} holds two approvals of one action; nothing runs")
        return approvals

    def _check(self, review: Review, approval: sqlite3.Row) -> None:
        where, index = f"approval {approval['id']} of review {review.id}", approval["action_index"]
        if approval["version"] != review.version:
            raise ApprovalRefused(f"{where} is of version {approval['version']}, not the current {review.version}")
        if index is None or not 0 <= index < len(review.draft.actions):
            raise ApprovalRefused(f"{where} names no action of the review")
        if approval["payload_sha256"] != review.payload_sha256(index):
            raise ApprovalRefused(f"{where} was for another payload than action {index} now holds; it needs a new "
                                  "approval")
        missing = sorted(set(review.errors()) - set(json.loads(approval["overrides"])))
        if missing:
            raise ApprovalRefused(f"{where} leaves the critic's error(s) {', '.join(missing)} without an override; "
                                  "nothing runs")

    def claim(self, review_id: int, holder: str, ttl: float = LEASE_SECONDS) -> tuple[list[Claim], list[Skipped]]:
        """Claim, under a lease for `holder`, every approved action of the review that has not run, and
        return those claims with the actions another live executor holds. A claim left unfinished by a
        crash is claimed again once its holder is dead or its lease lapsed, under the same idempotency key.

        Refuses (ApprovalRefused, also recorded as an `approval_refused` event) whatever the signed
        decision log does not approve."""
        claims, skipped = [], []
        with self.refusals(review_id), self.ledger.transaction() as conn:
            review = self.get(review_id)
            for approval in self.approvals(review):
                index = approval["action_index"]
                key = idempotency_key(review.id, review.version, index, approval["payload_sha256"])
                execution = conn.execute("SELECT x.id, res.execution_id AS finished FROM executions x LEFT JOIN"
                                         " execution_results res ON res.execution_id = x.id"
                                         " WHERE x.idempotency_key = ?", (key,)).fetchone()
                if execution is not None and execution["finished"] is not None:
                    continue
                other = self._lease(conn, key, holder, ttl)
                if other is not None:
                    skipped.append(Skipped(review.id, index, *other))
                    continue
                execution_id = execution["id"] if execution is not None else conn.execute(
                    "INSERT INTO executions (decision_id, idempotency_key, claimed_at) VALUES (?, ?, ?) RETURNING id",
                    (approval["id"], key, now_iso())).fetchone()[0]
                action = review.draft.actions[index]
                claims.append(Claim(execution_id, review, index, action, review.payload(index), key, holder, _SEAL))
        return claims, skipped

    def verify(self, review_id: int) -> None:
        """Verify the review's decision log against this user's witness, which then anchors it (decisions
        other reviewers made in a shared ledger included). Refuses (ApprovalRefused, recorded) as `chain` does."""
        with self.refusals(review_id):
            self.chain(self.get(review_id))

    @contextmanager
    def refusals(self, review_id: int) -> Iterator[None]:
        """Around what verifies the review's decision log: a refusal is recorded as an `approval_refused`
        event (in a transaction of its own, after the block's rolled back), then raised."""
        try:
            yield
        except ApprovalRefused as exc:
            with self.ledger.transaction():
                review = self.get(review_id)
                self.record_event(EventKind.APPROVAL_REFUSED, review.registry_id, review.model_id,
                                  {"review_id": review.id, "version": review.version, "reason": str(exc)})
            raise

    def _lease(self, conn: sqlite3.Connection, key: str, holder: str, ttl: float) -> tuple[str, float] | None:
        """Take the execution lease of `key` for `holder`; if another live holder has it, (holder, seconds left)."""
        now = time.time()
        taken = conn.execute(
            "INSERT INTO execution_leases (idempotency_key, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (idempotency_key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            " WHERE execution_leases.expires_at < ? OR execution_leases.holder = excluded.holder",
            (key, holder, now + ttl, now)).rowcount
        if taken:
            return None
        other, until = conn.execute("SELECT holder, expires_at FROM execution_leases WHERE idempotency_key = ?",
                                    (key,)).fetchone()
        if not holder_alive(other):
            conn.execute("UPDATE execution_leases SET holder = ?, expires_at = ? WHERE idempotency_key = ?",
                         (holder, now + ttl, key))
            return None
        return other.rsplit(":", 1)[0], max(0.0, until - now)

    @contextmanager
    def holding(self, claim: Claim, ttl: float = LEASE_SECONDS) -> Iterator[None]:
        """Keep the claim's lease while the block runs (renewed from a second connection), then release it."""

        def renew(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE execution_leases SET expires_at = ? WHERE idempotency_key = ? AND holder = ?",
                         (time.time() + ttl, claim.idempotency_key, claim.holder))

        try:
            with self.ledger.meanwhile(ttl / 3, renew):
                yield
        finally:
            with self.ledger.transaction() as conn:
                conn.execute("DELETE FROM execution_leases WHERE idempotency_key = ? AND holder = ?",
                             (claim.idempotency_key, claim.holder))

    def check(self, claim: Claim) -> None:
        """Refuse (ApprovalRefused) a claim this queue did not hand out to its holder for the approved payload:
        what every sink asks before it acts."""
        row = self.conn.execute(
            "SELECT x.id FROM executions x JOIN execution_leases l ON l.idempotency_key = x.idempotency_key"
            " WHERE x.id = ? AND x.idempotency_key = ? AND l.holder = ?",
            (claim.execution_id, claim.idempotency_key, claim.holder)).fetchone()
        review, index = claim.review, claim.action_index
        if row is None or review.payload(index) != claim.payload or claim.idempotency_key != idempotency_key(
                review.id, review.version, index, review.payload_sha256(index)):
            raise ApprovalRefused(f"action {claim.action_index} of review {review.id} is not claimed by this "
                                  "executor for this payload; nothing runs")

    def finish(self, claim: Claim, *, ok: bool, detail: dict[str, Any]) -> None:
        """Record what running a claim did; once every approved action in force is done, the review is executed."""
        with self.ledger.transaction() as conn:
            conn.execute("INSERT INTO execution_results (execution_id, finished_at, outcome, detail) VALUES (?, ?, ?, ?)",
                         (claim.execution_id, now_iso(), "done" if ok else "failed", json.dumps(detail)))
            review = claim.review
            self.record_event(EventKind.ACTION_EXECUTED if ok else EventKind.ACTION_FAILED, review.registry_id,
                        review.model_id, {"review_id": review.id, "action": claim.action_index,
                                          "kind": claim.action.kind, "channel": claim.action.channel,
                                          "target": claim.action.target, **detail})
            try:  # the approvals in force now, as the log says
                keys = [idempotency_key(review.id, review.version, approval["action_index"], approval["payload_sha256"])
                        for approval in self.approvals(self.get(review.id))]
            except ApprovalRefused:  # decided otherwise since the claim: the status stays as the reviewer left it
                keys = []
            done = keys and conn.execute(
                "SELECT COUNT(*) FROM executions x JOIN execution_results res ON res.execution_id = x.id"
                f" AND res.outcome = 'done' WHERE x.idempotency_key IN ({', '.join('?' * len(keys))})", keys).fetchone()[0]
            if keys and done == len(keys):
                conn.execute("UPDATE reviews SET status = 'executed', updated_at = ? WHERE id = ?",
                             (now_iso(), review.id))

    def action_states(self, review: Review) -> list[str]:
        """Each planned action's own state, for people to read: `executed`, `failed`, `approved` (not run yet) or
        `not approved`, from the decisions and executions of the review's current version. What may run is
        decided by `claim` from the verified log, never by this."""
        rows = self.conn.execute(
            "SELECT d.action_index, res.outcome FROM decisions d LEFT JOIN executions x ON x.decision_id = d.id"
            " LEFT JOIN execution_results res ON res.execution_id = x.id"
            " WHERE d.review_id = ? AND d.version = ? AND d.decision = 'approve'", (review.id, review.version))
        outcomes = {row[0]: row[1] for row in rows}
        in_force = review.status in ("approved", "executed")  # a later reject, defer or edit withdrew the approvals
        return [{"done": "executed", "failed": "failed"}.get(outcomes[index], "approved" if in_force else
                                                             "not approved")
                if index in outcomes else "not approved" for index in range(len(review.draft.actions))]

    def results(self, review: Review) -> dict[int, dict[str, Any]]:
        """The latest outcome of each action of the review's current version that an executor ran, with its detail."""
        rows = self.conn.execute(
            "SELECT d.action_index, res.outcome, res.detail FROM decisions d JOIN executions x ON x.decision_id = d.id"
            " JOIN execution_results res ON res.execution_id = x.id WHERE d.review_id = ? AND d.version = ?"
            " ORDER BY res.execution_id", (review.id, review.version)).fetchall()
        return {row["action_index"]: {"outcome": row["outcome"], **json.loads(row["detail"])} for row in rows}

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes whenever a review arrives or is decided, an event is recorded, or a day begins (a deferral may
        end)."""
        return (*self.conn.execute(LATEST_CHANGE).fetchone(), self.today())

    def decided(self, statuses: tuple[str, ...]) -> list[sqlite3.Row]:
        """Reviews in `statuses`, or with any decision: id, status, draft, evidence, model (its name now), by id."""
        marks = ", ".join("?" * len(statuses))
        return self.conn.execute(
            "SELECT r.id, r.status, r.draft, r.evidence, m.name AS model"
            " FROM reviews r JOIN models m ON m.id = r.model_id"
            f" WHERE r.status IN ({marks}) OR r.id IN (SELECT review_id FROM decisions)"
            " ORDER BY r.id", statuses).fetchall()

    def notes(self) -> list[sqlite3.Row]:
        """Every decision a reviewer gave a reason for: id, review_id, decision, reason, by id."""
        return self.conn.execute(
            "SELECT d.id, d.review_id, d.decision, d.reason FROM decisions d WHERE d.reason IS NOT NULL"
            " AND d.reason != '' ORDER BY d.id").fetchall()

    def record_event(self, kind: EventKind, registry_id: int, model_id: int, detail: dict[str, Any]) -> None:
        """A ledger event of the review's life (no scan, no observation: a decision or an execution)."""
        self.ledger.add_events([NewEvent(kind, registry_id, model_id, None, None, None, detail)])


def shown_status(review: Review, states: list[str]) -> str:
    """The review's status as people should read it: an executed review some of whose actions did not run (one
    was not approved, or failed) is `partly executed`."""
    if review.status == "executed" and any(state != "executed" for state in states):
        return "partly executed"
    return review.status


def edit_summary(before: Draft, after: Draft, limit: int = 2000) -> str:
    """The lines a reviewer removed from and added to a draft, as `-` and `+` lines, at most `limit` characters."""
    lines = [f"- title: {before.title}", f"+ title: {after.title}"] if before.title != after.title else []
    lines += [line for line in difflib.unified_diff(before.body.splitlines(), after.body.splitlines(), lineterm="", n=0)
              if line[:1] in "+-" and not line.startswith(("---", "+++")) and line[1:].strip()]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def deferral_reason(until: date | None, reason: str | None) -> str | None:
    """What a deferral records as its (signed) reason: `until 2027-01-31; the owner is on leave`. The queue reads
    the date back from it (`_DEFERRALS`): on that date the review is pending again."""
    return "; ".join(filter(None, [until and f"until {until.isoformat()}", reason and reason.strip()])) or None


# Each review's latest deferral, and the date it ends, read back from its signed reason (`deferral_reason`).
# What the console polls every two seconds (`fingerprint`): read from indexes (reviews_by_update), not the reviews.
LATEST_CHANGE = "SELECT COUNT(*), MAX(updated_at), (SELECT MAX(id) FROM events) FROM reviews"
_DATED = {"sqlite": "d.reason GLOB 'until [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'",
          "postgres": "d.reason ~ '^until [0-9]{4}-[0-9]{2}-[0-9]{2}'"}
_DEFERRALS = (
    "(SELECT d.review_id, COALESCE(d.reason, '') AS reason,"
    " CASE WHEN {dated} THEN substr(d.reason, 7, 10) END"
    " AS until FROM decisions d WHERE d.id IN (SELECT MAX(id) FROM decisions WHERE decision = 'defer'"
    " GROUP BY review_id))"
)
# The critic's errors and findings of a review, counted without decoding it in Python.
_FINDINGS = {
    "sqlite": "(SELECT COUNT(*) FROM json_each(r.findings) f WHERE json_extract(f.value, '$.severity') = 'error')"
              " AS errors, json_array_length(r.findings) AS findings",
    "postgres": "(SELECT COUNT(*) FROM json_array_elements(CAST(r.findings AS json)) f"
                " WHERE f ->> 'severity' = 'error') AS errors, json_array_length(CAST(r.findings AS json)) AS findings",
}
# A review's status as people see it: a deferral ends on its date (`:today`, by the queue's clock) and the review
# is pending again, its earlier deferral kept beside it. Deferred and pending reviews may be decided alike, so
# this changes what is shown and listed, never what may be approved (that is the signed decision log's).
_STATUS = "CASE WHEN r.status = 'deferred' AND u.until <= :today THEN 'pending' ELSE r.status END"
_DEFERRED = {dialect: f"LEFT JOIN {_DEFERRALS.format(dated=dated)} u ON u.review_id = r.id"
             for dialect, dated in _DATED.items()}
_SELECT = {dialect: (
    f"SELECT r.*, {_STATUS} AS shown, u.reason AS deferral, u.until AS deferred_until, g.name AS registry,"
    f" m.name AS model, e.kind AS event FROM reviews r {deferred}"
    " JOIN registries g ON g.id = r.registry_id JOIN models m ON m.id = r.model_id JOIN events e ON e.id = r.event_id"
) for dialect, deferred in _DEFERRED.items()}


def _review(row: sqlite3.Row) -> Review:
    return Review(
        id=row["id"], thread_id=row["thread_id"], interrupt_id=row["interrupt_id"], registry=row["registry"],
        registry_id=row["registry_id"], model=row["model"], model_id=row["model_id"], event_id=row["event_id"],
        event=row["event"], recipient=row["recipient"], priority=row["priority"], status=row["shown"],
        version=row["version"], draft=Draft.from_dict(json.loads(row["draft"])),
        evidence=Dossier.from_dict(json.loads(row["evidence"])),
        findings=tuple(Finding(**finding) for finding in json.loads(row["findings"])),
        created_at=row["created_at"], updated_at=row["updated_at"], deferral=row["deferral"],
        deferred_until=row["deferred_until"],
    )
