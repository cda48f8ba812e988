"""The approval invariant tried as an attacker with write access to the ledger would (issue 13): each attack is
made for real on a real ledger, and nothing runs that the signed decision log does not approve, once."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fake_github import FakeGitHub
from fake_webhook import FakeWebhook
from http_fakes import Reply, Request
from ledger_reading import integrity_errors
from proposal_world import approve, outbox, queue, replace_reviewers, reviewer, run_propose, unguarded

from agents import executor
from tools.archive.archiving import archive
from tools.publish import PublishError
from tools.publish.hf_discussion import HubDiscussionPublisher
from tools.publish.outbox import OutboxPublisher
from weightkeeper import config
from weightkeeper.cli.reviewing import act, reviewer_add
from weightkeeper.ledger import Ledger
from weightkeeper.proposals import Finding
from weightkeeper.errors import WeightkeeperError
from weightkeeper.review import ApprovalRefused, Claim, ReviewError, ReviewQueue, decision_fields, reviewer_keys
from weightkeeper.signing import SigningKeyError, add_reviewer, signer

pytestmark = pytest.mark.usefixtures("on_each_store")


GITHUB_TOKEN = "ghp_wkTestToken0123456789abcdefABCDEF"


def refusals(ledger: Ledger) -> list[str]:
    return [json.loads(row[0])["reason"] for row in ledger.conn.execute(
        "SELECT detail FROM events WHERE kind = 'approval_refused' ORDER BY id")]


def executions(ledger: Ledger) -> int:
    return ledger.conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0]


def set_proposals(home: Path, lines: str) -> None:
    path = config.config_path(home)
    path.write_text(path.read_text(encoding="utf-8").replace('channel = "outbox"', lines), encoding="utf-8")


# -- authority comes from the signed decision log alone ------------------------------------------------------

@pytest.mark.parametrize("later", ["reject", "defer", "edit"])
def test_a_later_signed_reject_defer_or_edit_is_not_undone_by_resetting_the_status(deleted: Path, later: str) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    ledger, reviews = queue(deleted)
    with ledger:
        review, ada = reviews.get(outcome.review_id), reviewer(ledger, deleted)
        if later == "edit":
            ada.edit(reviews, review.id, version=1, title=review.draft.title, body=review.draft.body + "\nThanks.")
        else:
            getattr(ada, later)(reviews, review.id, version=1, reason="not this owner")
        ledger.conn.execute("UPDATE reviews SET status = 'approved' WHERE id = ?", (review.id,))
    (done,) = act(deleted)
    assert f"latest signed decision is {later}" in done["refused"]
    with Ledger(config.load(deleted).store) as ledger:
        assert executions(ledger) == 0 and f"latest signed decision is {later}" in refusals(ledger)[0]
    assert outbox(deleted) == []


def test_act_says_a_review_was_refused_and_where_to_read_why(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    with Ledger(config.load(deleted).store) as ledger:
        ledger.conn.execute("UPDATE reviews SET status = 'approved' WHERE id = ?", (outcome.review_id,))
    done = subprocess.run([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(deleted), "act"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == ("0 approved actions run; 1 review refused (see `weightkeeper ledger "
                                            "--kind approval_refused`)")


def test_an_edit_rolled_back_in_sql_does_not_revive_the_first_approval(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    ledger, reviews = queue(deleted)
    with ledger:
        review = reviews.get(outcome.review_id)
        original = ledger.conn.execute("SELECT draft FROM reviews WHERE id = ?", (review.id,)).fetchone()[0]
        reviewer(ledger, deleted).edit(reviews, review.id, version=1, title="Another title", body=review.draft.body)
        ledger.conn.execute("UPDATE reviews SET draft = ?, version = 1, status = 'approved' WHERE id = ?",
                            (original, review.id))
    (done,) = act(deleted)
    assert "says version 1, but its signed decisions hold 1 edit(s), so version 2" in done["refused"]
    assert outbox(deleted) == []


def test_one_refused_review_does_not_stop_the_others_in_an_act_run(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    ledger, reviews = queue(deleted)
    with ledger:
        review = reviews.get(outcome.review_id)
        reviewer(ledger, deleted)
        # A second review, forged whole: its row copied, an approval row inserted with no valid signature.
        forged = ledger.conn.execute(
            "INSERT INTO reviews (thread_id, interrupt_id, registry_id, model_id, event_id, recipient, priority,"
            " status, version, draft, evidence, findings, created_at, updated_at) SELECT thread_id || '-x',"
            " interrupt_id, registry_id, model_id, event_id, recipient, priority + 1, 'approved', 1, draft,"
            " evidence, findings, created_at, updated_at FROM reviews WHERE id = ? RETURNING id", (review.id,)).fetchone()[0]
        ledger.conn.execute(
            "INSERT INTO decisions (review_id, version, decision, action_index, payload_sha256, reviewer, channel,"
            " decided_at, signature) VALUES (?, 1, 'approve', 0, ?, 'ada', 'cli', '2026-01-01', ?)",
            (forged, review.payload_sha256(0), "00" * 64))
    approve(deleted, review.id)
    done = act(deleted)
    (refused,) = [row["refused"] for row in done if row["review_id"] == forged]
    assert "was not signed by an endorsed reviewer" in refused
    assert [row["already_published"] for row in done if row["review_id"] == review.id] == [False]
    assert len(outbox(deleted)) == 1


# -- once, and only once ------------------------------------------------------------------------------------

def test_a_used_approval_copied_runs_nothing_a_second_time(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    act(deleted)
    copy = ("INSERT INTO decisions (review_id, version, decision, action_index, payload_sha256, reviewer, channel,"
            " reason, overrides, previous, scheme, decided_at, signature) SELECT review_id, version, decision,"
            " action_index, payload_sha256, reviewer, channel, reason, overrides, previous, scheme, decided_at,"
            " signature FROM decisions WHERE decision = 'approve'")
    with Ledger(config.load(deleted).store) as ledger:
        with pytest.raises(integrity_errors(), match="append-only: this insert would replace|one_approval_per_action"):
            ledger.conn.execute(copy)
        # With the database's guards dropped, the copy goes in; the chain and the key still hold.
        unguarded(ledger, "decisions")
        ledger.conn.execute("DROP INDEX one_approval_per_action")
        ledger.conn.execute(copy)
        ledger.conn.execute("UPDATE reviews SET status = 'approved' WHERE id = ?", (outcome.review_id,))
    (done,) = act(deleted)
    assert "does not follow the review's previous decision" in done["refused"]
    with Ledger(config.load(deleted).store) as ledger:
        assert executions(ledger) == 1
    assert len(outbox(deleted)) == 1


@pytest.mark.parametrize(("field", "value"), [("review_id", 999), ("version", 2), ("payload_sha256", "0" * 64),
                                              ("previous", "ab" * 64), ("overrides", '["tone-00000000"]')])
def test_a_signature_made_for_another_review_version_payload_or_place_is_refused(deleted: Path, field: str,
                                                                                 value: object) -> None:
    """A genuine signature by ada, over the same approval with one field different, copied onto this one."""
    (outcome,) = run_propose(deleted)
    ledger, reviews = queue(deleted)
    with ledger:
        review, ada = reviews.get(outcome.review_id), reviewer(ledger, deleted)
        row = {"review_id": review.id, "version": 1, "decision": "approve", "action_index": 0,
               "payload_sha256": review.payload_sha256(0), "reviewer": "ada", "channel": "cli", "reason": None,
               "overrides": "[]", "decided_at": "2026-12-07T10:00:00.000000Z", "previous": ""}
        signature = ada.signer.sign(decision_fields({**row, field: value}))
        ledger.conn.execute(
            "INSERT INTO decisions (review_id, version, decision, action_index, payload_sha256, reviewer, channel,"
            " reason, overrides, previous, decided_at, signature) VALUES (:review_id, :version, :decision,"
            " :action_index, :payload_sha256, :reviewer, :channel, :reason, :overrides, :previous, :decided_at,"
            " :signature)", {**row, "signature": signature})
        ledger.conn.execute("UPDATE reviews SET status = 'approved' WHERE id = ?", (review.id,))
        with pytest.raises(ApprovalRefused, match="not signed by an endorsed reviewer"):
            executor.execute(ledger, deleted, review.id)
        assert executions(ledger) == 0
    assert outbox(deleted) == []


def test_a_reviewer_written_into_the_ledger_by_its_writer_cannot_approve(
        deleted: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    (outcome,) = run_propose(deleted)
    ledger, reviews = queue(deleted)
    with ledger:
        reviewer(ledger, deleted)  # ada, the ledger's first reviewer
        review = reviews.get(outcome.review_id)
        mallory = signer("mallory", deleted, create=True, directory=tmp_path_factory.mktemp("mallory-keys"))
        with pytest.raises(ReviewError, match="endorsed by a recorded reviewer"):
            add_reviewer(ledger, "mallory", mallory.public_key, endorser=mallory)
        row = {"name": "mallory", "public_key": mallory.public_key, "added_by": "mallory", "added_at": "2026"}
        ledger.conn.execute("INSERT INTO reviewers (name, public_key, added_by, added_at, signature)"
                            " VALUES (:name, :public_key, :added_by, :added_at, :signature)",
                            {**row, "signature": "00" * 64})
        from weightkeeper.deciding import HumanReviewer

        with pytest.raises(ReviewError, match="not a reviewer of this ledger"):
            HumanReviewer(mallory, "cli").approve(reviews, review.id, version=1,
                                                  payload_sha256s={0: review.payload_sha256(0)})
        row = {"review_id": review.id, "version": 1, "decision": "approve", "action_index": 0,
               "payload_sha256": review.payload_sha256(0), "reviewer": "mallory", "channel": "cli", "reason": None,
               "overrides": "[]", "decided_at": "2026-12-07T10:00:00.000000Z", "previous": ""}
        ledger.conn.execute(
            "INSERT INTO decisions (review_id, version, decision, action_index, payload_sha256, reviewer, channel,"
            " reason, overrides, previous, decided_at, signature) VALUES (:review_id, :version, :decision,"
            " :action_index, :payload_sha256, :reviewer, :channel, :reason, :overrides, :previous, :decided_at,"
            " :signature)", {**row, "signature": mallory.sign(decision_fields(row))})
        ledger.conn.execute("UPDATE reviews SET status = 'approved' WHERE id = ?", (review.id,))
        with pytest.raises(ApprovalRefused, match="not signed by an endorsed reviewer"):
            executor.execute(ledger, deleted, review.id)
    assert outbox(deleted) == []


# -- append-only for real -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "key", "change"), [
    ("events", "id", "kind = 'restored'"),
    ("decisions", "id", "decision = 'approve', reason = 'rewritten'"),
    ("executions", "id", "claimed_at = '1970-01-01'"),
    ("execution_results", "execution_id", "outcome = 'failed'"),
    ("reviewers", "name", "added_at = '1970-01-01'"),
])
def test_insert_or_replace_cannot_rewrite_an_append_only_row(deleted: Path, table: str, key: str, change: str) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    act(deleted)
    with Ledger(config.load(deleted).store) as ledger:
        conn = ledger.conn
        before = [tuple(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY {key}")]
        conn.execute(f"CREATE TEMP TABLE changed AS SELECT * FROM {table} ORDER BY {key} LIMIT 1")
        conn.execute(f"UPDATE changed SET {change}")
        # SQLite's replacing inserts, and PostgreSQL's upsert (an UPDATE, as SQLite's upsert is too).
        replacing = {"sqlite": [f"{verb} INTO {table} SELECT * FROM changed" for verb in ("INSERT OR REPLACE", "REPLACE")],
                     "postgres": [f"INSERT INTO {table} SELECT * FROM changed ON CONFLICT ({key}) DO UPDATE SET {change}"]}
        for attack in replacing[ledger.dialect]:
            with pytest.raises(integrity_errors(), match="append-only"):
                conn.execute(attack)
        assert [tuple(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY {key}")] == before


def test_insert_or_replace_of_an_execution_under_a_new_id_is_refused(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    act(deleted)
    replacing = {"sqlite": "INSERT OR REPLACE INTO executions (id, decision_id, idempotency_key, claimed_at)"
                           " SELECT id + 100, decision_id + 100, idempotency_key, claimed_at FROM executions",
                 "postgres": "INSERT INTO executions (id, decision_id, idempotency_key, claimed_at)"
                             " SELECT id + 100, decision_id + 100, idempotency_key, claimed_at FROM executions"
                             " ON CONFLICT (idempotency_key) DO UPDATE SET id = excluded.id"}
    with Ledger(config.load(deleted).store) as ledger:
        with pytest.raises(integrity_errors(), match="append-only"):
            ledger.conn.execute(replacing[ledger.dialect])
        assert executions(ledger) == 1


# -- critic errors block --------------------------------------------------------------------------------------

THREAT = Finding("error", "tone", "the draft threatens the owner and links https://evil.example/x")


@pytest.fixture
def threatening(deleted: Path) -> int:
    """A queued review whose draft the critic found an error in (as an obedient LLM's threatening draft)."""
    (outcome,) = run_propose(deleted)
    with Ledger(config.load(deleted).store) as ledger:
        ledger.conn.execute("UPDATE reviews SET findings = ? WHERE id = ?",
                            (json.dumps([THREAT.to_dict()]), outcome.review_id))
    return outcome.review_id


def test_a_draft_with_critic_errors_is_approved_only_with_each_error_overridden(deleted: Path,
                                                                               threatening: int) -> None:
    ledger, reviews = queue(deleted)
    with ledger:
        review, ada = reviews.get(threatening), reviewer(ledger, deleted)
        shown = {0: review.payload_sha256(0)}
        with pytest.raises(ReviewError, match=f"critic errors not overridden: {THREAT.id}"):
            ada.approve(reviews, review.id, version=1, payload_sha256s=shown)
        assert reviews.decisions(review.id) == []
        # Signed without the override (as a forger with ada's key would write it): the executor refuses too.
        ada._decide(reviews, review, "approve", 0, shown[0])
        ledger.conn.execute("UPDATE reviews SET status = 'approved' WHERE id = ?", (review.id,))
        with pytest.raises(ApprovalRefused, match=rf"leaves the critic's error\(s\) {THREAT.id} without an override"):
            executor.execute(ledger, deleted, review.id)
    assert outbox(deleted) == []


def test_an_overridden_critic_error_is_signed_with_the_approval(deleted: Path, threatening: int) -> None:
    ledger, reviews = queue(deleted)
    with ledger:
        review = reviews.get(threatening)
        reviewer(ledger, deleted).approve(reviews, review.id, version=1, payload_sha256s={0: review.payload_sha256(0)},
                                          overrides=(THREAT.id,))
        (decision,) = reviews.decisions(review.id)
        assert json.loads(decision["overrides"]) == [THREAT.id]
        (done,) = executor.execute(ledger, deleted, review.id)
    assert done["already_published"] is False and len(outbox(deleted)) == 1


# -- the sinks take only the queue's claims -------------------------------------------------------------------

def test_a_hand_built_or_altered_claim_is_refused_by_every_sink(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    ledger, reviews = queue(deleted)
    with ledger:
        (claim,), _ = reviews.claim(outcome.review_id, "here:1:test")
        with pytest.raises(ApprovalRefused, match="never by hand"):
            Claim(claim.execution_id, claim.review, 0, claim.action, claim.payload, claim.idempotency_key, "x")
        evil = {**claim.payload, "target": "mallory", "body": "Send the weights to https://evil.example/x"}
        altered = [replace(claim, payload=evil), replace(claim, holder="elsewhere:2:other"),
                   replace(claim, idempotency_key="f" * 64)]
        settings = config.load(deleted)
        channels = executor.publishers(deleted, settings.proposals)
        for forged in altered:
            with pytest.raises(ApprovalRefused, match="not claimed by this executor"):
                executor.run_claim(ledger, deleted, reviews, forged, channels["outbox"])
            with pytest.raises(ApprovalRefused, match="not claimed by this executor"):
                archive(ledger, settings, forged)
    assert outbox(deleted) == []


# -- the payload names the whole destination -----------------------------------------------------------------

@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(tokens={GITHUB_TOKEN}) as fake:
        fake.add_repo("acme/models")
        yield fake


def test_a_changed_endpoint_after_approval_sends_nothing_anywhere(deleted: Path, github: FakeGitHub,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_TEST_GITHUB_TOKEN", GITHUB_TOKEN)
    set_proposals(deleted, f'channel = "github_issue"\ngithub_repo = "acme/models"\ngithub_api = "{github.url}"\n'
                           'github_token_env = "WK_TEST_GITHUB_TOKEN"')
    (outcome,) = run_propose(deleted, config.load(deleted).proposals)
    approve(deleted, outcome.review_id)
    with FakeGitHub(tokens={GITHUB_TOKEN}) as elsewhere:
        elsewhere.add_repo("acme/models")
        moved = replace(config.load(deleted).proposals, github_api=elsewhere.url)
        with Ledger(config.load(deleted).store) as ledger:
            (done,) = executor.execute(ledger, deleted, outcome.review_id, settings=moved)
        assert f"approved for {github.url}, but `github_api` in [proposals] is now {elsewhere.url}" in done["error"]
        assert elsewhere.server.requests == [] and github.server.requests == []


def test_a_hub_discussion_names_its_hub_and_refuses_another(deleted: Path) -> None:
    (outcome,) = run_propose(deleted, config.ProposalSettings(channel="hf_discussion", hf_endpoint="https://hub.a"))
    ledger, reviews = queue(deleted)
    with ledger:
        (action,) = reviews.get(outcome.review_id).draft.actions
        assert action.parameters["endpoint"] == "https://hub.a"
        with pytest.raises(PublishError, match="approved for https://hub.a, but `hf_endpoint`"):
            HubDiscussionPublisher("https://hub.b", token_env="UNSET").publish(action.payload("t", "b"), "k" * 64)


# -- leases: two executors, and a crash ----------------------------------------------------------------------

def _act_at(home: str, url: str | None, start: multiprocessing.synchronize.Barrier) -> None:
    if url is not None:
        os.environ["WEIGHTKEEPER_DATABASE_URL"] = url
    start.wait()
    act(Path(home))


ROUNDS = {"sqlite": 50, "postgres": 10}  # each PostgreSQL round copies the database, a tenth of a second


@pytest.mark.slow
def test_two_act_processes_started_together_publish_each_approval_once(
        tmp_path_factory: pytest.TempPathFactory, deleted: Path, store: str | Path, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rounds = ROUNDS["postgres" if isinstance(store, str) else "sqlite"]
    with FakeWebhook() as webhook:
        set_proposals(deleted, f'channel = "webhook"\nwebhook_url = "{webhook.hook}"')
        (outcome,) = run_propose(deleted, config.load(deleted).proposals)
        approve(deleted, outcome.review_id)
        copies = tmp_path_factory.mktemp("homes")  # outside `deleted`, which is the test's tmp_path
        homes = [shutil.copytree(deleted, copies / f"home-{n}") for n in range(rounds)]
        if isinstance(store, str):  # and a copy of its database for each home
            database, server = store.rsplit("/", 1)[1], request.getfixturevalue("postgres_server")
            urls = [server.create_database(f"{database}_{n}", template=database) for n in range(rounds)]
        else:
            urls = [None] * rounds
        context = multiprocessing.get_context("fork")
        for home, url in zip(homes, urls):
            start = context.Barrier(2)
            pair = [context.Process(target=_act_at, args=(str(home), url, start)) for _ in range(2)]
            for process in pair:
                process.start()
            for process in pair:
                process.join(60)
                assert process.exitcode == 0
        posts = webhook.posts()
    # Every home holds the same approval, so one key: a home whose two executors both ran would post twice.
    assert len(posts) == rounds and len(webhook.delivered) == 1
    for home, url in zip(homes, urls):
        if url is not None:
            monkeypatch.setenv("WEIGHTKEEPER_DATABASE_URL", url)
        with Ledger(config.load(home).store) as ledger:
            assert executions(ledger) == 1
            assert ledger.conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'action_executed'").fetchone()[0] == 1


def _approve_at(home: str, review_id: int, name: str, start: multiprocessing.synchronize.Barrier,
                said: multiprocessing.Queue) -> None:
    start.wait()
    try:
        approve(Path(home), review_id, name)
        said.put((name, None))
    except ReviewError as exc:
        said.put((name, str(exc)))


def test_two_reviewers_approving_one_proposal_at_once_make_one_approval_and_the_other_is_told_why(
        deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    with Ledger(config.load(deleted).store) as ledger:
        reviewer(ledger, deleted)  # ada, the root, who endorses bob
    reviewer_add(deleted, "bob", by="ada", public_key=None)
    context = multiprocessing.get_context("fork")
    start, said = context.Barrier(2), context.Queue()
    pair = [context.Process(target=_approve_at, args=(str(deleted), outcome.review_id, name, start, said))
            for name in ("ada", "bob")]
    for process in pair:
        process.start()
    for process in pair:
        process.join(60)
        assert process.exitcode == 0
    answers = dict(said.get(timeout=5) for _ in pair)
    (approver,) = [name for name, refusal in answers.items() if refusal is None]
    (refusal,) = [refusal for refusal in answers.values() if refusal is not None]
    assert refusal == f"review {outcome.review_id} is approved: only a pending or deferred proposal can be approved"
    with Ledger(config.load(deleted).store) as ledger:
        decisions = ReviewQueue(ledger).decisions(outcome.review_id)
    assert [(row["decision"], row["reviewer"]) for row in decisions] == [("approve", approver)]


def test_a_second_executor_skips_an_action_a_live_one_holds_and_says_who(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    ledger, reviews = queue(deleted)
    with ledger:
        reviews.claim(outcome.review_id, "builder-7:4242:abcd")  # another host's executor, its lease live
        (done,) = executor.execute(ledger, deleted, outcome.review_id)
    assert done["skipped"].startswith("running in builder-7:4242 (host:pid)") and outbox(deleted) == []


def test_sigkill_between_claim_and_publish_is_recovered_under_the_same_key(deleted: Path) -> None:
    arrived, release = threading.Event(), threading.Event()
    with FakeWebhook() as webhook:
        answer = webhook.route

        def held(request: Request) -> Reply:  # the first POST waits until its sender was killed
            if not arrived.is_set():
                arrived.set()
                release.wait(30)
            return answer(request)

        webhook.server.route = held
        set_proposals(deleted, f'channel = "webhook"\nwebhook_url = "{webhook.hook}"')
        (outcome,) = run_propose(deleted, config.load(deleted).proposals)
        approve(deleted, outcome.review_id)
        child = multiprocessing.get_context("fork").Process(target=act, args=(deleted,))
        child.start()
        assert arrived.wait(60)
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        release.set()
        (done,) = act(deleted)
        keys = [post.headers["idempotency-key"] for post in webhook.posts()]
    assert child.exitcode == -signal.SIGKILL
    assert len(keys) == 2 and len(set(keys)) == 1 and len(webhook.delivered) == 1
    assert done["already_published"] is True
    with Ledger(config.load(deleted).store) as ledger:
        assert executions(ledger) == 1
        assert [tuple(row) for row in ledger.conn.execute("SELECT outcome FROM execution_results")] == [("done",)]


# -- keys stay out of the home --------------------------------------------------------------------------------

def test_a_reviewer_key_is_owner_only_and_never_inside_the_home(proposal_home: Path,
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    keys = tmp_path_factory.mktemp("ada-keys")
    own = signer("ada", proposal_home, create=True, directory=keys)
    (path,) = keys.iterdir()
    assert path.stat().st_mode & 0o777 == 0o600 and own.public_key not in path.read_text()
    with pytest.raises(SigningKeyError, match="is inside the home"):
        signer("ada", proposal_home, create=True, directory=proposal_home / "keys")
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match="can be read by others"):
        signer("ada", proposal_home, directory=keys)
    assert not list(proposal_home.rglob("*.ed25519"))


def test_a_new_reviewer_counts_only_once_a_recorded_one_endorsed_them(proposal_home: Path) -> None:
    with Ledger(config.load(proposal_home).store) as ledger:
        reviewer(ledger, proposal_home)  # ada, the first
    key = reviewer_add(proposal_home, "bob", by="ada", public_key=None)
    with pytest.raises(ReviewError, match="endorsed by a recorded reviewer's key"):
        reviewer_add(proposal_home, "carol", by=None, public_key=None)  # carol endorsing herself
    with Ledger(config.load(proposal_home).store) as ledger:
        assert reviewer_keys(ledger.conn) == {"ada": reviewer(ledger, proposal_home).signer.public_key, "bob": key}


def test_the_outbox_creates_a_letter_exclusively_under_its_key(tmp_path: Path) -> None:
    """Two publishers of one key at once (two homes sharing an outbox, say): one writes, the other finds it."""
    letter = {"target": "acme", "title": "Preserving acme/med-ft", "body": "Hello acme,\n"}
    for round_ in range(100):
        publisher, start = OutboxPublisher(tmp_path / f"outbox-{round_}"), threading.Barrier(2)
        results: list[dict] = []

        def publish() -> None:
            start.wait()
            results.append(publisher.publish(letter, f"{round_:064d}"))

        pair = [threading.Thread(target=publish) for _ in range(2)]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join()
        assert sorted(result["already_published"] for result in results) == [False, True], round_
        assert [path.name for path in (tmp_path / f"outbox-{round_}").iterdir()] == [Path(results[0]["path"]).name]


def test_an_endorser_without_a_key_here_creates_no_key_for_the_new_reviewer(
        proposal_home: Path, reviewer_keys_dir: Path) -> None:
    with pytest.raises(SigningKeyError, match="there is no signing key for reviewer 'nobody'"):
        reviewer_add(proposal_home, "eve", by="nobody", public_key=None)
    assert list(reviewer_keys_dir.iterdir()) == []


# -- the witness: a cut end of a chain, and a replaced root reviewer ----------------------------------------

def withdraw(ledger: Ledger, home: Path, review_id: int, decision: str) -> str:
    """ada's signed reject, defer or edit of version 1 of the review; returns its draft as it was before."""
    reviews, ada = ReviewQueue(ledger), reviewer(ledger, home)
    draft = ledger.conn.execute("SELECT draft FROM reviews WHERE id = ?", (review_id,)).fetchone()[0]
    if decision == "edit":
        ada.edit(reviews, review_id, version=1, title="Another title", body=reviews.get(review_id).draft.body)
    else:
        getattr(ada, decision)(reviews, review_id, version=1, reason="ask the owner first")
    return draft


def cut(ledger: Ledger, review_id: int, decision: str, draft: str, status: str = "approved") -> None:
    """Delete the review's newest decisions from the first `decision` on, and put the review back as it was."""
    unguarded(ledger, "decisions")
    ledger.conn.execute("DELETE FROM decisions WHERE review_id = ? AND id >= (SELECT MIN(id) FROM decisions"
                        " WHERE review_id = ? AND decision = ?)", (review_id, review_id, decision))
    ledger.conn.execute("UPDATE reviews SET draft = ?, version = 1, status = ? WHERE id = ?", (draft, status, review_id))


GONE = "decision(s) of review {} seen on this machine are gone from the ledger"


@pytest.mark.parametrize("withdrawal", ["reject", "edit"])
def test_a_withdrawal_cut_from_the_end_of_the_chain_does_not_revive_the_approval(deleted: Path,
                                                                                 withdrawal: str) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    with Ledger(config.load(deleted).store) as ledger:
        cut(ledger, outcome.review_id, withdrawal, withdraw(ledger, deleted, outcome.review_id, withdrawal))
    (done,) = act(deleted)
    assert GONE.format(outcome.review_id) in done["refused"] and "reviewer trust --reset" in done["refused"]
    with Ledger(config.load(deleted).store) as ledger:
        assert executions(ledger) == 0 and GONE.format(outcome.review_id) in refusals(ledger)[0]
    assert outbox(deleted) == []


def test_a_reviewer_cannot_decide_on_top_of_a_cut_chain(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    ledger, reviews = queue(deleted)
    with ledger:
        cut(ledger, outcome.review_id, "defer", withdraw(ledger, deleted, outcome.review_id, "defer"), "pending")
        review = reviews.get(outcome.review_id)
        with pytest.raises(ApprovalRefused, match=re.escape(GONE.format(review.id))):
            reviewer(ledger, deleted).approve(reviews, review.id, version=1,
                                              payload_sha256s={0: review.payload_sha256(0)})
        assert reviews.decisions(review.id) == [] and GONE.format(review.id) in refusals(ledger)[0]
    (done,) = act(deleted)  # `act` verifies the logs of reviews it has nothing to run for, too
    assert GONE.format(review.id) in done["refused"] and outbox(deleted) == []


def test_a_decision_rolled_back_is_never_anchored(deleted: Path) -> None:
    """Two actions approved in one transaction that then fails: the witness must not hold the first, which
    the ledger never kept (it would refuse every later decision of the review as cut)."""
    (outcome,) = run_propose(deleted)
    ledger, reviews = queue(deleted)
    with ledger:
        draft = json.loads(ledger.conn.execute("SELECT draft FROM reviews WHERE id = ?", (outcome.review_id,))
                           .fetchone()[0])
        ledger.conn.execute("UPDATE reviews SET draft = ? WHERE id = ?",
                            (json.dumps({**draft, "actions": draft["actions"] * 2}), outcome.review_id))
        review, ada = reviews.get(outcome.review_id), reviewer(ledger, deleted)
        shown = review.payload_sha256(0)
        with pytest.raises(IndexError):  # actions 0 and 1 are signed, then there is no action 2
            ada.approve(reviews, review.id, version=1, payload_sha256s={0: shown, 1: shown, 2: shown})
        assert reviews.decisions(review.id) == []
        ada.approve(reviews, review.id, version=1, payload_sha256s={0: shown, 1: shown})
        assert [row["action_index"] for row in reviews.decisions(review.id)] == [0, 1]


def test_a_replaced_reviewers_table_cannot_approve_once_the_ledger_was_seen(
        deleted: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    (outcome,) = run_propose(deleted)
    with Ledger(config.load(deleted).store) as ledger:
        ada = reviewer(ledger, deleted)  # as `weightkeeper init` does: ada is the root, pinned in her witness
        replace_reviewers(ledger, deleted, tmp_path_factory.mktemp("mallory-keys"), outcome.review_id)
    (done,) = act(deleted)
    from weightkeeper.witness import fingerprint

    assert "root reviewer" in done["refused"] and fingerprint(ada.signer.public_key) in done["refused"]
    assert "reviewer trust --reset" in done["refused"]
    with Ledger(config.load(deleted).store) as ledger:
        assert executions(ledger) == 0 and "root reviewer" in refusals(ledger)[0]
    assert outbox(deleted) == []


def test_a_ledger_first_verified_here_pins_its_root_and_says_so_once(
        deleted: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    from weightkeeper.deciding import HumanReviewer
    from weightkeeper.signing import enroll
    from weightkeeper.witness import fingerprint

    (first,) = run_propose(deleted)
    ledger, reviews = queue(deleted)
    with ledger:  # ada decides on another machine (her keys elsewhere); this user has not seen the ledger
        ada = HumanReviewer(enroll(ledger, deleted, "ada", directory=tmp_path_factory.mktemp("ada-keys")), "cli")
        ada.approve(reviews, first.review_id, version=1,
                    payload_sha256s={0: reviews.get(first.review_id).payload_sha256(0)})
    capsys.readouterr()
    act(deleted)
    said = capsys.readouterr().err
    assert "pinned" in said and fingerprint(ada.signer.public_key) in said and len(outbox(deleted)) == 1
    act(deleted)
    assert "pinned" not in capsys.readouterr().err
    with Ledger(config.load(deleted).store) as ledger:
        replace_reviewers(ledger, deleted, tmp_path_factory.mktemp("mallory-keys"), first.review_id)
        ledger.conn.execute("UPDATE reviews SET status = 'approved' WHERE id = ?", (first.review_id,))
    (done,) = act(deleted)
    assert "root reviewer" in done["refused"] and len(outbox(deleted)) == 1


def test_the_witness_is_owner_only_and_never_inside_the_home(deleted: Path, reviewer_keys_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    act(deleted)
    witness = reviewer_keys_dir / "witness.json"
    assert witness.stat().st_mode & 0o777 == 0o600 and reviewer_keys_dir.stat().st_mode & 0o077 == 0
    with Ledger(config.load(deleted).store) as ledger:
        assert str(ledger.path if ledger.url else ledger.path.resolve()) in witness.read_text()
        if ledger.url is None:  # a PostgreSQL ledger has no folder a keys folder could be inside
            monkeypatch.setenv("WEIGHTKEEPER_KEYS_DIR", str(deleted / "keys"))
            with pytest.raises(WeightkeeperError, match="is inside the folder of the ledger"):
                ReviewQueue(ledger).approvals(ReviewQueue(ledger).get(outcome.review_id))
    assert not (deleted / "keys").exists()
    witness.chmod(0o644)
    monkeypatch.setenv("WEIGHTKEEPER_KEYS_DIR", str(reviewer_keys_dir))
    with Ledger(config.load(deleted).store) as ledger:
        reviews = ReviewQueue(ledger)
        with pytest.raises(WeightkeeperError, match="can be read or written by others"):
            reviews.chain(reviews.get(outcome.review_id))
        witness.chmod(0o600)
        witness.write_text('{"ledgers": {"/x": {"reviews": {"1": {"length": 1}}}}}')
        with pytest.raises(WeightkeeperError, match="cannot be read .* remove it to start anew"):
            reviews.chain(reviews.get(outcome.review_id))


def test_a_decision_made_with_another_reviewers_keys_is_anchored_here_once_verified(
        deleted: Path, reviewer_keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A shared ledger: bob decides from his own keys folder (his own witness); ada's sees it when she acts."""
    from weightkeeper.deciding import HumanReviewer

    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)  # ada, her keys (and witness) in this user's folder
    bobs = tmp_path_factory.mktemp("bob-keys")
    bob = signer("bob", deleted, create=True, directory=bobs)
    reviewer_add(deleted, "bob", by="ada", public_key=bob.public_key)
    ledger, reviews = queue(deleted)
    with ledger:
        draft = ledger.conn.execute("SELECT draft FROM reviews WHERE id = ?", (outcome.review_id,)).fetchone()[0]
        HumanReviewer(bob, "cli").reject(reviews, outcome.review_id, version=1, reason="not yet")
        (reject,) = [row for row in reviews.decisions(outcome.review_id) if row["decision"] == "reject"]
    assert reject["signature"] in (bobs / "witness.json").read_text()
    assert reject["signature"] not in (reviewer_keys_dir / "witness.json").read_text()
    assert act(deleted) == []  # nothing to run, but the chain is verified here: bob's reject is anchored
    assert reject["signature"] in (reviewer_keys_dir / "witness.json").read_text()
    with Ledger(config.load(deleted).store) as ledger:
        cut(ledger, outcome.review_id, "reject", draft)
    (done,) = act(deleted)
    assert GONE.format(outcome.review_id) in done["refused"] and outbox(deleted) == []
