"""`propose`, `review`, `act` and `contact`: the CLI side of the proposal pipeline.

`review approve|reject|defer|edit` is a human review channel: it needs a terminal, a reviewer
name, and a typed confirmation that repeats what is decided (for an approval, the target and a
code made of the payload hashes shown). Without a terminal it refuses; nothing here can be
scripted into an approval.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import json
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from weightkeeper import config
from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger, now_iso
from weightkeeper.review import ApprovalRefused, Review, ReviewQueue

if TYPE_CHECKING:
    from weightkeeper.deciding import HumanReviewer

REVIEWER_ENV = "WEIGHTKEEPER_REVIEWER"


@contextmanager
def _opened(home: Path) -> Iterator[tuple[config.Config, Ledger]]:
    settings = config.load(home)
    with Ledger(settings.ledger_path) as ledger:
        yield settings, ledger


def propose(home: Path, *, model: str | None, limit: int | None, log: Callable[[str], object] = print) -> int:
    from agents.graph import Drafter, offline_drafter
    from agents.graph import propose as run
    from tools.memory import open_memory

    with _opened(home) as (settings, ledger):
        drafter: Drafter = offline_drafter
        llm_critic = None
        if settings.llm is not None:
            from agents.llm_critic import LLMCritic
            from agents.llm_drafter import LLMDrafter

            drafter = LLMDrafter(settings.llm)
            llm_critic = LLMCritic(settings.llm)  # beside the deterministic critic, never instead of it
        memory = open_memory(settings.memory, settings.memory_path())
        outcomes = asyncio.run(run(ledger, home, settings.proposals, model=model, limit=limit, drafter=drafter,
                                   llm_critic=llm_critic, memory=memory))
    for outcome in outcomes:
        log(f"{outcome.status:8} {outcome.model} (event {outcome.event_id}): {outcome.detail}")
    queued = sum(outcome.status == "queued" for outcome in outcomes)
    log(f"{queued} proposal{'s' if queued != 1 else ''} queued for review; see `weightkeeper review list`")
    return queued


def review_list(home: Path, *, status: str | None, as_json: bool) -> None:
    with _opened(home) as (_, ledger):
        reviews = ReviewQueue(ledger).list(status)
    rows = [review.summary() for review in reviews]
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("the review queue is empty; `weightkeeper propose` drafts proposals for recorded events")
    else:
        from weightkeeper.cli.render import print_table

        print_table([{key: row[key] for key in ("id", "status", "priority", "event", "model", "recipient", "drafter")}
                     for row in rows])


def review_show(home: Path, review_id: int) -> None:
    with _opened(home) as (_, ledger):
        review = ReviewQueue(ledger).get(review_id)
    print(render_review(review))


def render_review(review: Review) -> str:
    """A review as a person reads it before deciding: the proposal, its actions with their payload
    hashes, the critic's findings and the evidence it cites."""
    lines = [f"Review {review.id} · {review.status} · version {review.version} · priority {review.priority:.2f}",
             f"{review.event} of {review.model} ({review.registry}) · to {review.recipient}",
             f"Drafted by {review.draft.drafter} ({review.draft.prompt})"
             + (f" · recalled {', '.join(review.draft.precedents)}" if review.draft.precedents else ""),
             "", f"# {review.draft.title}", "",
             review.draft.body, "", "Planned actions (an approval binds to these exact payloads):"]
    for index, action in enumerate(review.draft.actions):
        lines.append(f"  [{index}] {action.kind} via {action.channel} to {action.target}  "
                     f"payload sha256 {review.payload_sha256(index)}")
    lines += ["", "Critic findings (an approval overrides each error by its id: --override ID):"] + (
        [f"  {f.severity} {f.id}: {f.message}" for f in review.findings] or ["  none"])
    lines += ["", "Evidence:"] + [f"  {item.id} [{item.kind}] {item.statement} ({item.source})"
                                  for item in review.evidence.items]
    return "\n".join(lines)


def decide(home: Path, args: argparse.Namespace, *, ask: Callable[[str], str] = input) -> int:
    """approve | reject | defer | edit, through the terminal. Returns the exit code."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise WeightkeeperError(f"`review {args.decision}` needs a terminal: decisions are typed by a person, never "
                                "scripted. Run it in an interactive shell, or use `weightkeeper review` in the TUI")
    name = args.reviewer or os.environ.get(REVIEWER_ENV)
    if not name:
        raise WeightkeeperError(f"say who decides: --reviewer NAME, or set {REVIEWER_ENV}")
    with _opened(home) as (settings, ledger):
        queue = ReviewQueue(ledger)
        review = queue.get(args.id)
        print(render_review(review))
        print()
        hashes = {index: review.payload_sha256(index) for index in range(len(review.draft.actions))}
        code = hashlib.sha256("".join(hashes.values()).encode()).hexdigest()[:8]
        targets = ", ".join(f"{action.channel} to {action.target}" for action in review.draft.actions)
        phrase = {"approve": f"approve {review.id} {code}", "reject": f"reject {review.id}",
                  "defer": f"defer {review.id}", "edit": f"edit {review.id}"}[args.decision]
        what = (f"approve publishing ({targets}; payloads {code})" if args.decision == "approve"
                else f"{args.decision} review {review.id}")
        if ask(f"Type `{phrase}` to {what}: ").strip() != phrase:
            print("not confirmed; nothing was recorded")
            return 1
        from weightkeeper.deciding import HumanReviewer
        from weightkeeper.signing import signer

        reviewer = HumanReviewer(signer(name, home), "cli")
        if args.decision == "approve":
            executed = approve_and_run(ledger, home, settings, reviewer, review, hashes, tuple(args.override))
        elif args.decision == "reject":
            reject(ledger, reviewer, review, args.reason, recipient_refused=args.recipient_refused)
        elif args.decision == "defer":
            defer(ledger, reviewer, review, reason=args.reason)
        else:
            version = edit(ledger, reviewer, review, title=args.title or review.draft.title,
                           body=Path(args.body).read_text(encoding="utf-8"), note=args.reason)
            print(f"review {review.id} is now version {version}, pending: it needs a new approval")
            return 0
        print(f"recorded: {args.decision} of review {review.id} by {name}")
        if args.decision == "approve":
            for done in executed:
                print(f"executed: {json.dumps(done)}")
    return 0


# -- one decision, as every human channel records it (the CLI above, the console in tui/) -----------------


def reviewer_name(given: str | None = None) -> str:
    """Who decides: the name given, else $WEIGHTKEEPER_REVIEWER, else the OS user."""
    return given or os.environ.get(REVIEWER_ENV) or getpass.getuser()


def approve_and_run(ledger: Ledger, home: Path, settings: config.Config, reviewer: HumanReviewer, review: Review,
                    shown: dict[int, str], overrides: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Record the approval of the actions whose payload hashes the reviewer was shown (`shown`: action index to
    sha256), then continue the proposal's thread past its gate, where the executor runs them. Returns what
    each action did."""
    from agents.graph import resume

    reviewer.approve(ReviewQueue(ledger), review.id, version=review.version, payload_sha256s=shown,
                     overrides=overrides)
    state = asyncio.run(resume(ledger, home, settings.proposals, review.id))
    return state.get("executed", [])


def reject(ledger: Ledger, reviewer: HumanReviewer, review: Review, reason: str, *,
           recipient_refused: bool = False) -> None:
    """Reject with the reviewer's reason (kept, and recalled by the drafters as guidance); a recipient who
    refused is put on the do-not-contact list."""
    if not reason.strip():
        raise WeightkeeperError(f"say why review {review.id} is rejected: the reason is kept, and the drafters "
                                "learn from it")
    reviewer.reject(ReviewQueue(ledger), review.id, version=review.version, reason=reason)
    if recipient_refused:
        block(ledger, review.recipient, reason=f"refused review {review.id}: {reason}", by=reviewer.name)


def defer(ledger: Ledger, reviewer: HumanReviewer, review: Review, *, until: date | None = None,
          reason: str | None = None) -> None:
    """Put the review aside, until a date when one is given (kept with the reason)."""
    text = "; ".join(filter(None, [until and f"until {until.isoformat()}", reason and reason.strip()])) or None
    reviewer.defer(ReviewQueue(ledger), review.id, version=review.version, reason=text)


def edit(ledger: Ledger, reviewer: HumanReviewer, review: Review, *, title: str, body: str,
         note: str | None = None) -> int:
    """A new version of the proposal's text, which the critic reads again; an approval of an earlier version
    is void. Returns the new version."""
    from agents.critic import critique

    queue = ReviewQueue(ledger)
    version = reviewer.edit(queue, review.id, version=review.version, title=title, body=body, note=note)
    edited = queue.get(review.id)
    queue.recheck(review.id, version, critique(edited.draft, edited.evidence))
    return version


def run_approved(ledger: Ledger, home: Path, settings: config.Config, review_id: int) -> list[dict[str, Any]]:
    """Run the review's approved actions that have not run, as `weightkeeper act` does; a review the signed
    decision log does not approve is refused (and the refusal recorded), never run."""
    from agents.executor import execute

    try:
        return execute(ledger, home, review_id, settings=settings.proposals)
    except ApprovalRefused as exc:
        return [{"review_id": review_id, "refused": str(exc)}]


def act(home: Path) -> list[dict[str, Any]]:
    """Run every approved action that has not run (after a crash, say). The executor refuses anything the
    signed decision log does not approve: that refusal is recorded, and the other reviews still run."""
    with _opened(home) as (settings, ledger):
        return [done for review in ReviewQueue(ledger).list("approved")
                for done in run_approved(ledger, home, settings, review.id)]


def reviewer_add(home: Path, name: str, *, by: str | None, public_key: str | None) -> str:
    """Record a reviewer's public key, endorsed by `by`'s key (the ledger's first reviewer endorses itself);
    without `public_key`, the new reviewer's key is created in this user's keys folder. Returns the key."""
    from weightkeeper.signing import add_reviewer, signer

    endorser_name = by or os.environ.get(REVIEWER_ENV)
    with _opened(home) as (_, ledger):
        other = None if endorser_name in (None, name) else signer(endorser_name, home)  # before creating a key
        own = None if public_key is not None else signer(name, home, create=True)
        key = public_key if own is None else own.public_key
        add_reviewer(ledger, name, key, endorser=other or own)
    return key


def block(ledger: Ledger, owner: str, *, reason: str | None, by: str | None = None) -> None:
    with ledger.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO contact_blocks (owner, reason, blocked_at, blocked_by) VALUES (?, ?, ?, ?)",
                     (owner, reason, now_iso(), by or getpass.getuser()))


def contact_block(home: Path, owner: str, reason: str | None) -> None:
    with _opened(home) as (_, ledger):
        block(ledger, owner, reason=reason)
    print(f"{owner} will not be contacted: no proposal is drafted for their models")
