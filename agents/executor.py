"""The executor: the one place that acts, and only on an approval bound to the exact payload.

It claims the approved actions of one review (`ReviewQueue.claim` derives them from the signed,
chained decision log alone, and leases each to this executor: another one running it is skipped),
runs each with the claim's idempotency key (a publish through its channel's publisher, an archive through the
archive store: tools/archive/archiving.py), and records the result as a ledger event. An archive
that stopped for a reason that may pass is left claimed but unfinished, so `weightkeeper act`
resumes it. Nothing here writes or signs a decision: this package imports no signing code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from weightkeeper import config
from weightkeeper.config import ProposalSettings
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.store import lease_holder
from weightkeeper.review import Claim, ReviewQueue
from weightkeeper.secrets import scrub
from weightkeeper.witness import Witness


class Publisher(Protocol):
    channel: str

    def publish(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]: ...


def publishers(home: Path, settings: ProposalSettings) -> dict[str, Publisher]:
    """Every channel an approved action may run through, not only the one new proposals are planned for: an
    action approved before the config changed channel still runs where it was approved to go. The outbox
    is always there; the webhook needs its URL. No token is read here: a publisher reads its own when it
    publishes."""
    from tools.publish.github_issue import GitHubIssuePublisher
    from tools.publish.hf_discussion import HubDiscussionPublisher
    from tools.publish.outbox import OutboxPublisher
    from tools.publish.webhook import WebhookPublisher

    channels: list[Publisher] = [
        OutboxPublisher(home / "outbox"),
        HubDiscussionPublisher(settings.hf_endpoint, token_env=settings.hf_token_env),
        GitHubIssuePublisher(settings.github_api, token_env=settings.github_token_env, labels=settings.github_labels),
    ]
    if settings.webhook_url is not None:
        channels.append(WebhookPublisher(settings.webhook_url, token_env=settings.webhook_token_env))
    return {publisher.channel: publisher for publisher in channels}


def execute(ledger: Ledger, home: Path, review_id: int, *, settings: ProposalSettings | None = None,
            channels: dict[str, Publisher] | None = None, witness: Witness | None = None) -> list[dict[str, Any]]:
    """Run the review's approved actions that have not run; return what each did. The channels are built
    from `settings`, by default the home's [proposals]; the decision log is verified against `witness`, by
    default this user's. A failure's message may quote a server that echoed a token: it is scrubbed before it
    is recorded or returned (to be printed, or checkpointed by the graph)."""
    queue = ReviewQueue(ledger, witness)
    if channels is None:
        channels = publishers(home, config.load(home).proposals if settings is None else settings)
    from tools.archive.archiving import Resumable

    claims, skipped = queue.claim(review_id, lease_holder())
    done: list[dict[str, Any]] = [
        {"review_id": review_id, "action": held.action_index, "skipped": f"running in {held.holder} (host:pid), "
         f"whose lease lapses within {held.seconds_left:.0f} s if it died"} for held in skipped]
    for claim in claims:
        publisher = channels.get(claim.action.channel)
        with queue.holding(claim):  # released only once the outcome is recorded
            try:
                detail = run_claim(ledger, home, queue, claim, publisher)
            except Resumable as exc:  # claimed, not finished: the next `weightkeeper act` runs it again
                detail = {"error": scrub(str(exc)), "resumable": True}
            except Exception as exc:  # the failure is recorded as a ledger event; the other actions still run
                detail = {"error": scrub(f"{type(exc).__name__}: {exc}")}
                queue.finish(claim, ok=False, detail=detail)
            else:
                queue.finish(claim, ok=True, detail=detail)
        done.append({"review_id": review_id, "action": claim.action_index, "channel": claim.action.channel,
                     "target": claim.action.target, **detail})
    return done


def run_claim(ledger: Ledger, home: Path, queue: ReviewQueue, claim: Claim,
              publisher: Publisher | None) -> dict[str, Any]:
    """Run one claim through its sink, once the queue confirmed it handed out this very claim."""
    from tools.archive.archiving import archive

    queue.check(claim)
    if claim.action.kind == "archive":
        return archive(ledger, config.load(home), claim)
    if claim.action.kind != "publish" or publisher is None:
        raise LookupError(f"no publisher for a {claim.action.kind} action on channel {claim.action.channel!r} in "
                          "this weightkeeper; a channel's settings (webhook_url, say) go in [proposals] of "
                          "weightkeeper.toml")
    return publisher.publish(claim.payload, claim.idempotency_key)
