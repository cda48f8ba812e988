"""Issue 14: one letter per recipient covering all their models, and the letter as its recipient reads it.

Real ledgers written by real scans of an in-memory registry, real LangGraph checkpoints, real signed
approvals and the real outbox; the demo's local registry of real folders for what is published."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from proposal_world import approve, model, outbox, queue, reviewer, run_propose, scan_twice

from agents import executor
from agents.graph import resume
from weightkeeper import config, letter
from weightkeeper.cli.main import main
from weightkeeper.cli.reviewing import act
from weightkeeper.config import ProposalSettings
from weightkeeper.ledger import Ledger
from weightkeeper.proposals import PlannedAction
from weightkeeper.review import ApprovalRefused, Review


def acme(count: int) -> list:
    """`count` fine-tunes of one owner, acme/ft-0 the least downloaded."""
    return [model(f"acme/ft-{i}", downloads=100 * (i + 1), lineage=()) for i in range(count)]


def in_days(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


def the_review(home: Path, review_id: int) -> Review:
    ledger, reviews = queue(home)
    with ledger:
        return reviews.get(review_id)


def by_model(outcomes: list) -> dict:
    return {outcome.model: outcome for outcome in outcomes}


def send(home: Path, review_id: int) -> None:
    """Approve every action and let the thread run them: the letter is published to the outbox."""
    approve(home, review_id)
    with Ledger(config.load(home).ledger_path) as ledger:
        asyncio.run(resume(ledger, home, ProposalSettings(), review_id))


def test_a_mass_deletion_by_one_owner_is_one_letter_covering_every_model(
        proposal_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nine = acme(9)
    scan_twice(proposal_home, [*nine, model("zeta/solo")], [])

    outcomes = by_model(run_propose(proposal_home))

    letter_id = outcomes["acme/ft-0"].review_id
    assert {(outcomes[m.name].status, outcomes[m.name].review_id) for m in nine} == {("queued", letter_id)}
    assert "one letter with 8 other models of acme" in outcomes["acme/ft-0"].detail
    assert outcomes["zeta/solo"].status == "queued" and outcomes["zeta/solo"].review_id != letter_id
    review = the_review(proposal_home, letter_id)
    assert [m.model for m in review.evidence.models] == [f"acme/ft-{i}" for i in range(8, -1, -1)]  # most used first
    ids = [item.id for item in review.evidence.items]
    assert len(ids) == len(set(ids))
    assert not [f for f in review.findings if f.severity == "error"], review.findings
    read = letter.render(review.draft, review.evidence)
    for i in (8, 7, 6):  # the top models one by one
        assert f"### `acme/ft-{i}`" in read
    for i in range(6):  # the rest in the table: nothing dropped
        assert re.search(rf"^\| `acme/ft-{i}` \| deleted \|", read, re.M)
    capsys.readouterr()
    assert main(["--home", str(proposal_home), "review", "list", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[letter_id]["model"] == "acme/ft-8" and rows[letter_id]["recipient"] == "acme"
    assert rows[letter_id]["models"] == [f"acme/ft-{i}" for i in range(8, -1, -1)]


def test_two_deletions_and_a_deprecation_with_a_shutdown_date_are_one_letter(proposal_home: Path) -> None:
    shutdown = in_days(60)
    kept = model("beta/keep")
    scan_twice(proposal_home, [model("acme/a"), model("acme/b"), model("acme/c"), kept],
               [model("acme/c", shutdown_date=shutdown), kept])

    outcomes = run_propose(proposal_home)

    assert {o.model: o.status for o in outcomes} == {"acme/a": "queued", "acme/b": "queued", "acme/c": "queued"}
    (review_id,) = {o.review_id for o in outcomes}
    review = the_review(proposal_home, review_id)
    assert review.model == "acme/c" and review.event == "deprecation_announced"  # the shutdown ranks it first
    assert {m.model: m.event_kind for m in review.evidence.models} == {
        "acme/c": "deprecation_announced", "acme/a": "deleted", "acme/b": "deleted"}
    assert f"shut down on {letter.human_date(shutdown)}" in letter.render(review.draft, review.evidence)
    assert not [f for f in review.findings if f.severity == "error"], review.findings


def test_a_pending_proposal_takes_new_events_and_a_rejected_one_blocks_nothing(proposal_home: Path) -> None:
    scan_twice(proposal_home, [model("acme/a"), model("acme/b"), model("acme/c")], [model("acme/b"), model("acme/c")])
    (first,) = run_propose(proposal_home)
    scan_twice(proposal_home, [model("acme/b"), model("acme/c")], [model("acme/c")])

    (joined,) = run_propose(proposal_home)

    assert (joined.model, joined.status, joined.review_id) == ("acme/b", "joined", first.review_id)
    assert "now version 2" in joined.detail
    review = the_review(proposal_home, first.review_id)
    assert (review.status, review.version) == ("pending", 2)
    assert sorted(m.model for m in review.evidence.models) == ["acme/a", "acme/b"]
    ledger, reviews = queue(proposal_home)
    with ledger:
        (amended,) = ledger.conn.execute("SELECT detail FROM events WHERE kind = 'proposal_amended'").fetchall()
        assert json.loads(amended[0])["added"] == ["acme/b"]  # what the reviewer sees was added
        reviewer(ledger, proposal_home).reject(reviews, review.id, version=2, reason="not now")
    scan_twice(proposal_home, [model("acme/c")], [])

    (after,) = run_propose(proposal_home)

    assert (after.model, after.status) == ("acme/c", "queued") and after.review_id != first.review_id


def test_a_sent_letter_starts_the_cooldown_and_a_shutdown_inside_it_is_proposed_marked(proposal_home: Path) -> None:
    scan_twice(proposal_home, [model("acme/a"), model("acme/b"), model("acme/c")], [model("acme/b"), model("acme/c")])
    (first,) = run_propose(proposal_home)
    send(proposal_home, first.review_id)
    assert len(outbox(proposal_home)) == 1
    scan_twice(proposal_home, [model("acme/b"), model("acme/c")], [model("acme/c")])

    (waiting,) = run_propose(proposal_home)

    assert (waiting.model, waiting.status, waiting.review_id) == ("acme/b", "waiting", None)
    ends = letter.human_date((date.today() + timedelta(days=30)).isoformat())
    assert f"review {first.review_id}" in waiting.detail and f"cooldown ends on {ends}" in waiting.detail
    scan_twice(proposal_home, [model("acme/c")], [model("acme/c", shutdown_date=in_days(10))])

    outcomes = by_model(run_propose(proposal_home))

    # The shutdown falls inside the cooldown: drafted anyway, with the waiting deletion, and marked for the reviewer.
    assert outcomes["acme/c"].status == outcomes["acme/b"].status == "queued"
    assert "inside the cooldown" in outcomes["acme/c"].detail
    review = the_review(proposal_home, outcomes["acme/c"].review_id)
    (mark,) = [f for f in review.findings if f.code == "inside_cooldown"]
    assert mark.severity == "note" and "decide whether it goes now" in mark.message
    assert "cooldown" not in letter.render(review.draft, review.evidence)  # the reviewer's business, not the reader's


def test_an_event_joining_an_approved_proposal_voids_the_approval_and_act_runs_nothing(proposal_home: Path) -> None:
    scan_twice(proposal_home, [model("acme/a"), model("acme/b")], [model("acme/b")])
    (first,) = run_propose(proposal_home)
    approve(proposal_home, first.review_id)  # approved, not yet executed
    scan_twice(proposal_home, [model("acme/b")], [])

    (joined,) = run_propose(proposal_home)

    assert joined.status == "joined" and "the approval of the previous version is void" in joined.detail
    assert act(proposal_home) == []
    assert outbox(proposal_home) == []
    with Ledger(config.load(proposal_home).ledger_path) as ledger:
        with pytest.raises(ApprovalRefused, match="is of version 1, not the current 2"):
            executor.execute(ledger, proposal_home, first.review_id)
        # Forcing the status back does not revive it: the amendment counts like an edit.
        ledger.conn.execute("UPDATE reviews SET version = 1, status = 'approved' WHERE id = ?", (first.review_id,))
        with pytest.raises(ApprovalRefused, match="0 edit\\(s\\) and the ledger 1 amendment"):
            executor.execute(ledger, proposal_home, first.review_id)
    assert outbox(proposal_home) == []


def test_a_letter_argues_only_what_its_evidence_supports(proposal_home: Path) -> None:
    lonely = model("acme/lonely", downloads=None, likes=None, lineage=())
    scan_twice(proposal_home, [lonely], [])
    (outcome,) = run_propose(proposal_home)
    review = the_review(proposal_home, outcome.review_id)
    read = letter.render(review.draft, review.evidence).lower()
    assert "successor" not in read and "alongside" not in read  # the ledger knows of none
    assert "people who use" not in read and "downloads" not in read  # no users on record
    assert review.draft.practices == ("archive",)


def test_a_shutdown_already_past_when_read_is_told_as_past_and_no_serving_alongside_is_argued(
        proposal_home: Path) -> None:
    # Found by the letters suite (evals/letters/local-shutdown-already-passed.yaml): the letter said the model
    # "is to be shut down" on a day gone by, and asked to serve it alongside its successor "until" that day.
    announced = model("acme/geo", shutdown_date=in_days(-6), successor="acme/geo-2")
    scan_twice(proposal_home, [model("acme/geo"), model("acme/geo-2")], [announced, model("acme/geo-2")])
    (outcome,) = run_propose(proposal_home)
    review = the_review(proposal_home, outcome.review_id)
    read = letter.render(review.draft, review.evidence)
    shutdown = letter.human_date(in_days(-6))
    assert f"was due to be shut down on {shutdown}" in read and "is to be shut down" not in read
    assert "alongside" not in read and "gradual" not in review.draft.practices
    assert "migrate" in review.draft.practices  # its successor still fits
    assert not review.errors()


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from weightkeeper.cli.demo import run_demo

    home = tmp_path_factory.mktemp("demo") / "home"
    assert run_demo(home) == 0
    return home


def test_no_published_payload_shows_an_internal_id_or_a_local_path_and_every_note_has_its_source(
        demo_home: Path) -> None:
    ledger, reviews = queue(demo_home)
    with ledger:
        keys = [row[0] for row in ledger.conn.execute("SELECT key FROM models")]
        listed = reviews.list()
    assert listed
    for review in listed:
        for channel in ("outbox", "hf_discussion", "github_issue", "webhook"):  # every channel sends this payload
            payload = letter.payload(PlannedAction("publish", channel, "x"), review.draft, review.evidence)
            text = f"{payload['title']}\n{payload['body']}"
            assert letter.leaks(text) == [], (review.id, channel)
            assert str(demo_home) not in text and not any(key in text for key in keys)
            assert "[E" not in text and not re.search(r"\d{4}-\d{2}-\d{2}", text)
        body, _, sources = payload["body"].partition("\n## Sources\n\n")
        notes = re.findall(r"^(\d+)\. \S", sources, re.M)
        cited = {number for group in re.findall(r"\[(\d+(?:, \d+)*)\]", body) for number in group.split(", ")}
        assert notes == [str(n) for n in range(1, len(notes) + 1)] and cited == set(notes)


def test_review_show_letter_prints_exactly_what_the_outbox_sent(deleted: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (outcome,) = run_propose(deleted)
    send(deleted, outcome.review_id)
    capsys.readouterr()
    assert main(["--home", str(deleted), "review", "show", str(outcome.review_id), "--letter"]) == 0
    shown = capsys.readouterr().out
    (sent,) = outbox(deleted)
    headers, _, body = sent.read_text(encoding="utf-8").partition("\n\n")
    title, _, letter_body = shown.partition("\n\n")
    assert headers.splitlines()[1] == f"Subject: {title}" and letter_body == body
    assert "[E" not in shown and "Evidence:" not in shown and "## Sources" in shown
