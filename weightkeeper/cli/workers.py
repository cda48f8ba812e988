"""The workers of a team's installation: procrastinate tasks over one job queue in PostgreSQL.

Every task is a small function over the code `scan`, `propose` and `act` run; nothing of a scan or an approval
is decided here. What keeps work from running twice at once:

- `scan` scans one registry or shard (`chosen_registries`) with `scan_one`, which holds the registry's lease in
  the ledger and resumes an unfinished scan from its committed cursor. Its jobs carry the lock and the
  queueing lock `scan:NAME`: one such job runs at a time and one more may wait. A job the planner queued scans
  only while the registry is due: one queued as the last scan started (the queueing lock covers waiting jobs, not
  running ones) finds it scanned since, and scans nothing.
- `plan` (periodic, every minute) defers the scan of every registry or shard whose cron schedule came round
  since its last scan began, or whose last scan stopped unfinished, unless one is running; and the `resume` of every
  approved review, whose actions have not all run. `AlreadyEnqueued` is the normal case of work already queued.
- `propose` drafts one letter: after a complete scan with `auto_propose` on, one job is queued per recipient
  with events not yet proposed on (`letters_to_draft`). A recipient's letter is one proposal thread, near-duplicate
  models included (the coordinator gathers a recipient's models into one letter, and groups near-duplicates only
  within one owner), so the letter, not the model, is the unit of drafting. Its queueing lock is
  `draft:RECIPIENT`; its lock is the letter's (`letter:RECIPIENT`), or the one `propose` for every letter when
  the memory is an embedded Chroma folder, which one process at a time may write (`drafting_lock`).
- `resume` continues an approved proposal's thread, where the executor runs its actions (each under its
  lease and idempotency key), queued once per thread (`thread:ID`) and locked by its letter, as its drafting is:
  a draft that joins an open letter runs the same thread again, which must not meet its resumed run.
- `recover` (periodic) puts back the jobs of a worker that sent no heartbeat for `[workers] stall_seconds`
  (killed, or its machine gone): another worker runs them again, from what the first one committed.

The tasks open the home's ledger; procrastinate's tables live in the PostgreSQL database of `[store] url`
(`$WEIGHTKEEPER_DATABASE_URL`). This is a face of the command, beside `scanning` and `reviewing`, whose
functions its tasks call (the import contracts keep agents out of the core).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightkeeper import config
from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger

if TYPE_CHECKING:
    import procrastinate

    from weightkeeper.scan import ScanResult

PLAN_CRON = "* * * * *"
PROPOSE_LOCK = "propose"


def scan_lock(registry: str) -> str:
    return f"scan:{registry}"


def thread_lock(thread_id: str) -> str:
    return f"thread:{thread_id}"


def letter_lock(recipient: str) -> str:
    return f"letter:{recipient}"


def draft_lock(recipient: str) -> str:
    return f"draft:{recipient}"


def drafts_side_by_side(memory: config.MemorySettings) -> bool:
    """Whether several processes may draft at once: the memory is a Chroma server (`[memory] url`), or off."""
    return bool(memory.url) or not memory.enabled


def drafting_lock(memory: config.MemorySettings, recipient: str) -> str:
    """The lock of the job drafting the letter to `recipient`: the letter's, unless the memory is an embedded
    Chroma folder; then the one lock of every drafting job."""
    return letter_lock(recipient) if drafts_side_by_side(memory) else PROPOSE_LOCK


def recover_cron(stall_seconds: float) -> str:
    """How often stalled jobs are looked for: twice per stall timeout (seconds last, as croniter reads six
    fields), at most once a minute."""
    every = int(stall_seconds // 2)
    return PLAN_CRON if every >= 60 else f"* * * * * */{max(1, every)}"


def store_url(settings: config.Config) -> str:
    """The PostgreSQL database of the home's store, where the job queue is."""
    store = settings.store
    if not isinstance(store, str):
        raise WeightkeeperError(
            f"weightkeeper worker keeps its job queue in PostgreSQL: set `url` in [store] of {settings.path} "
            f"(postgresql://USER@HOST/DATABASE) or ${config.DATABASE_URL_ENV}; on one machine, `weightkeeper "
            "watch` needs none")
    return store


@dataclass(frozen=True, slots=True)
class Due:
    """What the planner found to do: registries to scan, and approved reviews to resume (id, thread id,
    recipient)."""

    scans: list[str]
    resumes: list[tuple[int, str, str]]


def due_work(home: Path, running: set[str], now: datetime) -> Due:
    """The scans due at `now` but not `running`, and the approved reviews with actions left to run. A scan is due when the registry has
    none, when its last one stopped before finishing (interrupted, or its process gone: it resumes), or when the
    schedule came round since the last one began; a failed scan waits for the schedule, so a registry that is
    down is not asked again every minute."""
    from weightkeeper.review import ReviewQueue

    settings = config.load(home)
    with Ledger(settings.store) as ledger:
        scans = [registry.name for registry in settings.scanned().values()
                 if registry.name not in running and scan_due(ledger, registry, now)]
        queue = ReviewQueue(ledger)  # an approved review with an action approved and not yet run (or resumable)
        resumes = [(review.id, review.thread_id, review.recipient) for review in queue.list("approved")
                   if "approved" in queue.action_states(review)]
    return Due(scans, resumes)


def scan_due(ledger: Ledger, registry: config.RegistryConfig, now: datetime) -> bool:
    """Whether a scan of `registry` (a registry or a shard) is due at `now`, as `due_work` says."""
    from weightkeeper.cli.watch import next_run
    from weightkeeper.ledger import queries

    last, _ = queries.last_scan(ledger, registry.name)
    if last is None or last["status"] in ("running", "interrupted"):
        return True
    began = datetime.fromisoformat(last["started_at"]).astimezone()  # schedules are read in local time, as by `watch`
    return next_run(registry.schedule, began) <= now


def letters_to_draft(home: Path) -> list[str]:
    """The recipients of the events not yet proposed on: one drafting job each. One whose events all wait (a
    cooldown, the do-not-contact list, a change that needs no letter) gets a job that drafts nothing, as
    `weightkeeper propose` would; telling them apart costs each event's evidence, which the job reads anyway."""
    from agents import coordinator

    with Ledger.for_reading(config.load(home).store) as ledger:
        return sorted({candidate.recipient for candidate in coordinator.candidates(ledger)})


class Workers:
    """The procrastinate app of one home, its tasks registered; `stopping` set asks running scans to end after
    their current page, committed and resumable."""

    def __init__(self, home: Path) -> None:
        import procrastinate

        self.home = home
        self.settings = config.load(home)
        self.url = store_url(self.settings)
        self.stopping = threading.Event()
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.url, min_size=1,
                                                                              max_size=8))
        self._register()

    def _register(self) -> None:
        app, stall = self.app, self.settings.workers.stall_seconds
        self.scan = app.task(name="scan")(self._scan)
        self.propose = app.task(name="propose")(self._propose)
        self.resume = app.task(name="resume")(self._resume)
        app.periodic(cron=PLAN_CRON, periodic_id="plan")(app.task(name="plan")(self._planned))
        app.periodic(cron=recover_cron(stall), periodic_id="recover")(app.task(name="recover")(self._recovered))

    # -- the tasks --------------------------------------------------------------------------------------------

    async def _scan(self, registry: str, planned: bool = False) -> str:
        from weightkeeper.cli.scanning import describe

        settings = config.load(self.home)  # read at each job: a registry added since is scanned as configured
        result = await asyncio.to_thread(self._scan_one, settings, registry, planned)
        if result.ok and settings.proposals.auto_propose:
            await self.defer_drafts()
        return describe(result)

    def _scan_one(self, settings: config.Config, registry: str, planned: bool) -> ScanResult:
        """Scan `registry`; a `planned` scan only while it is due: the planner may have queued it again as its
        last scan started (`plan_now`)."""
        from weightkeeper.cli.scanning import chosen_registries, scan_one
        from weightkeeper.scan import ScanResult

        (chosen,) = chosen_registries(settings, [registry])
        with Ledger(settings.store) as ledger:
            if planned and not scan_due(ledger, chosen, datetime.now().astimezone()):
                return ScanResult(chosen.name, None, "skipped", False, error="not due: scanned since it was planned")
            return scan_one(ledger, chosen, settings.scan, should_stop=self.stopping.is_set)

    def _propose(self, recipient: str) -> str:
        from weightkeeper.cli.reviewing import propose

        lines: list[str] = []
        propose(self.home, model=None, recipient=recipient, limit=None, log=lines.append)
        return lines[-1]

    def _resume(self, review_id: int) -> str:
        from agents.graph import resume
        from weightkeeper.cli.render import action_line

        settings = config.load(self.home)
        with Ledger(settings.store) as ledger:
            state = asyncio.run(resume(ledger, self.home, settings.proposals, review_id))
        return "; ".join(action_line(done) for done in state.get("executed", [])) or (
            f"review {review_id}: nothing left to run")

    async def _planned(self, timestamp: int) -> str:
        return await self.plan_now()

    async def _recovered(self, timestamp: int) -> str:
        return await self.recover_now()

    # -- what the periodic tasks do, also run at once by `weightkeeper worker --once` ----------------------

    async def plan_now(self) -> str:
        running = {job.task_kwargs["registry"] for job in await self.app.job_manager.list_jobs_async(
            task="scan", status="doing")}
        due = await asyncio.to_thread(due_work, self.home, running, datetime.now().astimezone())
        scans = [name for name in due.scans if await self.defer_scan(name, planned=True)]
        resumes = [review_id for review_id, thread, recipient in due.resumes
                   if await self._defer(self.resume, letter_lock(recipient), thread_lock(thread), review_id=review_id)]
        return (f"planned {len(scans)} scan(s)" + (f" ({', '.join(scans)})" if scans else "")
                + f" and {len(resumes)} approved review(s)" + (f" ({', '.join(map(str, resumes))})" if resumes else ""))

    async def defer_scan(self, registry: str, *, planned: bool = False) -> bool:
        """Queue a scan of `registry` (a registry or a shard), which a `planned` one runs only while it is due;
        False when one already waits."""
        return await self._defer(self.scan, scan_lock(registry), registry=registry,
                                 **({"planned": True} if planned else {}))

    async def defer_drafts(self) -> list[str]:
        """Queue the drafting of each letter with events not yet proposed on; returns the recipients queued (not
        one whose drafting already waits)."""
        memory = config.load(self.home).memory
        return [recipient for recipient in await asyncio.to_thread(letters_to_draft, self.home)
                if await self._defer(self.propose, drafting_lock(memory, recipient), draft_lock(recipient),
                                     recipient=recipient)]

    async def recover_now(self) -> str:
        """Put the jobs of stalled workers back in the queue; one whose work was queued again meanwhile (its
        queueing lock taken) is aborted instead, since the queued job does the same work."""
        import procrastinate
        from procrastinate.exceptions import UniqueViolation

        manager = self.app.job_manager
        stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=self.settings.workers.stall_seconds))
        for job in stalled:
            try:
                await manager.retry_job(job)
            except UniqueViolation:
                await manager.finish_job(job, status=procrastinate.jobs.Status.ABORTED, delete_job=False)
        return f"{len(stalled)} stalled job(s) taken up again" + (
            f" ({', '.join(job.call_string for job in stalled)})" if stalled else "")

    async def _defer(self, task: procrastinate.tasks.Task, lock: str, queueing_lock: str | None = None,
                     **kwargs: Any) -> bool:
        """Queue a job of `task` under `lock`, and `queueing_lock` (default: `lock`); False when a job of that
        queueing lock already waits."""
        from procrastinate.exceptions import AlreadyEnqueued

        try:
            await task.configure(lock=lock, queueing_lock=queueing_lock or lock).defer_async(**kwargs)
        except AlreadyEnqueued:
            return False
        return True
