"""The ledger: one SQLite file in the home directory (WAL, busy_timeout), or a PostgreSQL database (`[store] url`).

Events are append-only. Models and scans hold current state and may change;
what justified every change is an observation that an event points at.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from weightkeeper.domain import EventKind, ModelRecord, RecordRow, canonical_json
from weightkeeper.errors import LeaseHeld, LedgerError
from weightkeeper.home import is_url
from weightkeeper.ledger.database import (
    Connection,
    PostgresConnection,
    SqliteConnection,
    open_postgres,
    shown_url,
)
from weightkeeper.ledger.migrations import MIGRATIONS, migrate
from weightkeeper.secrets import scrub, scrubbed

BUSY_TIMEOUT_MS = 30_000
CACHE_KIB = 64 * 1024
# Pages of 8 KiB rather than SQLite's 4 KiB: a first scan, which appends a row, an observation, its lineage
# and an event per model, took a tenth less CPU to write (measured with 4, 8 and 16 KiB).
PAGE_BYTES = 8192
WAL_CHECKPOINT_PAGES = 64 * 1024 * 1024 // PAGE_BYTES  # 64 MiB of WAL
LEASE_SECONDS = 60.0
# PostgreSQL advisory locks (two int4 keys): the ledger's, taken shared by a registry's scan and exclusive by any
# other write; a registry's, by the writes of its scan; the id reservation's, while a block of ids is taken.
_LEDGER_LOCK, _REGISTRY_LOCK, _IDS_LOCK = 0x776B0001, 0x776B0002, 0x776B0003
# The fields of a `RecordRow` that are columns of `observations` (named alike); lineage and files are tables.
_STORED_COLUMNS = len(RecordRow._fields) - 2


class NewEvent(NamedTuple):
    kind: EventKind
    registry_id: int
    model_id: int | None
    scan_id: int | None
    observation_id: int | None
    prior_observation_id: int | None
    detail: dict[str, Any]


TIMESTAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # the ledger's UTC times: they sort as text


def now_iso() -> str:
    return datetime.now(UTC).strftime(TIMESTAMP)


class Ledger:
    conn: Connection

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        """The SQLite file at `path`, or the PostgreSQL database at a `postgresql://` URL. Opened for writing
        (created and migrated as needed), or `read_only` for a SQLite home the user may only read."""
        self.read_only, self._pool = read_only, None
        if isinstance(path, str) and is_url(path):
            # `path` names the ledger in messages and in the reviewers' witness: the URL without its password.
            self.url, self.path = path, shown_url(path)
            self._pool, self.conn = open_postgres(path)
            try:
                migrate(self.conn)
            except BaseException:
                self.close()
                raise
            return
        path = Path(path)
        self.url, self.path = None, path
        if read_only:
            self.conn = _read_only(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                        factory=SqliteConnection)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA page_size={PAGE_BYTES}")  # a new ledger's; an existing one keeps its own
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # Checkpoint less often than every 4 MB of WAL: a scan rewrites the same hot pages page after page.
            self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            self.conn.execute("PRAGMA temp_store=MEMORY")
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"cannot open the ledger at {path}: {exc}; is it a weightkeeper ledger?") from exc

    @classmethod
    def for_reading(cls, path: Path | str) -> Ledger:
        """The ledger of a command that only reads: read-only when the user may not write it (a mounted
        backup, another user's home), so such a home still answers. A PostgreSQL ledger's rights are the server's."""
        if isinstance(path, str) and is_url(path):
            return cls(path)
        path = Path(path)
        writable = os.access(path.parent, os.W_OK | os.X_OK) and (not path.exists() or os.access(path, os.W_OK))
        return cls(path, read_only=not writable)

    @property
    def dialect(self) -> str:
        return self.conn.dialect

    def close(self) -> None:
        self.conn.close()
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, registry: int | None = None) -> Iterator[Connection]:
        """All or nothing: a crash inside leaves the ledger as it was before. One writer at a time, except that on
        PostgreSQL the writes of scans of different registries (`registry`: the one this transaction writes for)
        run side by side: each holds its registry's lock and the ledger's lock shared, any other write the ledger's
        lock alone. Ids the scans share are reserved in blocks (`reserve_ids`)."""
        if self.conn.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn.execute("BEGIN")
            if registry is None:
                self.conn.execute("SELECT pg_advisory_xact_lock(?, 0)", (_LEDGER_LOCK,))
            else:
                self.conn.execute("SELECT pg_advisory_xact_lock_shared(?, 0), pg_advisory_xact_lock(?, ?)",
                                  (_LEDGER_LOCK, _REGISTRY_LOCK, registry))
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def meanwhile(self, interval: float, work: Callable[[Connection], object], *,
                   once_more: bool = False) -> Iterator[None]:
        """Run `work` on a second connection (on PostgreSQL, the pool's) every `interval` seconds while the block
        runs (and once more after it, with `once_more`)."""
        stop = threading.Event()

        def loop() -> None:
            with self._second_connection() as conn:
                while not stop.wait(interval):
                    work(conn)
                if once_more:
                    work(conn)

        worker = threading.Thread(target=loop, name=f"ledger-{work.__name__}", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join()

    @contextmanager
    def _second_connection(self) -> Iterator[Connection]:
        if self._pool is not None:
            with self._pool.connection() as raw:
                yield PostgresConnection(raw)
            return
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                     factory=SqliteConnection)) as conn:
            yield conn

    @contextmanager
    def checkpoints_in_background(self, interval: float = 0.2) -> Iterator[None]:
        """While a long run of writes goes on, copy the WAL into the database from a second connection.

        The copying (and its fsyncs) then runs on another core instead of stalling a commit now and
        then; before this returns, what the WAL still holds is copied too. PostgreSQL has no WAL of ours to copy.
        """
        if self.conn.dialect == "postgres":
            yield
            return

        def checkpoint(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        try:
            with self.meanwhile(interval, checkpoint, once_more=True):
                yield
        finally:
            self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")

    @contextmanager
    def scan_lease(self, registry_id: int, registry: str, ttl: float = LEASE_SECONDS) -> Iterator[None]:
        """Hold the registry's scan lease while the block runs, renewing it from a second connection;
        raise `LeaseHeld` when another live process holds it. A crashed holder's lease lapses after `ttl`."""
        holder = lease_holder()
        with self.transaction() as conn:
            taken = conn.execute(
                "INSERT INTO scan_leases (registry_id, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (registry_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE scan_leases.expires_at < ?",
                (registry_id, holder, time.time() + ttl, time.time()),
            ).rowcount
            if not taken:
                other, until = conn.execute("SELECT holder, expires_at FROM scan_leases WHERE registry_id = ?",
                                            (registry_id,)).fetchone()
                taken = not holder_alive(other) and conn.execute(
                    "UPDATE scan_leases SET holder = ?, expires_at = ? WHERE registry_id = ? AND holder = ?",
                    (holder, time.time() + ttl, registry_id, other),
                ).rowcount
            if not taken:
                raise LeaseHeld(f"registry '{registry}' is being scanned by {other.rsplit(':', 1)[0]} (host:pid); "
                                f"skipped. Its lease lapses {max(0, until - time.time()):.0f} s after its last "
                                "renewal if that process died")

        def renew(conn: Connection) -> None:
            conn.execute("UPDATE scan_leases SET expires_at = ? WHERE registry_id = ? AND holder = ?",
                         (time.time() + ttl, registry_id, holder))

        try:
            with self.meanwhile(ttl / 3, renew):
                yield
        finally:
            with self.transaction() as conn:
                conn.execute("DELETE FROM scan_leases WHERE registry_id = ? AND holder = ?", (registry_id, holder))

    def registry_id(self, name: str, kind: str, location: str) -> int:
        """The registry's id, recording it on first use. When its location (or watched scope) changed, an
        unfinished scan lists again from the start: its cursor and what it listed belong to the old one."""
        with self.transaction() as conn:
            before = conn.execute("SELECT id, kind, location FROM registries WHERE name = ?", (name,)).fetchone()
            if before is None:
                return conn.execute("INSERT INTO registries (name, kind, location, created_at) VALUES (?, ?, ?, ?)"
                                    " RETURNING id", (name, kind, location, now_iso())).fetchone()[0]
            if (before["kind"], before["location"]) != (kind, location):
                conn.execute("UPDATE registries SET kind = ?, location = ? WHERE id = ?", (kind, location, before["id"]))
                unfinished = "SELECT id FROM scans WHERE registry_id = ? AND phase != 'done'"
                conn.execute(f"DELETE FROM scan_listed WHERE scan_id IN ({unfinished})", (before["id"],))
                conn.execute("UPDATE scans SET phase = 'listing', cursor = NULL, pages = 0, models_seen = 0"
                             " WHERE registry_id = ? AND phase != 'done'", (before["id"],))
            return before["id"]

    def reserve_ids(self, table: str, count: int) -> int:
        """The first of `count` consecutive ids of `table` (models, observations) that are this transaction's to
        assign. On SQLite the write transaction owns every id after the highest; on PostgreSQL the block is taken
        from the table's sequence at once (under a lock held only while it is taken), so that scans of other
        registries writing meanwhile take other blocks. A block a rolled-back transaction took stays unused."""
        if self.conn.dialect == "sqlite":
            return self.conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0]
        sequence = f"{table}_id_seq"
        with self._pool.connection() as raw:  # its own, in autocommit: the lock is released at once
            raw.execute("SELECT pg_advisory_lock(%s, 0)", (_IDS_LOCK,))
            try:
                first = raw.execute("SELECT nextval(%s)", (sequence,)).fetchone()[0]
                if count > 1:
                    raw.execute("SELECT setval(%s, %s)", (sequence, first + count - 1))
            finally:
                raw.execute("SELECT pg_advisory_unlock(%s, 0)", (_IDS_LOCK,))
        return first

    def add_events(self, events: Sequence[NewEvent]) -> None:
        """Append events; a secret in a detail (a server's message quoting a token) is scrubbed first. An event
        already recorded under its natural key (on PostgreSQL: its scan, model and kind) is not appended again."""
        at = now_iso()
        self.conn.executemany(
            "INSERT INTO events (at, kind, registry_id, model_id, scan_id, observation_id, prior_observation_id, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(at, e.kind.value, e.registry_id, e.model_id, e.scan_id, e.observation_id, e.prior_observation_id,
              canonical_json(scrubbed(e.detail)).decode()) for e in events],
        )

    def add_observations(self, scan_id: int, items: Sequence[tuple[int, RecordRow, int]], *,
                         source: str = "listing", first_id: int | None = None) -> list[int]:
        """Record what a registry said of each (model id, record row, record digest); return the observation ids."""
        first = self.reserve_ids("observations", len(items)) if first_id is None else first_id
        ids = range(first, first + len(items))
        at = now_iso()
        self.conn.executemany(
            "INSERT INTO observations (id, model_id, scan_id, observed_at, source, found, name, key, revision,"
            " created_at, last_modified, visibility, downloads, likes, card_digest, license, emissions, training,"
            " datasets, shutdown_date, successor, extra, digest)"
            " VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(observation_id, model_id, scan_id, at, source, *row[:_STORED_COLUMNS], digest)
             for observation_id, (model_id, row, digest) in zip(ids, items)],
        )
        self.conn.executemany(
            "INSERT INTO observation_lineage (observation_id, base_model, relation) VALUES (?, ?, ?)",
            [(observation_id, *item) for observation_id, (_, row, _) in zip(ids, items) for item in row.lineage],
        )
        self.conn.executemany(
            "INSERT INTO observation_files (observation_id, path, size, sha256) VALUES (?, ?, ?, ?)",
            [(observation_id, *item) for observation_id, (_, row, _) in zip(ids, items) for item in row.files],
        )
        return list(ids)

    def load_record(self, observation_id: int) -> ModelRecord:
        """The model as a found observation recorded it."""
        row = self.conn.execute("SELECT * FROM observations WHERE id = ? AND found = 1", (observation_id,)).fetchone()
        if row is None:
            raise LedgerError(f"observation {observation_id} is not a found observation")
        lineage = self.conn.execute(
            "SELECT base_model, relation FROM observation_lineage WHERE observation_id = ? ORDER BY rowid",
            (observation_id,),
        )
        files = self.conn.execute(
            "SELECT path, size, sha256 FROM observation_files WHERE observation_id = ? ORDER BY rowid",
            (observation_id,),
        )
        stored = RecordRow._fields[:_STORED_COLUMNS]
        return ModelRecord.from_row(RecordRow(*(row[name] for name in stored), tuple(lineage), tuple(files)))

    def add_gone_observation(self, model_id: int, scan_id: int, name: str, reason: str) -> int:
        return self.conn.execute(
            "INSERT INTO observations (model_id, scan_id, observed_at, source, found, name, lookup_detail)"
            " VALUES (?, ?, ?, 'lookup', 0, ?, ?) RETURNING id",
            (model_id, scan_id, now_iso(), name, scrub(reason)),
        ).fetchone()[0]


def _read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection. A ledger in WAL mode needs its `-shm` file to be read safely; where none exists
    and none can be made (a read-only folder), nobody can be writing it either, so it is opened immutable."""
    if not path.is_file():
        raise LedgerError(f"there is no ledger at {path} yet, and this home is read-only: nothing was recorded here")
    uri = path.resolve().as_uri()
    for mode in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                               factory=SqliteConnection)
        conn.row_factory = sqlite3.Row
        try:
            version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
            break
        except sqlite3.DatabaseError as exc:
            conn.close()
            failure = exc
    else:
        raise LedgerError(f"cannot read the ledger at {path}: {failure}; is it a weightkeeper ledger?")
    if version != len(MIGRATIONS):
        conn.close()
        raise LedgerError(f"the ledger at {path} has schema version {version} and this weightkeeper reads "
                          f"{len(MIGRATIONS)}; it is upgraded when a command writes to it, which this read-only "
                          "home does not allow: run one command as its owner first")
    return conn


def lease_holder() -> str:
    """Who takes a lease (a scan's, an action's): host:pid:random, as `holder_alive` reads it."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def holder_alive(holder: str) -> bool:
    """Whether a lease holder (host:pid:nonce) may still be running; only a process on this host can be
    known dead (killed with -9, say), and then its lease need not wait to lapse."""
    host, pid, _ = holder.rsplit(":", 2)
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


class LedgerDigestCache:
    """The ledger-backed `DigestCache` of one registry."""

    def __init__(self, ledger: Ledger, registry_id: int) -> None:
        self.conn, self.registry_id = ledger.conn, registry_id

    def get(self, path: str, size: int, stamp: str) -> str | None:
        row = self.conn.execute(
            "SELECT sha256 FROM file_digests WHERE registry_id = ? AND path = ? AND size = ? AND stamp = ?",
            (self.registry_id, path, size, stamp),
        ).fetchone()
        return row and row[0]

    def put(self, path: str, size: int, stamp: str, sha256: str) -> None:
        self.conn.execute(
            "INSERT INTO file_digests (registry_id, path, size, stamp, sha256) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (registry_id, path) DO UPDATE SET size = excluded.size, stamp = excluded.stamp,"
            " sha256 = excluded.sha256",
            (self.registry_id, path, size, stamp, sha256),
        )


class LedgerAdapterCache:
    """The ledger-backed `AdapterCache` of one registry."""

    def __init__(self, ledger: Ledger, registry_id: int) -> None:
        self.conn, self.registry_id = ledger.conn, registry_id

    def get(self, key: str) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM adapter_cache WHERE registry_id = ? AND key = ?", (self.registry_id, key)
        ).fetchone()
        return row and row[0]

    def put(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO adapter_cache (registry_id, key, value) VALUES (?, ?, ?)"
                          " ON CONFLICT (registry_id, key) DO UPDATE SET value = excluded.value",
                          (self.registry_id, key, value))
