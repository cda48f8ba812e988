"""`weightkeeper watch`: scan each registry on its cron schedule, until told to stop.

A registry whose last scan was left unfinished is due at once (the scan resumes from its
committed cursor); the others at their next cron time, plus a random jitter so that
many watchers, or many registries on one schedule, do not all start on the same second.
Each scan holds the registry's lease in the ledger, so a second `watch` or a manual
`scan` never runs the same registry at the same time. `stop` (set on SIGTERM or SIGINT)
ends the current scan after its current page, committed and resumable, and then the loop.
Watching every registry (no names given) also re-verifies the archive on `[archive]
verify_schedule`, each object's result a ledger event.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from weightkeeper import config
from weightkeeper.cli.progress import LogLines, stamp
from weightkeeper.cli.scanning import chosen_registries, describe, scan_one
from weightkeeper.ledger import Ledger, queries
from weightkeeper.words import counted

VERIFY_JOB = "(archive)"  # no registry name has parentheses


def next_run(schedule: str, after: datetime) -> datetime:
    from croniter import croniter

    return croniter(schedule, after).get_next(datetime)


def watch(home: Path, names: list[str], stop: threading.Event, *, jitter: float = 30.0,
          log: Callable[[str], object] = print) -> None:
    settings = config.load(home)
    chosen = chosen_registries(settings, names)
    display = LogLines(log, timestamps=True)
    with Ledger(settings.store) as ledger:
        # Each job: its schedule, and what running it once says.
        jobs: dict[str, tuple[str, Callable[[], str]]] = {
            registry.name: (registry.schedule, lambda registry=registry: describe(
                scan_one(ledger, registry, settings.scan, should_stop=stop.is_set, display=display)))
            for registry in chosen}
        if not names:
            jobs[VERIFY_JOB] = (settings.archive.verify_schedule, lambda: _verify(settings))
        now = datetime.now().astimezone()
        due = {name: now if name != VERIFY_JOB and queries.scan_unfinished(ledger, name) else
               _jittered(next_run(schedule, now), jitter) for name, (schedule, _) in jobs.items()}
        for name, (schedule, _) in jobs.items():
            what = "verification" if name == VERIFY_JOB else "scan"
            log(f"{stamp()} {name}: next {what} at {due[name]:%Y-%m-%d %H:%M:%S %Z} (schedule '{schedule}')")
        while not stop.is_set():
            name = min(jobs, key=lambda job: due[job])
            delay = (due[name] - datetime.now().astimezone()).total_seconds()
            if delay > 0 and stop.wait(delay):
                break
            schedule, run = jobs[name]
            log(f"{stamp()} {run()}")
            due[name] = _jittered(next_run(schedule, datetime.now().astimezone()), jitter)
    log(f"{stamp()} watch stopped; an interrupted scan resumes at the next start")


def _verify(settings: config.Config) -> str:
    from weightkeeper.cli.archiving import verify_archive

    reports = verify_archive(settings, None, sample=settings.archive.verify_sample)
    failed = [report.object_id for report in reports if not report.ok]
    return (f"{VERIFY_JOB}: {counted(len(reports), 'object')} verified, "
            + (f"FIXITY FAILED for {', '.join(failed)}; `weightkeeper archive verify ID --repair` restores from the "
               "mirror" if failed else "all intact"))


def _jittered(when: datetime, jitter: float) -> datetime:
    return when + timedelta(seconds=random.uniform(0, jitter))
