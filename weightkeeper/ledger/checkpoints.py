"""The connection to the proposal graph's checkpoints (a SQLite file beside the ledger, written by LangGraph's
`AsyncSqliteSaver`; its tables are the saver's, not ours)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiosqlite


async def connect(path: Path) -> aiosqlite.Connection:
    import aiosqlite

    conn = await aiosqlite.connect(path)
    # WAL (the saver sets it) with NORMAL: a step is on disk before the next starts and survives a
    # crash of the process; only a power cut may lose the last steps, which are then re-run.
    await conn.execute("PRAGMA synchronous=NORMAL")
    return conn
