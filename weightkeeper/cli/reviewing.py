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
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from weightkeeper import config
from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger, contacts, now_iso
from weightkeeper.review import ApprovalRefused, Review, ReviewQueue, deferral_reason, shown_status, utc_now
from weightkeeper.words import counted

if TYPE_CHECKING:
    from weightkeeper.deciding import HumanReviewer

REVIEWER_ENV = "WEIGHTKEEPER_REVIEWER"


@contextmanager
def _opened(home: Path, *, write: bool = True) -> Iterator[tuple[config.Config, Ledger]]:
    settings = config.load(home)
    with (Ledger(settings.store) if write else Ledger.for_reading(settings.store)) as ledger:
        yield settings, ledger


def propose(home: Path, *, model: str | None, limit: int | None, recipient: str | None = None,
            log: Callable[[str], object] = print) -> int:
    from agents.graph import Drafter, offline_drafter
    from agents.graph import propose as run
    from tools.memory import open_memory
    from weightkeeper.ledger.queries import require_model

    with _opened(home) as (settings, ledger):
        if model is not None:
            require_model(ledger, model)
        drafter: Drafter = offline_drafter
        llm_critic = None
        if settings.llm is not None:
            from agents.llm_critic import LLMCritic
            from agents.llm_drafter import LLMDrafter

            drafter = LLMDrafter(settings.llm)
            llm_critic = LLMCritic(settings.llm)  # beside the deterministic critic, never instead of it
        memory = open_memory(settings.memory, settings.memory_path())
        outcomes = asyncio.run(run(ledger, home, settings.proposals, model=model, recipient=recipient, limit=limit,
                                   drafter=drafter, llm_critic=llm_critic, memory=memory))
    for outcome in outcomes:
        log(f"{outcome.status:8} {outcome.model} (event {outcome.event_id}): {outcome.detail}")
    queued = len({outcome.review_id for outcome in outcomes if outcome.status == "queued"})
    joined = len({outcome.review_id for outcome in outcomes if outcome.status == "joined"})
    log(f"{counted(queued, 'proposal')} queued for review"
        + (f", {counted(joined, 'open proposal')} given new models" if joined else "")
        + "; see `weightkeeper review list`")
    return queued + joined


def review_list(home: Path, *, status: str | None, as_json: bool) -> None:
    with _opened(home, write=False) as (_, ledger):
        queue = ReviewQueue(ledger)
        rows = [review.summary(queue.action_states(review)) for review in queue.list(status)]
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("the review queue is empty; `weightkeeper propose` drafts proposals for recorded events")
    else:
        from weightkeeper.cli.render import print_table

        print_table([{**{key: row[key] for key in ("id", "status", "priority", "event", "model", "recipient")},
                      # back in the queue from a deferral that ended, or deferred again: said beside its status
                      "status": row["status"] + (" (was deferred)" if row["status"] == "pending"
                                                 and row["deferral"] is not None else ""),
                      "actions": ", ".join(f"{action['kind']} {action['state']}" for action in row["actions"])}
                     for row in rows])


def review_show(home: Path, review_id: int, *, as_letter: bool = False) -> None:
    """The review as a reviewer reads it, or with `as_letter` exactly what its recipient would read."""
    from weightkeeper import letter

    with _opened(home, write=False) as (_, ledger):
        queue = ReviewQueue(ledger)
        review = queue.get(review_id)
        states = queue.action_states(review)
    if as_letter:
        print(f"{letter.title(review.draft)}\n\n{letter.render(review.draft, review.evidence)}")
    else:
        print(render_review(review, states))


def render_review(review: Review, states: list[str]) -> str:
    """A review as a person reads it before deciding: the proposal, its actions with their payload
    hashes and states, the critic's findings and the evidence it cites."""
    models = review.evidence.models
    lines = [f"Review {review.id} · {shown_status(review, states)} · version {review.version} · priority {review.priority:.2f}",
             f"{review.event} of {review.model} ({review.registry}) · to {review.recipient}"
             + (f" · {len(models)} models: " + ", ".join(f"{model.model} ({model.event_kind})" for model in models)
                if len(models) > 1 else ""),
             *([f"{'Was deferred' if review.status == 'pending' else 'Deferred'}: "
                f"{review.deferral or 'no date, no reason given'}"] if review.deferral is not None else []),
             f"Drafted by {review.draft.drafter} ({review.draft.prompt})"
             + (f" · recalled {', '.join(review.draft.precedents)}" if review.draft.precedents else ""),
             "", f"# {review.draft.title}", "",
             review.draft.body, "", "Planned actions (an approval binds to these exact payloads):"]
    for index, (action, state) in enumerate(zip(review.draft.actions, states, strict=True)):
        lines.append(f"  [{index}] {action.kind} via {action.channel} to {action.target}: {state}  "
                     f"payload sha256 {review.payload_sha256(index)}")
    lines += ["", "Critic findings (an approval overrides each error by its id: --override ID):"] + (
        [f"  {f.severity} {f.id}: {f.message}" for f in review.findings] or ["  none"])
    lines += ["", "Evidence:"] + [f"  {item.id} [{item.kind}] {item.statement} ({item.source})"
                                  for item in review.evidence.items]
    return "\n".join(lines)


def decide(home: Path, args: argparse.Namespace, *, ask: Callable[[str], str] = input) -> int:
    """approve | reject | defer | edit, through the terminal. Returns the exit code."""
    from weightkeeper.deciding import HumanReviewer, why_not
    from weightkeeper.signing import signer

    on_terminal(f"`review {args.decision}`", "Run it in an interactive shell, or open the console: "
                                             "`weightkeeper review`")
    name = args.reviewer or os.environ.get(REVIEWER_ENV)
    if not name:
        raise WeightkeeperError(f"say who decides: --reviewer NAME, or set {REVIEWER_ENV}")
    with _opened(home) as (settings, ledger):
        queue = ReviewQueue(ledger)
        review = queue.get(args.id)
        # Checked before the proposal is shown and a confirmation asked for: a refusal after typing it wastes a read.
        refusal = why_not(review, args.decision, tuple(getattr(args, "override", ())))
        if refusal is not None:
            raise WeightkeeperError(refusal)
        if args.decision == "defer":
            check_until(queue, args.until)
        reviewer = HumanReviewer(signer(name, home), "cli")
        print(render_review(review, queue.action_states(review)))
        print()
        hashes = {index: review.payload_sha256(index) for index in range(len(review.draft.actions))}
        code = hashlib.sha256("".join(hashes.values()).encode()).hexdigest()[:8]
        targets = ", ".join(f"{action.channel} to {action.target}" for action in review.draft.actions)
        phrase = {"approve": f"approve {review.id} {code}", "reject": f"reject {review.id}",
                  "defer": f"defer {review.id}", "edit": f"edit {review.id}"}[args.decision]
        what = (f"approve publishing ({targets}; payloads {code})" if args.decision == "approve"
                else f"{args.decision} review {review.id}"
                + (f" until {args.until}" if getattr(args, "until", None) else ""))
        if ask(f"Type `{phrase}` to {what}: ").strip() != phrase:
            print("not confirmed; nothing was recorded")
            return 1
        if args.decision == "approve":
            executed = approve_and_run(ledger, home, settings, reviewer, review, hashes, tuple(args.override))
        elif args.decision == "reject":
            reject(ledger, reviewer, review, args.reason, recipient_refused=args.recipient_refused)
        elif args.decision == "defer":
            defer(ledger, reviewer, review, until=args.until, reason=args.reason)
        else:
            version = edit(ledger, reviewer, review, title=args.title or review.draft.title,
                           body=Path(args.body).read_text(encoding="utf-8"), note=args.reason)
            print(f"review {review.id} is now version {version}, pending: it needs a new approval")
            return 0
        print(f"recorded: {args.decision} of review {review.id} by {name}")
        if args.decision == "approve":
            from weightkeeper.cli.render import action_line

            for done in executed:
                print(action_line(done))
    return 0


def on_terminal(what: str, how: str = "Run it in an interactive shell") -> None:
    """Refuse, saying `how` to go on, when `what` (a deciding command, the console) has no terminal to a person."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise WeightkeeperError(f"{what} needs a terminal: decisions are typed by a person, never scripted. {how}")


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
        contacts.block(ledger, review.recipient, reason=f"refused review {review.id}: {reason}", by=reviewer.name)


def defer(ledger: Ledger, reviewer: HumanReviewer, review: Review, *, until: date | None = None,
          reason: str | None = None, clock: Callable[[], datetime] = utc_now) -> None:
    """Put the review aside, until a date when one is given (kept with the reason): on that date (UTC, by `clock`)
    it is pending again. Without a date it stays deferred until someone decides it, or a new event of its
    recipient amends it."""
    queue = ReviewQueue(ledger, clock=clock)
    check_until(queue, until)
    reviewer.defer(queue, review.id, version=review.version, reason=deferral_reason(until, reason))


def check_until(queue: ReviewQueue, until: date | None) -> None:
    """A deferral's date must be after today: on it, the review is pending again."""
    if until is not None and until.isoformat() <= queue.today():
        raise WeightkeeperError(f"a deferral ends on its date, and {until.isoformat()} is not after today "
                                f"({queue.today()}, UTC): give a later date, or none")


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
    signed decision log does not approve: that refusal is recorded, and the other reviews still run. The
    decision logs of the other reviews not yet executed are verified too, so this user's witness anchors
    what other reviewers decided in a shared ledger, and a tampered log is reported now."""
    with _opened(home) as (settings, ledger):
        queue, done = ReviewQueue(ledger), []
        for review in queue.list():
            if review.status == "approved":
                done += run_approved(ledger, home, settings, review.id)
            elif review.status != "executed":
                try:
                    queue.verify(review.id)
                except ApprovalRefused as exc:
                    done.append({"review_id": review.id, "refused": str(exc)})
    return done


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


def reviewer_trust(home: Path, *, reset: bool, ask: Callable[[str], str] = input) -> int:
    """Show the root reviewer this user's witness pinned for the home's ledger beside the one the ledger holds.
    With `reset`, on a terminal and after a typed confirmation, pin the ledger's root anew and forget the
    decision chains witnessed there (each is anchored again as it is now). Returns the exit code."""
    from weightkeeper.review import reviewer_keys
    from weightkeeper.witness import Witness, described, fingerprint, keys_dir

    witness = Witness(keys_dir())
    with _opened(home) as (_, ledger):
        root = next(iter(reviewer_keys(ledger.conn).items()), None)
        with witness.seen(ledger.path) as seen:
            pinned, anchored = seen.root, len(seen.heads)
        print(f"ledger {ledger.path}\n  root reviewer pinned in {witness.path}: {described(pinned)}, with "
              f"{counted(anchored, 'review chain')} anchored\n  root reviewer the ledger holds: {described(root)}")
        if not reset:
            print("  " + ("they match" if pinned == root else
                          "nothing pinned yet: the first verification here pins the ledger's" if pinned is None else
                          "they differ: its approvals are refused until the ledger is restored, or re-pinned with "
                          "`weightkeeper reviewer trust --reset`"))
            return 0
        on_terminal("`reviewer trust --reset`")
        if root is None:
            raise WeightkeeperError("the ledger holds no reviewer to pin; `weightkeeper init` records the first")
        phrase = f"trust {fingerprint(root[1])[7:15]}"
        if ask(f"Type `{phrase}` to pin {described(root)} as the root reviewer of this ledger and forget the chains "
               "anchored: ").strip() != phrase:
            print("not confirmed; nothing was changed")
            return 1
        with witness.seen(ledger.path) as seen:
            seen.root, seen.heads = root, {}
    print(f"pinned {described(root)}; each review's decision chain is anchored again as the ledger now holds it")
    return 0


def contact_block(home: Path, owner: str, reason: str | None) -> None:
    with _opened(home) as (_, ledger):
        contacts.block(ledger, owner, reason=reason, by=getpass.getuser())
    print(f"{owner} will not be contacted: no proposal is drafted for their models")


def contact_unblock(home: Path, owner: str) -> None:
    with _opened(home) as (_, ledger):
        if not contacts.unblock(ledger, owner):
            raise WeightkeeperError(f"{owner} is not on the do-not-contact list; `weightkeeper contact list` shows "
                                    "who is")
    print(f"{owner} may be contacted again: their models' events get proposals")


def contact_list(home: Path, *, as_json: bool) -> None:
    with _opened(home, write=False) as (settings, ledger):
        rows = contacts.blocks(ledger)
    rows += [{"owner": owner, "reason": "in [proposals] do_not_contact of weightkeeper.toml", "blocked_at": None,
              "blocked_by": None} for owner in sorted(settings.proposals.do_not_contact)]
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("nobody is on the do-not-contact list; `weightkeeper contact block OWNER` adds someone")
    else:
        from weightkeeper.cli.render import print_table

        print_table(rows)
