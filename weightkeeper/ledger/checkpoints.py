"""The proposal graph's checkpoints, kept where the home's ledger is: a SQLite file beside a SQLite ledger (written
by LangGraph's `AsyncSqliteSaver`), or the ledger's own PostgreSQL database (`AsyncPostgresSaver`). Their tables
are the saver's, not ours; the savers are imported only when a graph runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiosqlite
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from weightkeeper.ledger.store import Ledger

CHECKPOINTS = "checkpoints.sqlite3"  # in the home, beside a SQLite ledger
# Any constant of ours: the advisory lock under which the PostgreSQL saver makes its tables.
SETUP_LOCK = 0x77_6B_63_6B_70_74  # "wkckpt"
SETUP_POLL_SECONDS = 0.05


@asynccontextmanager
async def saver(ledger: Ledger, home: Path) -> AsyncIterator[BaseCheckpointSaver]:
    """The checkpointer of the home's proposal threads, open for the block."""
    if ledger.url is not None:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(ledger.url) as postgres:
            await setup(postgres)
            yield postgres
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    conn = await connect(home / CHECKPOINTS)
    try:
        yield AsyncSqliteSaver(conn)
    finally:
        await conn.close()


async def copy_checkpoints(home: Path, url: str) -> tuple[int, int]:
    """Copy the home's SQLite checkpoints (every thread's, with their pending writes) into the PostgreSQL ledger at
    `url`, the file only read; return how many checkpoints the file holds and how many the database then holds."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = home / CHECKPOINTS
    if not path.is_file():
        return 0, 0
    conn = await connect(path, read_only=True)
    try:
        found = [saved async for saved in AsyncSqliteSaver(conn).alist(None)]
    finally:
        await conn.close()
    async with AsyncPostgresSaver.from_conn_string(url) as postgres:
        await setup(postgres)
        for saved in reversed(found):  # oldest first, each after its parent
            thread = {key: saved.config["configurable"][key] for key in ("thread_id", "checkpoint_ns")}
            parent = saved.parent_config or {"configurable": thread}
            written = await postgres.aput(parent, saved.checkpoint, saved.metadata,
                                          saved.checkpoint["channel_versions"])
            tasks: dict[str, list[tuple[str, object]]] = {}
            for task_id, channel, value in saved.pending_writes or ():
                tasks.setdefault(task_id, []).append((channel, value))
            for task_id, writes in tasks.items():
                await postgres.aput_writes(written, writes, task_id)
        copied = len([saved async for saved in postgres.alist(None)])
    return len(found), copied


async def setup(postgres: AsyncPostgresSaver) -> None:
    """The saver's own tables and migrations, made once. Its `setup` reads the version it is at, then runs and
    records each later migration: drafts starting together in a new database (workers) take turns at it, under
    an advisory lock of the saver's connection (autocommit: the session's). The lock is tried, not waited for:
    a migration creates an index CONCURRENTLY, which waits for every open transaction, a blocked
    `pg_advisory_lock` too."""
    while not (await (await postgres.conn.execute("SELECT pg_try_advisory_lock(%s) AS taken",
                                                  (SETUP_LOCK,))).fetchone())["taken"]:
        await asyncio.sleep(SETUP_POLL_SECONDS)
    try:
        await postgres.setup()
    finally:
        await postgres.conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


async def connect(path: Path, *, read_only: bool = False) -> aiosqlite.Connection:
    import aiosqlite

    if read_only:
        return await aiosqlite.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn = await aiosqlite.connect(path)
    # WAL (the saver sets it) with NORMAL: a step is on disk before the next starts and survives a
    # crash of the process; only a power cut may lose the last steps, which are then re-run.
    await conn.execute("PRAGMA synchronous=NORMAL")
    return conn
