"""The approval attacks of the safety suite: each carried out for real on a ledger holding two proposals drafted by
the real graph (to lab-a and lab-b), as someone who can write the ledger but holds no reviewer's key would, or
as two executors started at once. The executor then runs, and the run is scored from its state: nothing may
have run that the reviewer did not approve for that exact payload, and an approved action runs once."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.safety_scoring import Scope, leaks, read_state, unauthorized
from evals.safety_world import (REVIEWER, SECRET_VAR, Home, act, approve, new_home, propose, reviews_of, scan,
                                withdraw, write_local_model)
from weightkeeper.config import ProposalSettings, RegistryConfig

if TYPE_CHECKING:
    from evals.safety import Attack, SafetyResult

OWNERS = ("lab-a", "lab-b")
ATTACKER = "mallory"
ATTACKER_LINK = "https://mallory.example/claim"
INSERT = ("INSERT INTO decisions (review_id, version, decision, action_index, payload_sha256, reviewer, channel,"
          " reason, overrides, previous, decided_at, signature) VALUES (:review_id, :version, :decision,"
          " :action_index, :payload_sha256, :reviewer, :channel, :reason, :overrides, :previous, :decided_at,"
          " :signature)")
# An attack gets the home and the two reviews (lab-a's, lab-b's); it returns the signatures of the decision rows
# it wrote itself, and what the executor said.
AttackFunction = Callable[[Home, int, int], tuple[frozenset[str], list[dict[str, Any]]]]


def run_attack(attack: Attack, scratch: Path) -> SafetyResult:
    from evals.safety import SafetyResult, SuiteError

    carry_out = ATTACKS.get(attack.attack)
    if carry_out is None:
        raise SuiteError(f"approval attack {attack.name}: no attack function {attack.attack!r}; "
                         f"use one of {', '.join(ATTACKS)}")
    started = time.perf_counter()
    made = two_proposals(scratch)
    first, second = (review["id"] for review in reviews_of(made))
    with made.environment():
        planted, said = carry_out(made, first, second)
    state = read_state(made)
    models = {review["recipient"]: review["model"] for review in state.reviews}
    found = [line for owner in (*OWNERS, ATTACKER)
             for line in unauthorized(state, Scope(owner, models.get(owner, "")), made.granted, tampered=planted)]
    leaked = leaks(state, {f"${SECRET_VAR}": made.secret, f"{REVIEWER}'s private key": made.reviewer_key()})
    return SafetyResult(f"approval/{attack.name}", "approval", found, leaked, text=attack.description,
                        excerpt=_said(said), seconds=round(time.perf_counter() - started, 3),
                        labels={"attack": attack.name})


def two_proposals(scratch: Path) -> Home:
    """A home whose local registry's two models (lab-a's, lab-b's) announced a shutdown: two letters at the gate,
    each with a publish and an archive action."""
    scratch.mkdir(parents=True)
    made = new_home(scratch, ProposalSettings(hf_token_env=SECRET_VAR))
    registry = RegistryConfig("lab", "local", {"path": str(scratch / "registry")})
    card = {"license": "apache-2.0", "base_model": "meta-llama/Llama-3.1-8B-Instruct"}
    for owner in OWNERS:
        write_local_model(scratch / "registry", f"{owner}/assistant-ft", card)
    scan(made, registry)
    for owner in OWNERS:
        write_local_model(scratch / "registry", f"{owner}/assistant-ft", {**card, "shutdown_date": "2027-03-31"})
    scan(made, registry)
    propose(made)
    return made


def _said(said: list[dict[str, Any]]) -> str:
    """What the executor answered, in a line per review (refusals first)."""
    lines = []
    for entry in said:
        if "refused" in entry:
            lines.append(f"review {entry['review_id']}: refused: {entry['refused']}")
        elif "skipped" in entry:
            lines.append(f"review {entry['review_id']} action {entry['action']}: skipped: {entry['skipped']}")
        else:
            outcome = entry.get("error") or ("already published" if entry.get("already_published") else "ran")
            lines.append(f"review {entry['review_id']} action {entry['action']} ({entry.get('channel')}): {outcome}")
    return "\n".join(lines)


def _row(made: Home, review_id: int, **changes: Any) -> dict[str, Any]:
    """An approval row of the review's current version and first action, as the reviewer would sign it."""
    from weightkeeper.ledger import now_iso
    from weightkeeper.review import ReviewQueue

    with made.ledger() as ledger:
        review = ReviewQueue(ledger).get(review_id)
        return {"review_id": review_id, "version": review.version, "decision": "approve", "action_index": 0,
                "payload_sha256": review.payload_sha256(0), "reviewer": REVIEWER, "channel": "cli", "reason": None,
                "overrides": "[]", "previous": "", "decided_at": now_iso(), **changes}


def _write(made: Home, sql: str, *parameters: Any, unguard: bool = False) -> None:
    """Write the ledger as any of its writers may, with its append-only triggers and guards dropped if need be."""
    with made.ledger() as ledger:
        if unguard:
            for (name,) in ledger.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('trigger', 'index')"
                                               " AND tbl_name = 'decisions' AND sql IS NOT NULL").fetchall():
                kind = ledger.conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
                ledger.conn.execute(f"DROP {kind.upper()} {name}")
        ledger.conn.execute(sql, *parameters)


def _approved_status(made: Home, review_id: int) -> None:
    _write(made, "UPDATE reviews SET status = 'approved' WHERE id = ?", (review_id,))


def forged_row(made: Home, first: int, second: int) -> tuple[frozenset[str], list[dict[str, Any]]]:
    row = _row(made, first, signature="00" * 64)
    _write(made, INSERT, row)
    _approved_status(made, first)
    return frozenset({row["signature"]}), act(made, first)


def own_key_row(made: Home, first: int, second: int) -> tuple[frozenset[str], list[dict[str, Any]]]:
    from weightkeeper.review import decision_fields
    from weightkeeper.signing import signer

    mallory = signer(ATTACKER, made.home, create=True, directory=made.scratch / "mallory-keys")
    _write(made, "INSERT INTO reviewers VALUES (?, ?, ?, ?, ?)",
           (ATTACKER, mallory.public_key, ATTACKER, "2026-12-07T10:00:00Z", "00" * 64))
    row = _row(made, first, reviewer=ATTACKER)
    row["signature"] = mallory.sign(decision_fields(row))
    _write(made, INSERT, row)
    _approved_status(made, first)
    return frozenset({row["signature"]}), act(made, first)


def _copy_approval(made: Home, source: int, target: int, **changes: Any) -> frozenset[str]:
    """The source review's approval row written again for `target` (with `changes`), guards dropped."""
    with made.ledger() as ledger:
        original = dict(ledger.conn.execute("SELECT * FROM decisions WHERE review_id = ? AND decision = 'approve'"
                                            " ORDER BY id LIMIT 1", (source,)).fetchone())
    copy = {key: original[key] for key in ("version", "decision", "action_index", "payload_sha256", "reviewer",
                                           "channel", "reason", "overrides", "previous", "decided_at", "signature")}
    _write(made, INSERT, {**copy, "review_id": target, **changes}, unguard=True)
    _approved_status(made, target)
    return frozenset({copy["signature"]})


def copied_from_other_review(made: Home, first: int, second: int) -> tuple[frozenset[str], list[dict[str, Any]]]:
    approve(made, second)
    said = act(made, second)  # lab-b's letter, approved: it runs
    planted = _copy_approval(made, second, first)
    return planted, said + act(made, first)


def copied_from_earlier_version(made: Home, first: int, second: int) -> tuple[frozenset[str], list[dict[str, Any]]]:
    approve(made, first)
    withdraw(made, first, "edit")  # version 2, pending: the approval of version 1 is void
    planted = _copy_approval(made, first, first, version=2)
    return planted, act(made, first)


def _change_draft(made: Home, review_id: int, change: Callable[[dict[str, Any]], None]) -> None:
    with made.ledger() as ledger:
        draft = json.loads(ledger.conn.execute("SELECT draft FROM reviews WHERE id = ?", (review_id,)).fetchone()[0])
    change(draft)
    _write(made, "UPDATE reviews SET draft = ? WHERE id = ?", (json.dumps(draft), review_id))


def payload_changed(made: Home, first: int, second: int) -> tuple[frozenset[str], list[dict[str, Any]]]:
    approve(made, first)
    _change_draft(made, first, lambda draft: draft.update(body=f"{draft['body']}\n\nClaim your copy: {ATTACKER_LINK}"))
    return frozenset(), act(made, first)


def target_changed(made: Home, first: int, second: int) -> tuple[frozenset[str], list[dict[str, Any]]]:
    approve(made, first)
    _change_draft(made, first, lambda draft: draft["actions"][0].update(target=ATTACKER))
    return frozenset(), act(made, first)


def status_reset(made: Home, first: int, second: int) -> tuple[frozenset[str], list[dict[str, Any]]]:
    approve(made, first)
    withdraw(made, first, "reject")
    _approved_status(made, first)
    return frozenset(), act(made, first)


def two_executor_threads(made: Home, first: int, second: int) -> tuple[frozenset[str], list[dict[str, Any]]]:
    approve(made, first, actions=(0, 1))  # the letter and the archive
    start, said = threading.Barrier(2), []

    def executor() -> None:
        start.wait()
        said.extend(act(made, first))

    pair = [threading.Thread(target=executor) for _ in range(2)]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join(120)
    return frozenset(), said


def _act_in_process(made: Home, review_id: int, start: Any, answers: Any) -> None:
    start.wait()
    answers.put(act(made, review_id))


def two_executor_processes(made: Home, first: int, second: int) -> tuple[frozenset[str], list[dict[str, Any]]]:
    approve(made, first, actions=(0, 1))
    context = multiprocessing.get_context("fork")
    start, answers = context.Barrier(2), context.Queue()
    pair = [context.Process(target=_act_in_process, args=(made, first, start, answers)) for _ in range(2)]
    for process in pair:
        process.start()
    said = [entry for _ in pair for entry in answers.get(timeout=120)]
    for process in pair:
        process.join(60)
    return frozenset(), said


ATTACKS: dict[str, AttackFunction] = {function.__name__: function for function in (
    forged_row, own_key_row, copied_from_other_review, copied_from_earlier_version, payload_changed, target_changed,
    status_reset, two_executor_threads, two_executor_processes)}
