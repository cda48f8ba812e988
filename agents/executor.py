"""The executor: the one place that acts, and only on an approval bound to the exact payload.

It claims the approved actions of one review (`ReviewQueue.claim` verifies each approval's
signature, version and payload hash, and makes the claim atomic and once), runs each through
its channel's publisher with the claim's idempotency key, and records the result as a ledger
event. Nothing here writes a decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from weightkeeper.ledger import Ledger
from weightkeeper.review import ReviewQueue, approval_key


class Publisher(Protocol):
    channel: str

    def publish(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]: ...


def publishers(home: Path) -> dict[str, Publisher]:
    from tools.publish.outbox import OutboxPublisher

    return {"outbox": OutboxPublisher(home / "outbox")}


def execute(ledger: Ledger, home: Path, review_id: int, *,
            channels: dict[str, Publisher] | None = None) -> list[dict[str, Any]]:
    """Run the review's approved actions that have not run; return what each did."""
    queue = ReviewQueue(ledger)
    channels = publishers(home) if channels is None else channels
    done = []
    for claim in queue.claim(review_id, approval_key(home)):
        publisher = channels.get(claim.action.channel)
        try:
            if claim.action.kind != "publish" or publisher is None:
                raise LookupError(f"no publisher for a {claim.action.kind} action on channel "
                                  f"{claim.action.channel!r} in this weightkeeper")
            detail = publisher.publish(claim.payload, claim.idempotency_key)
        except Exception as exc:  # the failure is recorded as a ledger event; the other actions still run
            detail = {"error": f"{type(exc).__name__}: {exc}"}
            queue.finish(claim, ok=False, detail=detail)
        else:
            queue.finish(claim, ok=True, detail=detail)
        done.append({"review_id": review_id, "action": claim.action_index, "channel": claim.action.channel,
                     "target": claim.action.target, **detail})
    return done
