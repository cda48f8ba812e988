"""The review queue, the decisions only a human channel writes, and the executor's claim on an approval.

The approval invariant lives here:

- A decision is written only through a `HumanReviewer`, which the faces (the CLI on a TTY after
  typed confirmation, the TUI) create. An approval names the reviewer, the time and the sha256 of
  the exact action payload (target, text, parameters) of the proposal's current version, and is
  signed with the home's approval key, so a row written any other way (a forged INSERT) is refused.
- An edit raises the proposal's version: approvals of an earlier version no longer match.
- The executor claims an approval by inserting its execution row: UNIQUE makes the claim atomic and
  once. The claim carries an idempotency key the publishers honour, so finishing a claim after a
  crash never publishes twice.

Decisions, executions and their results are append-only tables, and every step is a ledger event.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightkeeper.domain import EventKind, canonical_json
from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger, now_iso
from weightkeeper.ledger.store import NewEvent
from weightkeeper.proposals import Draft, Evidence, Finding, PlannedAction

KEY_FILE = "approval.key"
STATUSES = ("pending", "approved", "rejected", "deferred", "executed")


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
    evidence: Evidence
    findings: tuple[Finding, ...]
    created_at: str
    updated_at: str

    def payload_sha256(self, action_index: int) -> str:
        return self.draft.actions[action_index].payload_sha256(self.draft.title, self.draft.body)

    def summary(self) -> dict[str, Any]:
        """What `review list --json` shows of it."""
        return {"id": self.id, "status": self.status, "model": self.model, "registry": self.registry,
                "event": self.event, "priority": round(self.priority, 3), "recipient": self.recipient,
                "title": self.draft.title, "drafter": self.draft.drafter, "version": self.version,
                "errors": sum(finding.severity == "error" for finding in self.findings)}


@dataclass(frozen=True)
class Claim:
    """An approved action the executor holds: run it with `idempotency_key`, then `finish` it."""

    execution_id: int
    review: Review
    action_index: int
    action: PlannedAction
    payload: dict[str, Any]
    idempotency_key: str


def approval_key(home: Path, *, create: bool = False) -> bytes | None:
    """The home's approval key: created (mode 0600) by the first human decision, read by the executor."""
    path = home / KEY_FILE
    if not path.exists():
        if not create:
            return None
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def _signature(key: bytes, fields: list[Any]) -> str:
    return hmac.new(key, canonical_json(fields), hashlib.sha256).hexdigest()


def _decision_fields(row: sqlite3.Row | dict[str, Any]) -> list[Any]:
    return [row["review_id"], row["version"], row["decision"], row["action_index"], row["payload_sha256"],
            row["reviewer"], row["channel"], row["reason"], row["decided_at"]]


class ReviewQueue:
    """The queue of proposals waiting for a human, in the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger, self.conn = ledger, ledger.conn

    def enqueue(self, *, thread_id: str, interrupt_id: str, evidence: Evidence, draft: Draft,
                findings: list[Finding], priority: float, recipient: str,
                members: tuple[tuple[int, float], ...] = ()) -> int:
        """Put a proposal in front of reviewers; the same (thread, interrupt) twice is one row. `members` are
        the (event id, similarity) of near-duplicate models the proposal covers too: they get none of their own."""
        with self.ledger.transaction() as conn:
            row = conn.execute("SELECT id FROM reviews WHERE thread_id = ? AND interrupt_id = ?",
                               (thread_id, interrupt_id)).fetchone()
            if row is not None:
                return row["id"]
            registry_id = conn.execute("SELECT registry_id FROM models WHERE id = ?", (evidence.model_id,)).fetchone()[0]
            now = now_iso()
            review_id = conn.execute(
                "INSERT INTO reviews (thread_id, interrupt_id, registry_id, model_id, event_id, recipient, priority,"
                " status, draft, evidence, findings, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                (thread_id, interrupt_id, registry_id, evidence.model_id, evidence.event_id, recipient, priority,
                 json.dumps(draft.to_dict()), json.dumps(evidence.to_dict()),
                 json.dumps([finding.to_dict() for finding in findings]), now, now),
            ).lastrowid
            conn.executemany(
                "INSERT INTO review_members (event_id, review_id, model_id, similarity)"
                " SELECT id, ?, model_id, ? FROM events WHERE id = ?",
                [(review_id, similarity, event_id) for event_id, similarity in members])
            self.record_event(EventKind.PROPOSAL_DRAFTED, registry_id, evidence.model_id,
                        {"review_id": review_id, "event_id": evidence.event_id, "drafter": draft.drafter,
                         "prompt": draft.prompt, "errors": sum(f.severity == "error" for f in findings)})
            return review_id

    def get(self, review_id: int) -> Review:
        row = self.conn.execute(f"{_SELECT} WHERE r.id = ?", (review_id,)).fetchone()
        if row is None:
            raise ReviewError(f"there is no review {review_id}; `weightkeeper review list` shows the queue")
        return _review(row)

    def list(self, status: str | None = None) -> list[Review]:
        where, params = ("WHERE r.status = ?", (status,)) if status else ("", ())
        return [_review(row) for row in self.conn.execute(
            f"{_SELECT} {where} ORDER BY r.status != 'pending', r.priority DESC, r.id", params)]

    def open_for_model(self, model_id: int) -> int | None:
        """The open proposal (pending, deferred, or approved and not yet executed) about the model, or covering
        it as a near-duplicate of its own model, if any."""
        row = self.conn.execute(
            "SELECT id FROM reviews WHERE status IN ('pending', 'deferred', 'approved') AND (model_id = ?"
            " OR id IN (SELECT review_id FROM review_members WHERE model_id = ?)) ORDER BY id LIMIT 1",
            (model_id, model_id)).fetchone()
        return row and row["id"]

    def decisions(self, review_id: int) -> list[dict[str, Any]]:
        return [dict(row) for row in self.conn.execute(
            "SELECT * FROM decisions WHERE review_id = ? ORDER BY id", (review_id,))]

    # -- the executor's side ----------------------------------------------------------------

    def claim(self, review_id: int, key: bytes | None) -> list[Claim]:
        """Claim every approved, unclaimed action of the review's current version, and return the claims
        to run, with those claimed before but never finished (a crash between claim and publish).

        Refuses (ApprovalRefused) an approval whose signature, version or payload hash does not match."""
        with self.ledger.transaction() as conn:
            review = self.get(review_id)
            if review.status == "executed":
                return []
            if review.status != "approved":
                raise ApprovalRefused(f"review {review_id} is {review.status}, not approved: nothing runs")
            if key is None:
                raise ApprovalRefused("this home has no approval key, so no approval in it can be genuine")
            approvals = conn.execute(
                "SELECT d.*, x.id AS execution_id, x.idempotency_key, res.execution_id AS finished FROM decisions d"
                " LEFT JOIN executions x ON x.decision_id = d.id"
                " LEFT JOIN execution_results res ON res.execution_id = x.id"
                " WHERE d.review_id = ? AND d.decision = 'approve' AND d.version = ? ORDER BY d.id",
                (review_id, review.version)).fetchall()
            claims = []
            for approval in approvals:
                self._verify(review, approval, key)
                if approval["finished"] is not None:
                    continue
                index = approval["action_index"]
                idempotency_key = approval["idempotency_key"] or hashlib.sha256(
                    f"{approval['id']}:{approval['payload_sha256']}".encode()).hexdigest()
                execution_id = approval["execution_id"] or conn.execute(
                    "INSERT INTO executions (decision_id, idempotency_key, claimed_at) VALUES (?, ?, ?)",
                    (approval["id"], idempotency_key, now_iso())).lastrowid
                action = review.draft.actions[index]
                claims.append(Claim(execution_id, review, index, action,
                                    action.payload(review.draft.title, review.draft.body), idempotency_key))
            return claims

    def _verify(self, review: Review, approval: sqlite3.Row, key: bytes) -> None:
        if not hmac.compare_digest(approval["signature"], _signature(key, _decision_fields(approval))):
            raise ApprovalRefused(f"approval {approval['id']} of review {review.id} was not written by a human "
                                  "review channel (its signature does not match); nothing runs")
        index = approval["action_index"]
        if index is None or not 0 <= index < len(review.draft.actions):
            raise ApprovalRefused(f"approval {approval['id']} names no action of review {review.id}")
        if approval["payload_sha256"] != review.payload_sha256(index):
            raise ApprovalRefused(f"approval {approval['id']} was for another payload than action {index} of "
                                  f"review {review.id} now holds; it needs a new approval")

    def finish(self, claim: Claim, *, ok: bool, detail: dict[str, Any]) -> None:
        """Record what running a claim did; once every approved action is done, the review is executed."""
        with self.ledger.transaction() as conn:
            conn.execute("INSERT INTO execution_results (execution_id, finished_at, outcome, detail) VALUES (?, ?, ?, ?)",
                         (claim.execution_id, now_iso(), "done" if ok else "failed", json.dumps(detail)))
            review = claim.review
            self.record_event(EventKind.ACTION_EXECUTED if ok else EventKind.ACTION_FAILED, review.registry_id,
                        review.model_id, {"review_id": review.id, "action": claim.action_index,
                                          "kind": claim.action.kind, "channel": claim.action.channel,
                                          "target": claim.action.target, **detail})
            unfinished = conn.execute(
                "SELECT COUNT(*) FROM decisions d LEFT JOIN executions x ON x.decision_id = d.id"
                " LEFT JOIN execution_results res ON res.execution_id = x.id AND res.outcome = 'done'"
                " WHERE d.review_id = ? AND d.version = ? AND d.decision = 'approve' AND res.execution_id IS NULL",
                (review.id, review.version)).fetchone()[0]
            if not unfinished:
                conn.execute("UPDATE reviews SET status = 'executed', updated_at = ? WHERE id = ?",
                             (now_iso(), review.id))

    def record_event(self, kind: EventKind, registry_id: int, model_id: int, detail: dict[str, Any]) -> None:
        """A ledger event of the review's life (no scan, no observation: a decision or an execution)."""
        self.ledger.add_events([NewEvent(kind, registry_id, model_id, None, None, None, detail)])


@dataclass(frozen=True)
class HumanReviewer:
    """A person deciding through a human channel. Only the faces create one: the CLI after checking for a
    terminal and reading a typed confirmation, the TUI from its review screen. No agent holds one."""

    name: str
    channel: str  # cli, tui
    key: bytes

    def approve(self, queue: ReviewQueue, review_id: int, *, version: int, payload_sha256s: dict[int, str]) -> None:
        """Approve the actions whose payload hashes the reviewer was shown, of the version they saw."""
        with queue.ledger.transaction():
            review = self._current(queue, review_id, version, allowed=("pending", "deferred"))
            for index, shown in payload_sha256s.items():
                if shown != review.payload_sha256(index):
                    raise ReviewError(f"action {index} of review {review_id} changed after it was shown; "
                                      "show it again before approving")
                self._decide(queue, review, "approve", index, shown)
            queue.conn.execute("UPDATE reviews SET status = 'approved', updated_at = ? WHERE id = ?",
                               (now_iso(), review_id))
            queue.record_event(EventKind.REVIEW_APPROVED, review.registry_id, review.model_id,
                         {"review_id": review_id, "version": version, "reviewer": self.name,
                          "actions": sorted(payload_sha256s)})

    def reject(self, queue: ReviewQueue, review_id: int, *, version: int, reason: str) -> None:
        self._close(queue, review_id, version, "reject", "rejected", reason)

    def defer(self, queue: ReviewQueue, review_id: int, *, version: int, reason: str | None = None) -> None:
        self._close(queue, review_id, version, "defer", "deferred", reason)

    def edit(self, queue: ReviewQueue, review_id: int, *, version: int, title: str, body: str,
             note: str | None = None) -> int:
        """Replace the proposal's text; it goes back to pending as a new version (any approval is void). The
        decision keeps the reviewer's note and the lines changed: the guidance the advocate learns from."""
        with queue.ledger.transaction():
            review = self._current(queue, review_id, version, allowed=("pending", "deferred", "approved"))
            draft = Draft.from_dict({**review.draft.to_dict(), "title": title, "body": body})
            changes = edit_summary(review.draft, draft)
            self._decide(queue, review, "edit", None, None, "\n\n".join(filter(None, [note, changes])) or None)
            queue.conn.execute("UPDATE reviews SET draft = ?, version = version + 1, status = 'pending', updated_at = ?"
                               " WHERE id = ?", (json.dumps(draft.to_dict()), now_iso(), review_id))
            queue.record_event(EventKind.REVIEW_EDITED, review.registry_id, review.model_id,
                         {"review_id": review_id, "version": version + 1, "reviewer": self.name})
            return version + 1

    def _close(self, queue: ReviewQueue, review_id: int, version: int, decision: str, status: str,
               reason: str | None) -> None:
        with queue.ledger.transaction():
            review = self._current(queue, review_id, version, allowed=("pending", "deferred", "approved"))
            self._decide(queue, review, decision, None, None, reason)
            queue.conn.execute("UPDATE reviews SET status = ?, updated_at = ? WHERE id = ?",
                               (status, now_iso(), review_id))
            kind = EventKind.REVIEW_REJECTED if decision == "reject" else EventKind.REVIEW_DEFERRED
            queue.record_event(kind, review.registry_id, review.model_id,
                         {"review_id": review_id, "version": version, "reviewer": self.name, "reason": reason})

    def _current(self, queue: ReviewQueue, review_id: int, version: int, *, allowed: tuple[str, ...]) -> Review:
        review = queue.get(review_id)
        if review.version != version:
            raise ReviewError(f"review {review_id} is at version {review.version}, not the {version} you saw; "
                              "show it again")
        if review.status not in allowed:
            raise ReviewError(f"review {review_id} is {review.status}; it can no longer be decided that way")
        return review

    def _decide(self, queue: ReviewQueue, review: Review, decision: str, action_index: int | None,
                payload_sha256: str | None, reason: str | None = None) -> None:
        row = {"review_id": review.id, "version": review.version, "decision": decision,
               "action_index": action_index, "payload_sha256": payload_sha256, "reviewer": self.name,
               "channel": self.channel, "reason": reason, "decided_at": now_iso()}
        queue.conn.execute(
            "INSERT INTO decisions (review_id, version, decision, action_index, payload_sha256, reviewer, channel,"
            " reason, decided_at, signature) VALUES (:review_id, :version, :decision, :action_index, :payload_sha256,"
            " :reviewer, :channel, :reason, :decided_at, :signature)",
            {**row, "signature": _signature(self.key, _decision_fields(row))})


def edit_summary(before: Draft, after: Draft, limit: int = 2000) -> str:
    """The lines a reviewer removed from and added to a draft, as `-` and `+` lines, at most `limit` characters."""
    lines = [f"- title: {before.title}", f"+ title: {after.title}"] if before.title != after.title else []
    lines += [line for line in difflib.unified_diff(before.body.splitlines(), after.body.splitlines(), lineterm="", n=0)
              if line[:1] in "+-" and not line.startswith(("---", "+++")) and line[1:].strip()]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_SELECT = (
    "SELECT r.*, g.name AS registry, m.name AS model, e.kind AS event FROM reviews r"
    " JOIN registries g ON g.id = r.registry_id JOIN models m ON m.id = r.model_id JOIN events e ON e.id = r.event_id"
)


def _review(row: sqlite3.Row) -> Review:
    return Review(
        id=row["id"], thread_id=row["thread_id"], interrupt_id=row["interrupt_id"], registry=row["registry"],
        registry_id=row["registry_id"], model=row["model"], model_id=row["model_id"], event_id=row["event_id"],
        event=row["event"], recipient=row["recipient"], priority=row["priority"], status=row["status"],
        version=row["version"], draft=Draft.from_dict(json.loads(row["draft"])),
        evidence=Evidence.from_dict(json.loads(row["evidence"])),
        findings=tuple(Finding(**finding) for finding in json.loads(row["findings"])),
        created_at=row["created_at"], updated_at=row["updated_at"],
    )
