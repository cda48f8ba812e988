"""`weightkeeper worker`: run procrastinate workers over the home's job queue (weightkeeper/cli/workers.py).

It applies procrastinate's schema when the database has none, then runs until SIGTERM or SIGINT, which ends a
running scan after its current page (committed and resumable, as `watch` stops) and lets the other jobs finish.
One line is logged per job. `once` plans and recovers at once, runs what is queued, and exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightkeeper.cli.progress import stamp
from weightkeeper.config import DATABASE_URL_ENV
from weightkeeper.errors import WeightkeeperError
from weightkeeper.secrets import scrub

if TYPE_CHECKING:
    from weightkeeper.cli.workers import Workers


def run_worker(home: Path, *, concurrency: int = 1, once: bool = False,
               log: Callable[[str], object] = print) -> None:
    from procrastinate.schema import SchemaManager

    from weightkeeper.ledger.jobs import apply_schema
    from weightkeeper.cli.workers import Workers

    import psycopg

    workers = Workers(home)
    try:
        if apply_schema(workers.url, SchemaManager.get_schema()):
            log(f"{stamp()} created the job queue's tables (procrastinate's schema)")
    except psycopg.OperationalError as exc:
        raise WeightkeeperError(
            f"cannot reach the job queue's database: {str(exc).strip()}; check `url` in [store] of "
            f"{workers.settings.path} (or ${DATABASE_URL_ENV}) and that PostgreSQL accepts this user there") from None
    asyncio.run(_work(workers, concurrency, once, log))


async def _work(workers: Workers, concurrency: int, once: bool, log: Callable[[str], object]) -> None:
    from weightkeeper.cli.workers import drafts_side_by_side

    stall = workers.settings.workers.stall_seconds

    async def logged(call_next: Callable[[], Any], context: Any, worker: Any) -> Any:
        try:
            result = await call_next()
        except BaseException as exc:
            log(f"{stamp()} {context.job.call_string} failed: {scrub(f'{type(exc).__name__}: {exc}')}")
            raise
        log(f"{stamp()} {context.job.call_string}: {result}")
        return result

    name = f"{socket.gethostname()}:{os.getpid()}"
    async with workers.app.open_async():
        if once:
            log(f"{stamp()} {await workers.recover_now()}")
            log(f"{stamp()} {await workers.plan_now()}")
        runner = asyncio.create_task(workers.app.run_worker_async(
            name=name, concurrency=concurrency, wait=not once, install_signal_handlers=False, delete_jobs="successful",
            worker_middleware=[logged], update_heartbeat_interval=max(0.5, stall / 4), stalled_worker_timeout=stall,
            # A retried job, or one whose lock was released, is announced to no one: polling finds it.
            fetch_job_polling_interval=1.0))

        def stop() -> None:
            workers.stopping.set()
            runner.cancel()

        loop = asyncio.get_running_loop()
        # Put back as they were afterwards (asyncio would leave Python's defaults): a caller in this process keeps
        # its own.
        before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        for signum in before:
            loop.add_signal_handler(signum, stop)
        log(f"{stamp()} worker {name} started (concurrency {concurrency}{', once' if once else ''})")
        if not drafts_side_by_side(workers.settings.memory):
            log(f"{stamp()} letters are drafted one at a time, by all workers together: the memory is an embedded "
                "Chroma folder, which one process at a time may write; to draft side by side, run `chroma run` and "
                f"set `url` in [memory] of {workers.settings.path}")
        try:
            await runner
        except asyncio.CancelledError:
            pass
        finally:
            for signum, handler in before.items():
                loop.remove_signal_handler(signum)
                signal.signal(signum, handler)
    log(f"{stamp()} worker stopped; an interrupted scan resumes at its next run")
