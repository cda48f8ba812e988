"""`weightkeeper watch`: scan each registry on its cron schedule, until told to stop.

A registry whose last scan was left unfinished is due at once (the scan resumes from its
committed cursor); the others at their next cron time, plus a random jitter so that
many watchers, or many registries on one schedule, do not all start on the same second.
Each scan holds the registry's lease in the ledger, so a second `watch` or a manual
`scan` never runs the same registry at the same time. `stop` (set on SIGTERM or SIGINT)
ends the current scan after its current page, committed and resumable, and then the loop.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from weightkeeper import config
from weightkeeper.cli.progress import LogLines, stamp
from weightkeeper.cli.scanning import describe, scan_one
from weightkeeper.errors import UnknownRegistryError
from weightkeeper.ledger import Ledger


def next_run(schedule: str, after: datetime) -> datetime:
    from croniter import croniter

    return croniter(schedule, after).get_next(datetime)


def watch(home: Path, names: list[str], stop: threading.Event, *, jitter: float = 30.0,
          log: Callable[[str], object] = print) -> None:
    settings = config.load(home)
    unknown = sorted(set(names) - set(settings.registries))
    if unknown:
        raise UnknownRegistryError(unknown[0], sorted(settings.registries))
    chosen = [settings.registries[name] for name in names or settings.registries]
    if not chosen:
        log("no registries configured; add one with `weightkeeper registry add NAME --kind local --path DIR`")
        return
    display = LogLines(log, timestamps=True)
    with Ledger(settings.ledger_path) as ledger:
        now = datetime.now().astimezone()
        due = {registry.name: now if _unfinished(ledger, registry) else
               _jittered(next_run(registry.schedule, now), jitter) for registry in chosen}
        for registry in chosen:
            log(f"{stamp()} {registry.name}: next scan at {due[registry.name]:%Y-%m-%d %H:%M:%S %Z} "
                f"(schedule '{registry.schedule}')")
        while not stop.is_set():
            registry = min(chosen, key=lambda r: due[r.name])
            delay = (due[registry.name] - datetime.now().astimezone()).total_seconds()
            if delay > 0 and stop.wait(delay):
                break
            result = scan_one(ledger, registry, settings.scan, should_stop=stop.is_set, display=display)
            log(f"{stamp()} {describe(result)}")
            due[registry.name] = _jittered(next_run(registry.schedule, datetime.now().astimezone()), jitter)
    log(f"{stamp()} watch stopped; an interrupted scan resumes at the next start")


def _unfinished(ledger: Ledger, registry: config.RegistryConfig) -> bool:
    return ledger.conn.execute(
        "SELECT 1 FROM scans s JOIN registries r ON r.id = s.registry_id WHERE r.name = ? AND s.phase != 'done'",
        (registry.name,),
    ).fetchone() is not None


def _jittered(when: datetime, jitter: float) -> datetime:
    return when + timedelta(seconds=random.uniform(0, jitter))
