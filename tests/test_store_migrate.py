"""`weightkeeper store migrate`: the demo's home copied into PostgreSQL, verified, and read back the same."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from weightkeeper import config
from weightkeeper.cli.main import EXIT_OK, EXIT_USAGE, main
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.copying import TABLES, table_columns, table_digest


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home the demo made (scans, proposals, an approval, an archived model), made once for these tests."""
    home = tmp_path_factory.mktemp("demo") / "home"
    assert main(["demo", "--home", str(home)]) == EXIT_OK
    return home


def test_the_demo_home_is_copied_verified_and_reads_back_the_same(
        demo: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ledger_file = config.load(demo).ledger_path
    before = ledger_file.read_bytes()
    capsys.readouterr()
    assert main(["store", "migrate", "--to", postgres_url, "--home", str(demo)]) == EXIT_OK
    summary = capsys.readouterr().out
    assert "copied and verified" in summary and "MISMATCH" not in summary
    assert ledger_file.read_bytes() == before, "the SQLite ledger is left as it was"
    with Ledger(ledger_file, read_only=True) as source, Ledger(postgres_url) as copy:
        for table in TABLES:
            columns = table_columns(copy.conn, table)
            assert table_digest(source.conn, table, columns) == table_digest(copy.conn, table, columns), table
    read = {}
    for store in (None, postgres_url):
        if store:
            monkeypatch.setenv("WEIGHTKEEPER_DATABASE_URL", store)
        assert main(["ledger", "--format", "jsonl", "--home", str(demo)]) == EXIT_OK
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert main(["stats", "--json", "--home", str(demo)]) == EXIT_OK
        read[store] = (events, json.loads(capsys.readouterr().out))
    assert read[None] == read[postgres_url] and len(read[None][0]) > 20
    saved = {store: asyncio.run(checkpoints_of(demo, store)) for store in (ledger_file, postgres_url)}
    assert saved[ledger_file] == saved[postgres_url] and len(saved[ledger_file]) > 3
    with Ledger(postgres_url) as copy:  # new rows take ids after the copied ones
        highest = copy.conn.execute("SELECT MAX(id) FROM registries").fetchone()[0]
        assert copy.registry_id("another", "local", "/elsewhere") == highest + 1


async def checkpoints_of(home: Path, store: Path | str) -> dict[tuple[str, str], tuple[dict, list]]:
    """Every checkpoint of the home's proposal threads in `store`: its values and pending writes."""
    from weightkeeper.ledger.checkpoints import saver

    with Ledger(store) as ledger:
        async with saver(ledger, home) as checkpoints:
            return {(found.config["configurable"]["thread_id"], found.checkpoint["id"]):
                    (found.checkpoint["channel_values"], sorted(map(repr, found.pending_writes or ())))
                    async for found in checkpoints.alist(None)}


def test_a_target_that_holds_rows_is_refused_and_nothing_is_copied(
        demo: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Ledger(postgres_url) as ledger:
        ledger.registry_id("other", "local", "/x")
    assert main(["store", "migrate", "--to", postgres_url, "--home", str(demo)]) == EXIT_USAGE
    assert "is not empty (its registries hold rows)" in capsys.readouterr().err
    with Ledger(postgres_url) as ledger:
        assert ledger.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0


def test_a_url_that_is_not_postgresql_is_refused_in_words(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "migrate", "--to", "/tmp/ledger.db", "--home", str(demo)]) == EXIT_USAGE
    assert "is not a PostgreSQL URL" in capsys.readouterr().err


def test_a_row_postgresql_refuses_stops_the_copy_and_leaves_the_target_empty(
        tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An event recorded twice by one scan (which SQLite's older schema let in) breaks PostgreSQL's natural key."""
    from weightkeeper.domain import EventKind, ModelRecord
    from weightkeeper.ledger.models import ModelStore
    from weightkeeper.ledger.scans import ScanStore
    from weightkeeper.ledger.store import NewEvent

    config.write_default(tmp_path)
    with Ledger(config.load(tmp_path).ledger_path) as ledger:
        registry = ledger.registry_id("lab", "local", "/models")
        ledger.conn.execute("BEGIN")
        scan_id = ScanStore(ledger, registry).start().scan_id
        record = ModelRecord(name="acme/med-ft", key="k1")
        (model_id,) = ModelStore(ledger, registry).appear(scan_id, [(record.row(), record.digest())])
        ledger.add_events([NewEvent(EventKind.UPDATED, registry, model_id, scan_id, None, None, {})] * 2)
        ledger.conn.execute("COMMIT")
    assert main(["store", "migrate", "--to", postgres_url, "--home", str(tmp_path)]) == EXIT_USAGE
    assert "PostgreSQL refused a row of events" in capsys.readouterr().err
    with Ledger(postgres_url) as ledger:
        assert ledger.conn.execute("SELECT COUNT(*) FROM registries").fetchone()[0] == 0
