"""Human decisions on the review queue, signed with the reviewer's own key. Only the faces import this.

A `HumanReviewer` is created by a face once a person has decided: the CLI after checking for a terminal and
reading a typed confirmation, the TUI from its review screen, the demo's scripted reviewer in its own home
(recorded as channel `demo`). Each decision is signed and chained to the review's previous one, once that
chain verifies against the reviewer's witness (weightkeeper/review.py says what is checked); once recorded,
the witness anchors it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from weightkeeper.domain import EventKind
from weightkeeper.ledger import decisions, now_iso
from weightkeeper.proposals import Draft
from weightkeeper.review import (CHANNELS, Review, ReviewError, ReviewQueue, decision_fields, edit_summary,
                                 reviewer_keys)
from weightkeeper.signing import Signer

# The statuses each decision may be taken from, and how the refusal names the decision.
DECIDABLE = {"approve": ("pending", "deferred"), "reject": ("pending", "deferred", "approved"),
             "defer": ("pending", "deferred", "approved"), "edit": ("pending", "deferred", "approved")}
DONE = {"approve": "approved", "reject": "rejected", "defer": "deferred", "edit": "edited"}


def why_not(review: Review, decision: str, overrides: tuple[str, ...] = ()) -> str | None:
    """Why `decision` cannot be taken on the review as it stands, or None: what a face checks before it asks a
    person to confirm, and what every decision checks again when it is recorded."""
    if review.status not in DECIDABLE[decision]:
        return (f"review {review.id} is {review.status}: only a {' or '.join(DECIDABLE[decision])} proposal can be "
                f"{DONE[decision]}")
    if decision == "approve":
        errors = review.errors()
        missing, unknown = sorted(set(errors) - set(overrides)), sorted(set(overrides) - set(errors))
        if missing:
            return (f"review {review.id} has critic errors not overridden: {', '.join(missing)}; edit the draft, or "
                    "override each by id (--override ID) after reading it")
        if unknown:
            return f"review {review.id} has no critic error {', '.join(unknown)} to override"
    return None


@dataclass(frozen=True)
class HumanReviewer:
    """A person deciding through a human channel. Only the faces create one: the CLI after checking for a
    terminal and reading a typed confirmation, the TUI from its review screen. No agent holds one."""

    signer: Signer
    channel: str  # cli, tui, demo

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ReviewError(f"unknown review channel {self.channel!r}; one of {', '.join(CHANNELS)}")

    @property
    def name(self) -> str:
        return self.signer.name

    def approve(self, queue: ReviewQueue, review_id: int, *, version: int, payload_sha256s: dict[int, str],
                overrides: tuple[str, ...] = ()) -> None:
        """Approve the actions whose payload hashes the reviewer was shown, of the version they saw. Each of
        the critic's errors must be in `overrides` (by id): the override is signed with the approval."""
        with self._deciding(queue, review_id):
            review = self._current(queue, review_id, version, "approve", overrides)
            for index, shown in payload_sha256s.items():
                if shown != review.payload_sha256(index):
                    raise ReviewError(f"action {index} of review {review_id} changed after it was shown; "
                                      "show it again before approving")
                self._decide(queue, review, "approve", index, shown, overrides=sorted(overrides))
            decisions.set_status(queue.conn, review_id, "approved")
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
        with self._deciding(queue, review_id):
            review = self._current(queue, review_id, version, "edit")
            draft = Draft.from_dict({**review.draft.to_dict(), "title": title, "body": body})
            changes = edit_summary(review.draft, draft)
            self._decide(queue, review, "edit", None, None, "\n\n".join(filter(None, [note, changes])) or None)
            decisions.replace_draft(queue.conn, review_id, json.dumps(draft.to_dict()))
            queue.record_event(EventKind.REVIEW_EDITED, review.registry_id, review.model_id,
                         {"review_id": review_id, "version": version + 1, "reviewer": self.name})
            return version + 1

    def _close(self, queue: ReviewQueue, review_id: int, version: int, decision: str, status: str,
               reason: str | None) -> None:
        with self._deciding(queue, review_id):
            review = self._current(queue, review_id, version, decision)
            self._decide(queue, review, decision, None, None, reason)
            decisions.set_status(queue.conn, review_id, status)
            kind = EventKind.REVIEW_REJECTED if decision == "reject" else EventKind.REVIEW_DEFERRED
            queue.record_event(kind, review.registry_id, review.model_id,
                         {"review_id": review_id, "version": version, "reviewer": self.name, "reason": reason})

    @contextmanager
    def _deciding(self, queue: ReviewQueue, review_id: int) -> Iterator[None]:
        """Decide in one transaction. A decision log this reviewer's witness refuses is recorded as
        `approval_refused`; a decision recorded is then anchored in the witness."""
        with queue.refusals(review_id), queue.ledger.transaction():
            yield
        queue.chain(queue.get(review_id), self.signer.witness)

    def _current(self, queue: ReviewQueue, review_id: int, version: int, decision: str,
                 overrides: tuple[str, ...] = ()) -> Review:
        review = queue.get(review_id)
        if review.version != version:
            raise ReviewError(f"review {review_id} is at version {review.version}, not the {version} you saw; "
                              "show it again")
        refusal = why_not(review, decision, overrides)
        if refusal is not None:
            raise ReviewError(refusal)
        return review

    def _decide(self, queue: ReviewQueue, review: Review, decision: str, action_index: int | None,
                payload_sha256: str | None, reason: str | None = None, *, overrides: list[str] | None = None) -> None:
        """Sign and record one decision, chained to the review's previous one."""
        if reviewer_keys(queue.conn).get(self.name) != self.signer.public_key:
            raise ReviewError(f"{self.name!r} is not a reviewer of this ledger with this key; a reviewer adds "
                              f"them with `weightkeeper reviewer add {self.name}`")
        # Verified before it is signed on; anchored once the transaction is committed (in `_deciding`).
        previous = queue.chain(review, self.signer.witness, anchor=False)[-1:]
        row = {"review_id": review.id, "version": review.version, "decision": decision,
               "action_index": action_index, "payload_sha256": payload_sha256, "reviewer": self.name,
               "channel": self.channel, "reason": reason, "overrides": json.dumps(overrides or []),
               "decided_at": now_iso(), "previous": previous[0]["signature"] if previous else ""}
        decisions.record_decision(queue.conn, {**row, "signature": self.signer.sign(decision_fields(row))})
