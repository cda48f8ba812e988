"""Copying a SQLite ledger into an empty PostgreSQL one (`weightkeeper store migrate`), and proving the copy.

Every table is copied in key order, in batches, in one transaction on the target; the sequences then continue
after the highest ids copied. Each table is then read back on both sides into the same canonical digest (`table_digest`) and
the row counts and digests compared. The SQLite file is
only read, through a read-only connection: it is left byte for byte as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from weightkeeper.domain import canonical_json
from weightkeeper.errors import LedgerError
from weightkeeper.ledger.database import Connection, shown_url
from weightkeeper.ledger.store import Ledger

BATCH_ROWS = 5000
# Every table of the schema, each after the tables it references, with the columns that order its rows (a
# table's `rowid` is SQLite's own on that side, a column of the table on PostgreSQL's).
TABLES: dict[str, str] = {
    "registries": "id",
    "scans": "id",
    "models": "id",
    "observations": "id",
    "observation_lineage": "rowid",
    "observation_files": "rowid",
    "events": "id",
    "problems": "id",
    "deferred_records": "scan_id, name",
    "file_digests": "registry_id, path",
    "scan_listed": "scan_id, part",
    "scan_leases": "registry_id",
    "adapter_cache": "registry_id, key",
    "reviews": "id",
    "reviewers": "rowid",
    "decisions": "id",
    "executions": "id",
    "execution_results": "execution_id",
    "execution_leases": "idempotency_key",
    "contact_blocks": "owner",
    "review_members": "event_id",
}


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table after the copy: its rows and digest on each side."""

    table: str
    rows: int
    digest: str
    copied_rows: int
    copied_digest: str

    @property
    def same(self) -> bool:
        return (self.rows, self.digest) == (self.copied_rows, self.copied_digest)


def copy_ledger(source: Ledger, url: str, *, progress: Callable[[str, int], None] | None = None) -> list[TableCopy]:
    """Copy the SQLite ledger `source` into the empty PostgreSQL ledger at `url` (its schema made if the database
    is empty), then verify every table; return what each side holds. Refuses a target that holds any row."""
    if source.dialect != "sqlite":
        raise LedgerError("the ledger to copy is not a SQLite file: `store migrate` copies a SQLite home")
    with Ledger(url) as target:
        occupied = [table for table in TABLES if target.conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()]
        if occupied:
            raise LedgerError(f"the ledger at {shown_url(url)} is not empty (its {', '.join(occupied)} hold rows); "
                              "`store migrate` copies only into an empty one: create a new database for it")
        import psycopg

        columns = {table: table_columns(target.conn, table) for table in TABLES}
        table = ""
        try:
            with target.transaction():
                for table in TABLES:
                    copied = _copy_table(source.conn, target.conn, table, columns[table])
                    if progress:
                        progress(table, copied)
                _continue_sequences(target.conn)
        except psycopg.Error as exc:  # a row the schema refuses (an event recorded twice by an old bug, say)
            raise LedgerError(f"PostgreSQL refused a row of {table}: {exc}; nothing was copied (the copy is one "
                              "transaction)") from None
        return [TableCopy(table, *table_digest(source.conn, table, columns[table]),
                          *table_digest(target.conn, table, columns[table])) for table in TABLES]


def table_columns(target: Connection, table: str) -> list[str]:
    """The table's columns as PostgreSQL holds them (SQLite's, plus a `rowid` where SQLite orders by its own)."""
    return [row[0] for row in target.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = ? ORDER BY ordinal_position", (table,))]


def _rows(conn: Connection, table: str, columns: list[str]) -> Iterator[list[tuple]]:
    """The table's rows (`columns`, in key order), in batches."""
    cursor = conn.cursor()
    cursor.row_factory = None
    cursor.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {TABLES[table]}")
    while batch := cursor.fetchmany(BATCH_ROWS):
        yield batch


def _copy_table(source: Connection, target: Connection, table: str, columns: list[str]) -> int:
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    copied = 0
    for batch in _rows(source, table, columns):
        target.executemany(insert, batch)
        copied += len(batch)
    return copied


def _continue_sequences(target: Connection) -> None:
    """Each identity column's sequence goes on after the highest value copied into it."""
    for table, column in target.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND is_identity = 'YES'").fetchall():
        target.execute(f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({column}), 0) + 1, false)"
                       f" FROM {table}", (table, column))


def table_digest(conn: Connection, table: str, columns: list[str]) -> tuple[int, str]:
    """How many rows the table holds, and their digest, computed alike on either backend: the sum of each row's
    sha256 (its values as canonical JSON), so that it does not depend on the order the database returns rows in
    (text keys sort by each database's collation)."""
    total, rows = 0, 0
    for batch in _rows(conn, table, columns):
        for row in batch:
            total += int.from_bytes(hashlib.sha256(canonical_json(list(row))).digest(), "big")
        rows += len(batch)
    return rows, f"{total % 2**256:064x}"
