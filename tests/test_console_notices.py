"""On a PostgreSQL store the database notifies every change the console's poll looks for (a review queued or
changed, an event recorded), whoever wrote it, and the console hears it on a connection of its own: a proposal
drafted elsewhere appears at once, and one drafted while the console was not listening is read when it listens
again. Each test's ledger is a copy of the console's demo home (tests/console_world.py) in a database of its own."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from console_world import queue_copies
from test_console import SIZE, console, driven, rows, status_of, until

from weightkeeper import config
from weightkeeper.domain import EventKind
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.copying import copy_ledger
from weightkeeper.ledger.notices import CHANNEL, LISTENER_NAME
from weightkeeper.ledger.store import NewEvent

NEVER = 3600.0  # a poll interval no test waits for: only a notice (or a catch-up read) can explain what appears


@pytest.fixture
def postgres_home(console_home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo's proposals copied into the test's PostgreSQL database, which $WEIGHTKEEPER_DATABASE_URL names."""
    with Ledger(config.load(console_home).ledger_path, read_only=True) as source:
        copy_ledger(source, postgres_url)
    monkeypatch.setenv("WEIGHTKEEPER_DATABASE_URL", postgres_url)
    return console_home


def test_the_database_notifies_a_queued_review_a_status_change_and_an_event_once_per_statement(
        postgres_home: Path) -> None:
    url = config.load(postgres_home).store
    with psycopg.connect(url, autocommit=True) as listener, Ledger(url) as ledger:
        listener.execute(f"LISTEN {CHANNEL}")
        queue_copies(ledger, 3)  # one statement: one notice, not three
        with ledger.transaction() as conn:
            conn.execute("UPDATE reviews SET status = 'rejected' WHERE id = 1")
        ledger.add_events([NewEvent(EventKind.PROPOSAL_AMENDED, 1, 1, None, None, None, {})])
        heard = [notice.payload for notice in listener.notifies(timeout=10, stop_after=3)]
    assert heard == ["reviews", "reviews", "events"]


@driven
async def test_a_proposal_queued_by_another_connection_appears_without_a_poll(postgres_home: Path) -> None:
    app = console(postgres_home, poll_seconds=NEVER)
    async with app.run_test(size=SIZE) as pilot:
        # Listening, and its catch-up read done: what changes from here on, only a notice can tell the console.
        await until(pilot, lambda: rows(app) == [1, 2, 3] and app.listening and app.seen is not None)
        with Ledger(config.load(postgres_home).store) as ledger:
            queue_copies(ledger, 1)
        await until(pilot, lambda: 4 in rows(app))
        assert rows(app) == sorted(rows(app), key=lambda key: -app.screen.items[key].priority)


@driven
async def test_a_dropped_listener_is_said_and_what_was_queued_meanwhile_is_read_on_reconnecting(
        postgres_home: Path, postgres_server) -> None:
    url = config.load(postgres_home).store
    database = url.rsplit("/", 1)[1]
    app = console(postgres_home, poll_seconds=NEVER, reconnect_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: rows(app) == [1, 2, 3] and app.listening and app.seen is not None)
        assert "live" not in status_of(app)
        with Ledger(url) as ledger, psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            # The listener's connection dropped, and no new one let in until the proposal is queued.
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                          " AND application_name = %s", (database, LISTENER_NAME))
            await until(pilot, lambda: not app.listening and "not following the ledger live" in status_of(app))
            assert "reading it every 3,600 s" in status_of(app)
            queue_copies(ledger, 1)
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await until(pilot, lambda: 4 in rows(app))
        assert app.listening and "live" not in status_of(app)
        assert [str(note.title) for note in app._notifications].count("not following the ledger live") == 1
