"""`weightkeeper worker`: procrastinate workers sharing one PostgreSQL job queue and the home's ledger."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fake_hub import FakeHub, _one
from fake_webhook import FakeWebhook
from http_fakes import Reply, Request

from weightkeeper import config
from weightkeeper.cli.main import main
from weightkeeper.errors import ConfigError, LedgerError
from weightkeeper.ledger import Ledger


def write_config(home: Path, text: str) -> Path:
    home.mkdir(exist_ok=True)
    (home / "weightkeeper.toml").write_text(text, encoding="utf-8")
    return home


def test_the_worker_settings_and_the_store_they_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from weightkeeper.cli.workers import store_url

    monkeypatch.delenv(config.DATABASE_URL_ENV, raising=False)
    home = write_config(tmp_path, '[store]\nurl = "postgresql://wk@db.example.org/wk"\n\n'
                                  '[workers]\nstall_seconds = 5\n')
    settings = config.load(home)
    assert settings.workers.stall_seconds == 5.0 and store_url(settings) == "postgresql://wk@db.example.org/wk"
    monkeypatch.setenv(config.DATABASE_URL_ENV, "postgresql://wk:pw@other/wk")
    assert store_url(settings) == "postgresql://wk:pw@other/wk"


@pytest.mark.parametrize(("text", "message"), [
    ("[workers]\nstall_seconds = 0\n", "between 1 and 86400"),
    ('[workers]\nstall_seconds = "60"\n', "between 1 and 86400"),
    ("[workers]\nheartbeat = 5\n", r"\[workers\] takes `stall_seconds`"),
])
def test_bad_worker_settings_say_what_to_do(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(write_config(tmp_path, text))


def hub_config(hub_url: str, authors: list[str], store: str | None, *, stall: float = 2, extra: str = "") -> str:
    """A Hub registry of `authors`, a shard each; its ledger in the PostgreSQL `store` (None: the home's SQLite)."""
    return ('[ledger]\npath = "ledger.sqlite3"\n\n[scan]\ncommit_records = 1\n\n'
            + (f'[store]\nurl = "{store}"\n\n' if store else '')
            + f'[workers]\nstall_seconds = {stall}\n\n{extra}'
            f'[registries.hub]\nkind = "hf"\nendpoint = "{hub_url}"\nauthors = {json.dumps(authors)}\n'
            'schedule = "0 0 1 1 *"\n')


def test_the_planner_queues_each_due_shard_once_and_a_scan_already_queued_is_not_queued_again(
        tmp_path: Path, postgres_url: str) -> None:
    from procrastinate.schema import SchemaManager

    from weightkeeper.ledger.jobs import apply_schema
    from weightkeeper.cli.workers import Workers

    home = write_config(tmp_path, hub_config("http://127.0.0.1:9", ["acme", "beta", "gamma"], postgres_url))
    assert apply_schema(postgres_url, SchemaManager.get_schema())
    assert not apply_schema(postgres_url, SchemaManager.get_schema()), "applied once"
    workers = Workers(home)

    async def plan_twice() -> tuple[str, str, list]:
        async with workers.app.open_async():
            first, second = await workers.plan_now(), await workers.plan_now()
            return first, second, await workers.app.job_manager.list_jobs_async(task="scan")

    first, second, jobs = asyncio.run(plan_twice())
    assert first == "planned 3 scan(s) (hub/acme, hub/beta, hub/gamma) and 0 approved review(s)"
    assert second == "planned 0 scan(s) and 0 approved review(s)"
    assert sorted((job.lock, job.queueing_lock, job.task_kwargs["registry"]) for job in jobs) == [
        ("scan:hub/acme", "scan:hub/acme", "hub/acme"), ("scan:hub/beta", "scan:hub/beta", "hub/beta"),
        ("scan:hub/gamma", "scan:hub/gamma", "hub/gamma")]


def test_an_interrupted_scan_is_due_at_once_and_a_failed_one_waits_for_its_schedule(
        tmp_path: Path, postgres_url: str) -> None:
    from weightkeeper.cli.workers import due_work

    with FakeHub(page_size=2) as hub:
        hub.add("acme/a")
        hub.add("beta/a")
        home = write_config(tmp_path, hub_config(hub.url, ["acme", "beta", "gamma"], postgres_url).replace(
            'schedule = "0 0 1 1 *"', 'schedule = "0 * * * *"'))
        assert main(["--home", str(home), "scan", "hub/acme", "hub/beta"]) == 0
    with Ledger(config.load(home).store) as ledger, ledger.transaction() as conn:
        conn.execute("UPDATE scans SET status = 'failed', phase = 'listing' WHERE id = 1")
        conn.execute("UPDATE scans SET status = 'interrupted', phase = 'listing' WHERE id = 2")
        started = conn.execute("SELECT started_at FROM scans WHERE id = 1").fetchone()[0]
    began = datetime.fromisoformat(started).astimezone()
    assert due_work(home, set(), began).scans == ["hub/beta", "hub/gamma"]
    assert due_work(home, {"hub/beta"}, began).scans == ["hub/gamma"], "not while its job runs"
    assert due_work(home, set(), began.replace(minute=0, second=0) + timedelta(hours=1)).scans == [
        "hub/acme", "hub/beta", "hub/gamma"]


def test_an_approved_review_is_planned_until_its_actions_ran_or_failed(tmp_path: Path, postgres_url: str) -> None:
    from agents import executor
    from proposal_world import approve, model, run_propose, scan_twice
    from weightkeeper.cli.workers import due_work

    with FakeWebhook(token="the-receivers-own") as webhook:  # we send none: refused, not retried
        home = write_config(tmp_path, f'[store]\nurl = "{postgres_url}"\n\n'
                                      f'[proposals]\nchannel = "webhook"\nwebhook_url = "{webhook.hook}"\n')
        scan_twice(home, [model("acme/med-ft"), model("acme/other")], [model("acme/other")])
        (outcome,) = run_propose(home, config.load(home).proposals)
        now = datetime.now().astimezone()
        assert due_work(home, set(), now).resumes == []
        approve(home, outcome.review_id)
        ((review_id, thread, recipient),) = due_work(home, set(), now).resumes
        with Ledger(config.load(home).store) as ledger:
            (done,) = executor.execute(ledger, home, review_id)
        assert "401" in done["error"] and review_id == outcome.review_id and thread and recipient == "acme"
        assert due_work(home, set(), now).resumes == [], "a failed action is not run again"


@pytest.mark.parametrize(("memory", "drafts_apart"), [
    ('url = "http://127.0.0.1:8000"', True), ("enabled = false", True), ("", False)], ids=["server", "off", "embedded"])
def test_a_drafting_job_is_locked_by_its_letter_unless_the_memory_is_an_embedded_folder(
        tmp_path: Path, memory: str, drafts_apart: bool) -> None:
    from weightkeeper.cli.workers import PROPOSE_LOCK, drafting_lock

    settings = config.load(write_config(tmp_path, f"[memory]\n{memory}\n")).memory
    assert drafting_lock(settings, "acme") == ("letter:acme" if drafts_apart else PROPOSE_LOCK)


def test_after_a_scan_one_drafting_job_per_letter_is_queued_under_the_lock_its_resume_takes_too(
        tmp_path: Path, postgres_url: str) -> None:
    from procrastinate.schema import SchemaManager

    from proposal_world import approve, model, run_propose, scan_twice
    from weightkeeper.cli.workers import Workers
    from weightkeeper.ledger.jobs import apply_schema

    home = write_config(tmp_path, f'[store]\nurl = "{postgres_url}"\n\n[memory]\nurl = "http://127.0.0.1:9"\n')
    scan_twice(home, [model(name) for name in ("acme/a", "acme/b", "beta/a", "gamma/a", "kept/a")], [model("kept/a")])
    (first,) = run_propose(home, config.load(home).proposals, model="acme/a")
    approve(home, first.review_id)  # acme/b's draft joins this letter, whose approved actions wait to run
    ((thread,),) = rows(home, "SELECT thread_id FROM reviews WHERE id = ?", first.review_id)
    apply_schema(postgres_url, SchemaManager.get_schema())
    workers = Workers(home)

    async def defer_twice_and_plan() -> tuple[list[str], list[str], list]:
        async with workers.app.open_async():
            queued, again = await workers.defer_drafts(), await workers.defer_drafts()
            await workers.plan_now()
            return queued, again, await workers.app.job_manager.list_jobs_async()

    queued, again, jobs = asyncio.run(defer_twice_and_plan())
    assert queued == ["acme", "beta", "gamma"] and again == [], "one job per letter; a waiting one is not queued again"
    assert sorted((job.task_name, job.lock, job.queueing_lock, job.task_kwargs) for job in jobs
                  if job.task_name != "scan") == [
        ("propose", "letter:acme", "draft:acme", {"recipient": "acme"}),
        ("propose", "letter:beta", "draft:beta", {"recipient": "beta"}),
        ("propose", "letter:gamma", "draft:gamma", {"recipient": "gamma"}),
        ("resume", "letter:acme", f"thread:{thread}", {"review_id": first.review_id})]


def test_letters_drafted_at_once_in_a_new_database_make_the_checkpoints_tables_once(postgres_url: str) -> None:
    import psycopg

    from weightkeeper.ledger import checkpoints

    async def open_saver(ledger: Ledger) -> None:
        async with checkpoints.saver(ledger, Path("unused")):
            pass

    async def open_four() -> None:
        ledgers = [Ledger(postgres_url) for _ in range(4)]
        try:
            await asyncio.gather(*(open_saver(ledger) for ledger in ledgers))
        finally:
            for ledger in ledgers:
                ledger.close()

    asyncio.run(open_four())  # without taking turns: a UniqueViolation on checkpoint_migrations
    with psycopg.connect(postgres_url) as conn:
        ran, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT v) FROM checkpoint_migrations").fetchone()
    assert ran == distinct > 0, "each migration ran once"


def test_a_stalled_workers_job_is_queued_again_unless_its_work_already_is(tmp_path: Path, postgres_url: str) -> None:
    import psycopg
    from procrastinate.schema import SchemaManager

    from weightkeeper.cli.workers import Workers, scan_lock
    from weightkeeper.ledger.jobs import apply_schema

    home = write_config(tmp_path, hub_config("http://127.0.0.1:9", ["acme", "beta"], postgres_url))
    apply_schema(postgres_url, SchemaManager.get_schema())
    workers = Workers(home)

    async def silent_worker_with_two_scans() -> tuple[str, list[tuple[str, str]]]:
        async with workers.app.open_async():
            manager = workers.app.job_manager
            await workers.plan_now()
            silent = await manager.register_worker()
            assert await manager.fetch_job(queues=None, worker_id=silent) is not None
            assert await manager.fetch_job(queues=None, worker_id=silent) is not None
            # hub/beta's scan is queued again meanwhile (by `worker --once`, say): its queueing lock is taken.
            await workers.scan.configure(lock=scan_lock("hub/beta"), queueing_lock=scan_lock("hub/beta")).defer_async(
                registry="hub/beta")
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 minute'")
            line = await workers.recover_now()
            jobs = await manager.list_jobs_async(task="scan")
            return line, sorted((job.task_kwargs["registry"], str(job.status)) for job in jobs)

    line, jobs = asyncio.run(silent_worker_with_two_scans())
    assert line.startswith("2 stalled job(s) taken up again (scan[")
    assert jobs == [("hub/acme", "todo"), ("hub/beta", "aborted"), ("hub/beta", "todo")]


def test_a_scan_job_whose_registry_is_being_scanned_elsewhere_is_skipped_by_the_lease(
        tmp_path: Path, postgres_url: str) -> None:
    """The second line behind the queueing lock: a scan started outside the queue (`weightkeeper scan`, `watch`)."""
    from weightkeeper.cli.workers import Workers

    home = write_config(tmp_path, hub_config("http://127.0.0.1:9", ["acme"], postgres_url))
    shard = config.load(home).scanned()["hub/acme"]
    with Ledger(config.load(home).store) as ledger, ledger.scan_lease(
            ledger.registry_id(shard.name, shard.kind, shard.location), shard.name):
        line = asyncio.run(Workers(home)._scan("hub/acme"))
    assert line.startswith("hub/acme: not scanned (skipped)") and "is being scanned by" in line


def test_a_planned_scan_whose_registry_was_scanned_since_it_was_planned_is_skipped(
        tmp_path: Path, postgres_url: str) -> None:
    """The planner lists the running scans, then queues: a scan that starts in between is queued again (its queueing
    lock covers waiting jobs only). That job finds the registry no longer due and scans nothing."""
    from weightkeeper.cli.workers import Workers

    with FakeHub(page_size=2) as hub:
        hub.add("acme/a")
        home = write_config(tmp_path, hub_config(hub.url, ["acme"], postgres_url))
        assert main(["--home", str(home), "scan", "hub/acme"]) == 0
        line = asyncio.run(Workers(home)._scan("hub/acme", planned=True))
        assert line.startswith("hub/acme: not scanned (skipped)") and "not due: scanned since it was planned" in line
        assert rows(home, "SELECT COUNT(*) FROM scans") == [(1,)]
        line = asyncio.run(Workers(home)._scan("hub/acme"))  # queued by hand (defer_scan): scanned whenever due
        assert line.startswith("hub/acme: scan 2 complete")


def test_worker_once_runs_the_due_scans_and_exits(tmp_path: Path, postgres_url: str,
                                                  capsys: pytest.CaptureFixture) -> None:
    with FakeHub(page_size=2) as hub:
        for name in ("acme/a", "acme/b", "acme/c", "beta/a"):
            hub.add(name)
        home = write_config(tmp_path, hub_config(hub.url, ["acme", "beta"], postgres_url, extra=(
            "[proposals]\nauto_propose = true\n\n[memory]\nenabled = false\n\n")))
        assert main(["--home", str(home), "worker", "--once"]) == 0
        first = capsys.readouterr().out
        ours = signal.signal(signal.SIGTERM, handler := lambda *_: None)
        try:
            assert main(["--home", str(home), "worker", "--once"]) == 0
            assert signal.getsignal(signal.SIGTERM) is handler, "the worker put the process's handler back"
        finally:
            signal.signal(signal.SIGTERM, ours)
        second = capsys.readouterr().out
    assert "created the job queue's tables" in first and "planned 2 scan(s) (hub/acme, hub/beta)" in first
    assert "scan[" in first and "(planned=True, registry='hub/acme'): hub/acme: scan 1 complete — 3 models in 2 pages" in first
    assert "(planned=True, registry='hub/beta'): hub/beta: scan 2 complete — 1 model in 1 page" in first
    assert "propose[" not in first, "no model vanished: no letter to draft"
    assert "created" not in second and "planned 0 scan(s)" in second and "scan[" not in second


def test_the_worker_needs_a_store_and_says_where_to_set_it(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.DATABASE_URL_ENV, raising=False)
    home = write_config(tmp_path, "")
    assert main(["--home", str(home), "worker", "--once"]) == 2
    assert "set `url` in [store]" in capsys.readouterr().err


# -- real workers, killed -------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
AUTHORS = ["acme", "beta", "gamma", "delta"]
MODELS_PER_AUTHOR = 6  # 3 pages of 2, each committed alone
PAGE_SECONDS = 0.25
TIMEOUT = 90.0


class SlowHub(FakeHub):
    """A Hub whose listing pages take a while (so a kill lands mid-scan), counting the listings of each author
    in flight at once."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.page_seconds = PAGE_SECONDS
        self.in_flight: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()
        self.lock = threading.Lock()

    def _list(self, request: Request, orgs: set[str] | None) -> Reply:
        author = _one(request.query, "author") or ""
        with self.lock:
            self.in_flight[author] += 1
            self.most_at_once[author] = max(self.most_at_once[author], self.in_flight[author])
        try:
            time.sleep(self.page_seconds)
            with self.lock:
                return super()._list(request, orgs)
        finally:
            with self.lock:
                self.in_flight[author] -= 1


def start_worker(home: Path, *extra: str) -> subprocess.Popen:
    # A session of its own: the kill takes the worker and its scan's read-ahead child, as a machine's loss would.
    return subprocess.Popen([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), "worker", *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def kill(worker: subprocess.Popen) -> str:
    os.killpg(worker.pid, signal.SIGKILL)
    out, _ = worker.communicate(timeout=20)
    return out


def stop(worker: subprocess.Popen) -> str:
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, out
    return out


def poll(what: Callable[[], Any], message: str, until: float = TIMEOUT) -> Any:
    started = time.monotonic()
    while time.monotonic() - started < until:
        try:
            found = what()
        except LedgerError:  # the ledger not made yet
            found = None
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting until {message}")


def rows(home: Path, sql: str, *params: Any) -> list[tuple]:
    """What the home's ledger (its store: SQLite or PostgreSQL) answers to `sql`."""
    with Ledger.for_reading(config.load(home).store) as ledger:
        return [tuple(row) for row in ledger.conn.execute(sql, params)]


def recorded_events(home: Path) -> Counter[tuple[str, str | None, str]]:
    """The ledger's events as (kind, model name, detail), details compared as JSON values (each backend writes
    its own JSON text)."""
    return Counter((kind, name, json.dumps(json.loads(detail), sort_keys=True)) for kind, name, detail in rows(
        home, "SELECT e.kind, m.name, e.detail FROM events e LEFT JOIN models m ON m.id = e.model_id"))


@pytest.mark.slow
def test_two_workers_scan_every_shard_once_though_one_is_killed_mid_scan(tmp_path: Path, postgres_url: str) -> None:
    with SlowHub(page_size=2) as hub:
        for author in AUTHORS:
            for i in range(MODELS_PER_AUTHOR):
                hub.add(f"{author}/model-{i}", downloads=i)
        home = write_config(tmp_path / "team", hub_config(hub.url, AUTHORS, postgres_url))
        first = start_worker(home)
        second = start_worker(home)
        # Mid-scan: a shard's listing has committed a page and the first worker holds its lease.
        (registry, pages), = poll(lambda: rows(
            home, "SELECT r.name, s.pages FROM scans s JOIN registries r ON r.id = s.registry_id"
                    " JOIN scan_leases l ON l.registry_id = r.id"
                    " WHERE s.phase = 'listing' AND s.pages >= 1 AND l.holder LIKE ? LIMIT 1",
            f"%:{first.pid}:%"), "the first worker is mid-scan")
        kill(first)
        scans = poll(lambda: (found := rows(home, "SELECT r.name, s.status, s.attempts FROM scans s JOIN registries r"
                                                    " ON r.id = s.registry_id ORDER BY r.name")) and len(found) == len(
            AUTHORS) and all(status == "complete" for _, status, _ in found) and found,
            "every shard's scan is complete")
        log = stop(second)
        hub.page_seconds = 0
        clean = write_config(tmp_path / "clean", hub_config(hub.url, AUTHORS, None))
        assert main(["--home", str(clean), "scan"]) == 0

    assert [name for name, _, _ in scans] == sorted(f"hub/{author}" for author in AUTHORS)
    assert dict((name, attempts) for name, _, attempts in scans)[registry] == 2, "resumed, not started again"
    assert recorded_events(home) == recorded_events(clean)
    assert sum(count for (kind, _, _), count in recorded_events(home).items() if kind == "appeared") == (
        len(AUTHORS) * MODELS_PER_AUTHOR)
    assert set(hub.most_at_once.values()) == {1}, "no author was listed by two workers at once"
    assert "stalled job(s) taken up again (scan[" in log and f"'{registry}'" in log, log


@pytest.mark.slow
def test_sigterm_ends_a_scan_after_its_page_and_the_next_run_resumes_it(tmp_path: Path, postgres_url: str) -> None:
    with SlowHub(page_size=2) as hub:
        for i in range(12):
            hub.add(f"acme/model-{i:02d}")
        home = write_config(tmp_path, hub_config(hub.url, ["acme"], postgres_url))
        worker = start_worker(home)
        poll(lambda: rows(home, "SELECT 1 FROM scans WHERE pages >= 1"), "a page is committed")
        log = stop(worker)
        (status, pages), = rows(home, "SELECT status, pages FROM scans")
        assert status == "interrupted" and pages < 6 and "scan 1 interrupted" in log and "worker stopped" in log
        assert "letters are drafted one at a time" in log and "set `url` in [memory]" in log, "an embedded memory"
        assert rows(home, "SELECT COUNT(*) FROM models") == [(pages * 2,)], "every committed page, no half page"
        hub.page_seconds = 0
        assert main(["--home", str(home), "worker", "--once"]) == 0
    assert rows(home, "SELECT status, attempts, models_seen FROM scans") == [("complete", 2, 12)]


class SlowWebhook(FakeWebhook):
    """A receiver that takes a while to act on a delivery (so a kill lands while the POST is in flight), one
    delivery at a time, as a receiver's database serialises its idempotency keys."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.lock = threading.Lock()

    def route(self, request: Request) -> Reply:
        self.arrived.set()
        with self.lock:
            time.sleep(1.0)
            return super().route(request)


@pytest.mark.slow
def test_an_approved_publish_whose_worker_is_killed_mid_post_is_published_once_by_another(
        tmp_path: Path, postgres_url: str) -> None:
    from proposal_world import approve, model, run_propose, scan_twice

    with SlowWebhook() as webhook:
        home = write_config(tmp_path, f'[store]\nurl = "{postgres_url}"\n\n[workers]\nstall_seconds = 2\n\n'
                                      f'[proposals]\nchannel = "webhook"\nwebhook_url = "{webhook.hook}"\n')
        scan_twice(home, [model("acme/med-ft"), model("acme/other")], [model("acme/other")])
        (outcome,) = run_propose(home, config.load(home).proposals)
        approve(home, outcome.review_id)
        first = start_worker(home)
        posted = webhook.arrived.wait(TIMEOUT)
        first_log = kill(first)
        assert posted, f"the first worker posts:\n{first_log}"
        log = stop_when(start_worker(home), lambda: rows(home, "SELECT 1 FROM events WHERE kind = 'action_executed'"))
    assert len(webhook.posts()) == 2, "the killed worker's POST, and the same one again"
    assert len({post.headers["idempotency-key"] for post in webhook.posts()}) == 1
    assert len(webhook.delivered) == 1, "acted on once"
    assert rows(home, "SELECT COUNT(*) FROM events WHERE kind = 'action_executed'") == [(1,)]
    assert rows(home, "SELECT status FROM reviews WHERE id = ?", outcome.review_id) == [("executed",)]
    assert "resume[" in log and f"review {outcome.review_id} action 0, publish to webhook" in log, log
    assert ": published:" in log, log


def stop_when(worker: subprocess.Popen, done: Callable[[], Any]) -> str:
    poll(done, "the worker did it")
    return stop(worker)


def test_a_store_that_does_not_answer_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = write_config(tmp_path, '[store]\nurl = "postgresql://wk@127.0.0.1:9/wk"\n')
    assert main(["--home", str(home), "worker", "--once"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the job queue's database" in err and "check `url` in [store]" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_two_workers_share_the_drafting_and_draft_every_letter_once_with_a_chroma_server(
        tmp_path: Path, postgres_url: str, chroma_server: str) -> None:
    """Four owners' models vanish, one owner's two: four letters, drafted by both workers, each once. That two
    letters may be drafted at once is their locks' doing (the test above)."""
    from procrastinate.schema import SchemaManager

    from weightkeeper.cli.workers import Workers
    from weightkeeper.ledger.jobs import apply_schema

    gone = {"acme": ["acme/support-llama", "acme/vision-tagger"], "beta": ["beta/a"], "gamma": ["gamma/a"],
            "delta": ["delta/a"]}
    with FakeHub(page_size=10) as hub:
        for author, names in gone.items():
            for name in (*names, f"{author}/kept"):
                hub.add(name)
        home = write_config(tmp_path, hub_config(hub.url, list(gone), postgres_url))
        assert main(["--home", str(home), "scan"]) == 0
        for name in (name for names in gone.values() for name in names):
            hub.delete(name)
        # No worker is taken for stalled here, however busy the machine: a drafting job runs once.
        write_config(home, hub_config(hub.url, list(gone), postgres_url, stall=60, extra=(
            f'[proposals]\nauto_propose = true\n\n[memory]\nurl = "{chroma_server}"\n\n')))
        apply_schema(postgres_url, SchemaManager.get_schema())
        workers = [start_worker(home), start_worker(home)]
        poll(lambda: rows(home, "SELECT COUNT(*) FROM procrastinate_workers") == [(2,)], "both workers are up")
        with Ledger(config.load(home).store) as ledger, ledger.transaction() as conn:
            conn.execute("UPDATE scans SET started_at = '2000-01-01T00:00:00+00:00'")  # the yearly scans are due
        planner = Workers(home)

        async def plan() -> None:
            async with planner.app.open_async():
                await planner.plan_now()

        asyncio.run(plan())
        poll(lambda: rows(home, "SELECT COUNT(*) FROM reviews") == [(len(gone),)]
             and not rows(home, "SELECT 1 FROM procrastinate_jobs WHERE task_name IN ('scan', 'propose')"
                                " AND status IN ('todo', 'doing')"),
             "every letter is drafted and no job is left")
        logs = [stop(worker) for worker in workers]
        again = Workers(home)._propose("acme")
    assert rows(home, "SELECT recipient, COUNT(*) FROM reviews GROUP BY recipient ORDER BY recipient") == [
        ("acme", 1), ("beta", 1), ("delta", 1), ("gamma", 1)], "one review per letter"
    assert rows(home, "SELECT COUNT(*) FROM review_members x JOIN reviews r ON r.id = x.review_id"
                      " WHERE r.recipient = 'acme'") == [(1,)], "acme's second model joined its one letter"
    assert all("propose[" in log and "one at a time" not in log for log in logs), (
        "each worker drafted letters:\n" + "\n".join(logs))
    assert sum(log.count("1 proposal queued for review") for log in logs) == len(gone), logs
    assert again.startswith("0 proposals queued"), "a letter drafted already is not drafted again"
    assert not (tmp_path / "memory").exists(), "the memory is the server's"
