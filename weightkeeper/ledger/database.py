"""The ledger's connection, on either backend: a SQLite file (the embedded default) or a PostgreSQL database.

Both offer the subset of `sqlite3.Connection` the stores use (`execute`, `executemany`, `cursor`, rows read by
name and by position, `rowcount`) and say which SQL they speak in `dialect`. The stores write `?` and `:name`
placeholders; on PostgreSQL `placeholders` turns them into psycopg's. Where the dialects differ, the module that
owns a statement holds both versions, picked by `conn.dialect`. psycopg is imported only when a URL is opened.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from weightkeeper.errors import LedgerError

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

Dialect = Literal["sqlite", "postgres"]
Params = Sequence[Any] | Mapping[str, Any]
CONNECT_SECONDS = 10
NO_LIMIT = 2**63 - 1  # a LIMIT that limits nothing: SQLite reads -1 so and PostgreSQL refuses it
# An executemany of `INSERT INTO t (columns) VALUES (one row)` with a tail of no parameters (ON CONFLICT DO NOTHING)
# goes to PostgreSQL as multi-row VALUES, ROWS_PER_INSERT rows a statement (within the protocol's 65,535
# parameters): psycopg's executemany sends a statement per row, which costs the client and the server several times
# the row's own work (a first scan writes four rows per model).
_INSERT_VALUES = re.compile(r"(INSERT INTO \S+ \([^()]*\) VALUES )(\([^()]*\))([^%]*)", re.IGNORECASE | re.DOTALL)
ROWS_PER_INSERT = 1000
MAX_PARAMETERS = 65_535


class SqliteConnection(sqlite3.Connection):
    """A sqlite3 connection that says its dialect (made by `sqlite3.connect(..., factory=SqliteConnection)`)."""

    dialect: Dialect = "sqlite"


# A quoted literal or identifier, a placeholder, or a percent sign: what `placeholders` reads, left to right.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|\?|:([A-Za-z_]\w*)|%")


@functools.lru_cache(maxsize=1024)
def placeholders(sql: str) -> str:
    """`sql` with SQLite's placeholders as psycopg's: `?` as `%s`, `:name` as `%(name)s`, a literal `%` doubled.
    Quoted literals and identifiers, and PostgreSQL's `::` casts, are left as they are."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if match.group(1):
            return f"%({match.group(1)})s"
        return token

    return _TOKENS.sub(replace, sql)


class Row(tuple):
    """A row readable by position and by column name, as `sqlite3.Row` is (`dict(row)` gives its columns)."""

    __slots__ = ()
    names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self.names.index(key))
            except ValueError:
                raise IndexError(f"no such column: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


@functools.lru_cache(maxsize=32)
def _numbered_rows(row: str, count: int) -> str:
    """`count` copies of a VALUES row written with %s, comma-separated, its placeholders numbered $1, $2, … on."""
    parts = row.split("%s")
    width = len(parts) - 1
    return ", ".join(parts[0] + "".join(f"${first + i + 1}{part}" for i, part in enumerate(parts[1:]))
                     for first in range(0, count * width, width))


@functools.lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "names": names})


class PostgresCursor:
    """A psycopg cursor read as a sqlite3 one: rows as `Row` (or plain tuples once `row_factory` is None)."""

    def __init__(self, cursor: psycopg.Cursor) -> None:
        self._cursor = cursor
        self.row_factory: object | None = Row

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def execute(self, sql: str, params: Params = ()) -> PostgresCursor:
        # Without parameters psycopg reads no placeholders, so a `%` stays as it is.
        self._cursor.execute(placeholders(sql) if params else sql, params or None)
        return self

    def executemany(self, sql: str, rows: Iterable[Params]) -> PostgresCursor:
        rows = list(rows)
        if not rows:
            return self
        insert = _INSERT_VALUES.fullmatch(placeholders(sql))
        if insert is None or isinstance(rows[0], Mapping):
            self._cursor.executemany(placeholders(sql), rows)
            return self
        import psycopg

        head, row, tail = insert.groups()
        # Numbered ($1) placeholders through a raw cursor: psycopg would parse a statement of thousands of %s in
        # Python at each call.
        raw = psycopg.RawCursor(self._cursor.connection)
        per_statement = min(ROWS_PER_INSERT, MAX_PARAMETERS // max(1, row.count("%s")))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            raw.execute(head + _numbered_rows(row, len(chunk)) + tail, [value for one in chunk for value in one])
        return self

    def _shape(self) -> type[Row] | None:
        """The class of this result's rows: `Row` named by its columns, or None for plain tuples."""
        if self.row_factory is None:
            return None
        return _row_class(tuple(column.name for column in self._cursor.description))

    def fetchone(self) -> Any:
        row = self._cursor.fetchone()
        shape = self._shape() if row is not None else None
        return shape(row) if shape else row

    def fetchall(self) -> list[Any]:
        return self._shaped(self._cursor.fetchall())

    def fetchmany(self, size: int) -> list[Any]:
        return self._shaped(self._cursor.fetchmany(size))

    def _shaped(self, rows: list[tuple]) -> list[Any]:
        shape = self._shape() if rows else None
        return [shape(row) for row in rows] if shape else rows

    def __iter__(self) -> Iterator[Any]:
        if self._cursor.description is None:
            return iter(())
        shape = self._shape()
        return (shape(row) for row in self._cursor) if shape else iter(self._cursor)


class PostgresConnection:
    """A psycopg connection (in autocommit: transactions are the ledger's explicit BEGIN and COMMIT, as they are on
    SQLite) offering what the stores use of `sqlite3.Connection`."""

    dialect: Dialect = "postgres"

    def __init__(self, conn: psycopg.Connection) -> None:
        self.raw = conn

    def cursor(self) -> PostgresCursor:
        return PostgresCursor(self.raw.cursor())

    def execute(self, sql: str, params: Params = ()) -> PostgresCursor:
        return self.cursor().execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> PostgresCursor:
        return self.cursor().executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


Connection = SqliteConnection | PostgresConnection


def json_member(dialect: Dialect, document: str, key: str, *, integer: bool = False) -> str:
    """SQL reading the member `key` of the JSON text `document` (a column): as text, or as an `integer`."""
    if dialect == "sqlite":
        return f"json_extract({document}, '$.{key}')"
    member = f"(CAST({document} AS json) ->> '{key}')"
    return f"CAST({member} AS bigint)" if integer else member


def shown_url(url: str) -> str:
    """A PostgreSQL URL as messages show it: without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{netloc}" if parts.username else netloc))


def refusal(url: str, exc: Exception) -> str:
    """The database's `exc` in words a message may show: without the URL's password, nor any other secret."""
    from weightkeeper.secrets import scrub

    return scrub(str(exc)).replace(url, shown_url(url))


def cannot_open(url: str, exc: Exception) -> LedgerError:
    return LedgerError(f"cannot open the ledger at {shown_url(url)}: {refusal(url, exc)}; is the server running, "
                       "and the URL (`[store] url` or $WEIGHTKEEPER_DATABASE_URL) right?")


def open_postgres(url: str) -> tuple[psycopg_pool.ConnectionPool, PostgresConnection]:
    """The connection to the PostgreSQL database at `url` the ledger keeps for its life (in autocommit), and a
    pool that lends others as they are needed (a lease's renewal, an id reservation)."""
    import psycopg
    from psycopg_pool import ConnectionPool

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_SECONDS)
    except psycopg.Error as exc:
        raise cannot_open(url, exc) from None
    pool = ConnectionPool(url, min_size=0, max_size=4, kwargs={"autocommit": True}, name="ledger",
                          open=True)
    return pool, PostgresConnection(conn)
