"""`weightkeeper review` as a human channel: a real terminal (a pty), a reviewer, a typed confirmation.
Without a terminal, or with a wrong confirmation, nothing is recorded."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from proposal_world import outbox, replace_reviewers, reviewer, run_propose
from test_archive_actions import approve_archive, deprecated, the_review  # noqa: F401 (deprecated: a fixture)

from weightkeeper import config
from weightkeeper.cli.main import main
from weightkeeper.cli.reviewing import act
from weightkeeper.ledger import Ledger
from weightkeeper.review import ReviewQueue, reviewer_keys
from weightkeeper.witness import fingerprint


@pytest.fixture(autouse=True)
def ada(on_each_store: str | Path, deleted: Path) -> None:
    """ada is the ledger's reviewer, her key in the test's keys folder; on each backend (`on_each_store`)."""
    with Ledger(config.load(deleted).store) as ledger:
        reviewer(ledger, deleted)


def cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), *args]


def on_terminal(command: list[str], answer: callable, timeout: float = 60) -> tuple[int, str]:
    """Run `command` on a pseudo-terminal; when it prompts with `Type \\`...\\``, type `answer(phrase)`."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True,
                               env={**os.environ, "COLUMNS": "200"})
    os.close(terminal)
    output, answered, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        prompt = re.search(rb"Type `([^`]+)`", output)
        if prompt and not answered:
            os.write(controller, answer(prompt.group(1).decode()).encode() + b"\n")
            answered = True
    os.close(controller)
    return process.wait(timeout=timeout), output.decode(errors="replace")


def status(home: Path, review_id: int) -> str:
    with Ledger(config.load(home).store) as ledger:
        return ReviewQueue(ledger).get(review_id).status


def test_approval_without_a_terminal_is_refused(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    done = subprocess.run(cli(deleted, "review", "approve", str(outcome.review_id), "--reviewer", "ada"),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "needs a terminal" in done.stderr
    assert status(deleted, outcome.review_id) == "pending" and outbox(deleted) == []


def test_a_typed_approval_on_a_terminal_records_it_and_runs_the_action(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    code, output = on_terminal(cli(deleted, "review", "approve", str(outcome.review_id), "--reviewer", "ada"),
                               lambda phrase: phrase)
    assert code == 0, output
    assert "payload sha256" in output and "recorded: approve" in output
    assert status(deleted, outcome.review_id) == "executed"
    (letter,) = outbox(deleted)
    assert f"review {outcome.review_id} action 0, publish to outbox acme: published: {letter}" in output
    with Ledger(config.load(deleted).store) as ledger:
        (decision,) = ReviewQueue(ledger).decisions(outcome.review_id)
        assert (decision["reviewer"], decision["channel"], decision["decision"]) == ("ada", "cli", "approve")


def test_a_wrong_confirmation_records_nothing(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    code, output = on_terminal(cli(deleted, "review", "approve", str(outcome.review_id), "--reviewer", "ada"),
                               lambda phrase: "approve")
    assert code == 1 and "nothing was recorded" in output
    assert status(deleted, outcome.review_id) == "pending" and outbox(deleted) == []


def test_a_rejection_for_a_refusing_recipient_blocks_them(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    code, output = on_terminal(cli(deleted, "review", "reject", str(outcome.review_id), "--reviewer", "ada",
                                   "--reason", "the author asked us not to write", "--recipient-refused"),
                               lambda phrase: phrase)
    assert code == 0, output
    assert status(deleted, outcome.review_id) == "rejected"
    with Ledger(config.load(deleted).store) as ledger:
        assert ledger.conn.execute("SELECT owner FROM contact_blocks").fetchall()[0][0] == "acme"


def test_an_edit_on_a_terminal_keeps_the_reviewers_note_and_the_changed_lines(deleted: Path, tmp_path: Path) -> None:
    (outcome,) = run_propose(deleted)
    with Ledger(config.load(deleted).store) as ledger:
        body = ReviewQueue(ledger).get(outcome.review_id).draft.body
    edited = tmp_path / "body.md"
    edited.write_text(body.replace("Hello acme,", "Dear acme team,"), encoding="utf-8")
    code, output = on_terminal(cli(deleted, "review", "edit", str(outcome.review_id), "--reviewer", "ada",
                                   "--body", str(edited), "--reason", "greet the team"), lambda phrase: phrase)
    assert code == 0 and "now version 2" in output, output
    with Ledger(config.load(deleted).store) as ledger:
        (decision,) = ReviewQueue(ledger).decisions(outcome.review_id)
    assert decision["reason"] == "greet the team\n\n-Hello acme,\n+Dear acme team,"


def test_reviewer_trust_reset_re_pins_the_root_only_after_a_typed_confirmation(
        deleted: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The ledger's reviewers replaced (rebuilt on purpose, say): refused until this user re-pins its root."""
    (outcome,) = run_propose(deleted)
    with Ledger(config.load(deleted).store) as ledger:
        replace_reviewers(ledger, deleted, tmp_path_factory.mktemp("rebuilt-keys"), outcome.review_id)
        mallory = fingerprint(reviewer_keys(ledger.conn)["mallory"])
    shown = subprocess.run(cli(deleted, "reviewer", "trust"), capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and mallory in shown.stdout and "they differ" in shown.stdout, shown.stderr
    scripted = subprocess.run(cli(deleted, "reviewer", "trust", "--reset"), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    assert scripted.returncode == 2 and "needs a terminal" in scripted.stderr
    code, output = on_terminal(cli(deleted, "reviewer", "trust", "--reset"), lambda phrase: "trust")
    assert code == 1 and "nothing was changed" in output
    (refused,) = act(deleted)
    assert "root reviewer" in refused["refused"] and outbox(deleted) == []
    code, output = on_terminal(cli(deleted, "reviewer", "trust", "--reset"), lambda phrase: phrase)
    assert code == 0 and f"pinned 'mallory' (ed25519 {mallory})" in output, output
    (done,) = act(deleted)
    assert done["already_published"] is False and len(outbox(deleted)) == 1



@pytest.mark.parametrize("case", ["rejected", "critic error"])
def test_a_review_that_cannot_be_approved_is_refused_before_it_is_shown_or_confirmed(deleted: Path,
                                                                                     case: str) -> None:
    (outcome,) = run_propose(deleted)
    if case == "rejected":
        with Ledger(config.load(deleted).store) as ledger:
            queue = ReviewQueue(ledger)
            reviewer(ledger, deleted).reject(queue, outcome.review_id, version=1, reason="not now")
        why = "is rejected: only a pending or deferred proposal can be approved"
    else:
        with Ledger(config.load(deleted).store) as ledger:
            ledger.conn.execute("UPDATE reviews SET findings = ? WHERE id = ?", (json.dumps(
                [{"severity": "error", "code": "tone", "message": "a threat"}]), outcome.review_id))
        why = "has critic errors not overridden"
    code, output = on_terminal(cli(deleted, "review", "approve", str(outcome.review_id), "--reviewer", "ada"),
                               lambda phrase: phrase)
    assert code == 2 and why in output, output
    assert "Type `" not in output and "Evidence:" not in output, output
    assert outbox(deleted) == []


def test_a_review_with_one_of_two_actions_run_says_so_and_each_action_its_state(deprecated: Path) -> None:
    """The demo's shape: a deprecation letter whose archive action alone is approved and run."""
    review = the_review(deprecated)
    approve_archive(deprecated, review)
    assert main(["act", "--home", str(deprecated)]) == 0
    listed = subprocess.run(cli(deprecated, "review", "list", "--json"), capture_output=True, text=True)
    (row,) = json.loads(listed.stdout)
    assert row["status"] == "partly executed"
    assert [(action["kind"], action["state"]) for action in row["actions"]] == [("publish", "not approved"),
                                                                                ("archive", "executed")]
    shown = subprocess.run(cli(deprecated, "review", "show", str(row["id"])), capture_output=True, text=True)
    assert f"Review {row['id']} · partly executed" in shown.stdout
    assert "publish via outbox to " in shown.stdout and ": not approved  payload sha256" in shown.stdout


def listed(home: Path, on: date, capsys: pytest.CaptureFixture[str], *options: str) -> list[dict]:
    """`review list --json` as the CLI prints it on the day `on` (the clock moved there, not waited for)."""
    capsys.readouterr()
    with time_machine_at(on):
        assert main(["--home", str(home), "review", "list", "--json", *options]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_deferral_ends_on_its_date_and_the_review_is_pending_again(
        deleted: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the table's cells on one line each
    (outcome,) = run_propose(deleted)
    until = datetime.now(UTC).date() + timedelta(days=30)
    code, output = on_terminal(cli(deleted, "review", "defer", str(outcome.review_id), "--reviewer", "ada",
                                   "--until", until.isoformat(), "--reason", "the owner is on leave"),
                               lambda phrase: phrase)
    assert code == 0 and f"until {until.isoformat()}" in output, output
    deferral = f"until {until.isoformat()}; the owner is on leave"
    (before,) = listed(deleted, until - timedelta(days=1), capsys)
    assert (before["status"], before["deferral"], before["deferred_until"]) == ("deferred", deferral,
                                                                                 until.isoformat())
    assert listed(deleted, until - timedelta(days=1), capsys, "--status", "pending") == []
    (back,) = listed(deleted, until, capsys, "--status", "pending")
    assert (back["id"], back["status"], back["deferral"]) == (outcome.review_id, "pending", deferral)
    assert listed(deleted, until, capsys, "--status", "deferred") == []
    capsys.readouterr()
    with time_machine_at(until):
        assert main(["--home", str(deleted), "review", "list"]) == 0
        assert main(["--home", str(deleted), "review", "show", str(outcome.review_id)]) == 0
    table, shown = capsys.readouterr().out.split("Review ", 1)
    assert "pending (was deferred)" in table
    assert f"Was deferred: {deferral}" in shown


def time_machine_at(day: date):  # noqa: ANN201 (time_machine's own type)
    import time_machine

    return time_machine.travel(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=1), tick=False)


def test_a_deferral_without_a_date_stays_deferred(deleted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (outcome,) = run_propose(deleted)
    with Ledger(config.load(deleted).store) as ledger:
        reviewer(ledger, deleted).defer(ReviewQueue(ledger), outcome.review_id, version=1, reason="ask me later")
    (still,) = listed(deleted, datetime.now(UTC).date() + timedelta(days=3650), capsys)
    assert (still["status"], still["deferral"], still["deferred_until"]) == ("deferred", "ask me later", None)


def test_a_deferral_to_a_day_already_come_is_refused_before_it_is_confirmed(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    today = datetime.now(UTC).date()
    code, output = on_terminal(cli(deleted, "review", "defer", str(outcome.review_id), "--reviewer", "ada",
                                   "--until", today.isoformat()), lambda phrase: phrase)
    assert code == 2 and "is not after today" in output and "Type `" not in output, output
    assert status(deleted, outcome.review_id) == "pending"
