"""The proposal graph's checkpoints, kept where the home's ledger is: a SQLite file beside a SQLite ledger (written
by LangGraph's `AsyncSqliteSaver`), or the ledger's own PostgreSQL database (`AsyncPostgresSaver`). Their tables
are the saver's, not ours; the savers are imported only when a graph runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiosqlite
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from weightkeeper.ledger.store import Ledger

CHECKPOINTS = "checkpoints.sqlite3"  # in the home, beside a SQLite ledger


@asynccontextmanager
async def saver(ledger: Ledger, home: Path) -> AsyncIterator[BaseCheckpointSaver]:
    """The checkpointer of the home's proposal threads, open for the block."""
    if ledger.url is not None:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(ledger.url) as postgres:
            await postgres.setup()  # its own tables and migrations, made once
            yield postgres
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    conn = await connect(home / CHECKPOINTS)
    try:
        yield AsyncSqliteSaver(conn)
    finally:
        await conn.close()


async def connect(path: Path) -> aiosqlite.Connection:
    import aiosqlite

    conn = await aiosqlite.connect(path)
    # WAL (the saver sets it) with NORMAL: a step is on disk before the next starts and survives a
    # crash of the process; only a power cut may lose the last steps, which are then re-run.
    await conn.execute("PRAGMA synchronous=NORMAL")
    return conn
