"""The ledger's notices: on PostgreSQL the database notifies `CHANNEL` whenever a review is queued or changes, or an
event is recorded (the triggers `_NOTICES` of weightkeeper/ledger/migrations.py makes), so every writer is heard: a
worker drafting, another reviewer's console or CLI. The review console hears them on a connection of its own,
asynchronously, so that its screen never waits on it (`LedgerNotices`). A SQLite ledger has none: its console polls.
psycopg is imported only when a listener connects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weightkeeper.errors import LedgerError
from weightkeeper.ledger.database import CONNECT_SECONDS, cannot_open, refusal

if TYPE_CHECKING:
    import psycopg

CHANNEL = "weightkeeper_ledger"
LISTENER_NAME = "weightkeeper console"  # its connection's application_name, as pg_stat_activity shows it
# A server that vanished without closing the connection (a cut network) is noticed in about a minute, not never.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


class LedgerNotices:
    """A connection LISTENing on `CHANNEL` (`listen`); `changed` waits for the ledger's next change. Close it with
    `async with` (or `close`)."""

    def __init__(self, url: str, conn: psycopg.AsyncConnection) -> None:
        self.url, self._conn = url, conn

    @classmethod
    async def listen(cls, url: str) -> LedgerNotices:
        """Connect to the PostgreSQL ledger at `url` and listen; a LedgerError says why it could not."""
        import psycopg

        conn = None
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=CONNECT_SECONDS,
                                                         application_name=LISTENER_NAME, **KEEPALIVES)
            await conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            if conn is not None:
                await conn.close()
            raise cannot_open(url, exc) from None
        return cls(url, conn)

    async def changed(self) -> None:
        """Wait until the ledger changes: the next notice, with every other one already come (one answer for them
        all). A LedgerError says the connection was lost."""
        import psycopg

        try:
            async for _ in self._conn.notifies(stop_after=1):
                pass
            async for _ in self._conn.notifies(timeout=0):
                pass
        except psycopg.Error as exc:
            raise LedgerError(f"the ledger's notices stopped: {refusal(self.url, exc)}") from None

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> LedgerNotices:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
