"""Reading a registry's listing in a child process while the scan writes the ledger.

Reading and parsing a page costs about as much as writing its models to the ledger, and both
would run under one interpreter lock: a forked child reads ahead (`adapter.pages` and
`adapter.records`, each record flattened into a ledger row) and sends each page back, pickled,
through a pipe, so the two overlap on two cores. Forked, the child inherits the adapter as it is,
whatever it is.

A record whose digest the ledger already holds for a present model (`known`) is unchanged: the
child sends only its name and digest, unless its name came before in full in this listing (then
that model may have been changed by the scan since). A rescan, where most models are unchanged,
is spared pickling and unpickling them. With nothing known (a first scan) the child sends no
digests at all: the parent, which writes faster than the child reads and parses, takes them.

Records travel as the rows the ledger stores (`RecordRow`): plain values pickle and unpickle in a
fraction of a record's time, and the parent writes them as they come. Each is screened first
(`weightkeeper.untrusted`): a record whose name does not show as itself becomes a problem, whatever the
registry's kind.

The child never touches the ledger: an SQLite connection must not be used across a fork. What the
adapter holds that belongs to the parent is relayed to it, as the adapter protocol declares it
(`weightkeeper.registry.RegistryAdapter`): its `cache` and `digests` (the ledger's are backed by the
parent's connection) and its `on_wait` reporter (the progress display). A cache read waits for the parent's answer; writes and waits do not.

The parent sees the listing as it would have read it itself: the pages in order, then either the
end of the listing (an explicit message, never mere end of file) or the exception the child met,
raised at the same point. A child that dies without saying either fails the listing as
`RegistryUnavailable`, so a cut-short listing is never taken for a complete one. The child ignores
SIGINT and SIGTERM (the parent decides when to stop, and kills it), and exits on its own once the
parent is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import NamedTuple

from weightkeeper.domain import RecordProblem, RecordRow, row_digest
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import RegistryAdapter
from weightkeeper.untrusted import screened

AHEAD = 16  # pages the child may read before the parent takes them: about a batch and a half of the Hub's


class ReadPage(NamedTuple):
    """A page read and parsed: (name, row, digest) of each record (the row None when it is known unchanged;
    the digest None when nothing is known, left to the reader of the page), the problems, and the cursor
    after the page."""

    cursor: str | None
    records: list[tuple[str, RecordRow | None, int | None]]
    problems: list[RecordProblem]


def _dumps(message: object) -> bytes:
    return pickle.dumps(message, pickle.HIGHEST_PROTOCOL)


def _read(adapter: RegistryAdapter, cursor: str | None, known: frozenset[int]) -> Iterator[ReadPage]:
    sent_in_full: set[str] = set()
    for page in adapter.pages(cursor):
        records: list[tuple[str, RecordRow | None, int | None]] = []
        problems = []
        for item in map(screened, adapter.records(page)):
            if isinstance(item, RecordProblem):
                problems.append(item)
                continue
            row = item.row()
            if not known:  # a first scan: the parent, which has time to spare while this process parses, digests
                records.append((item.name, row, None))
                continue
            digest = row_digest(row)
            if digest in known and item.name not in sent_in_full:
                records.append((item.name, None, digest))
                continue
            records.append((item.name, row, digest))
            if known:
                sent_in_full.add(item.name)
        yield ReadPage(page.cursor, records, problems)


def read_ahead(adapter: RegistryAdapter, cursor: str | None, known: frozenset[int] = frozenset()
               ) -> Iterator[ReadPage]:
    """The pages of the listing after `cursor`, read by a child process; `known` holds the digests of the
    registry's present models. What the listing raises is raised here, after the pages before it. Close
    the iterator (`contextlib.closing`) to stop early: the child is killed and reaped then, as when the
    listing ends or fails.

    Where processes cannot be forked (Windows), the listing is read in this process instead."""
    if "fork" not in multiprocessing.get_all_start_methods():
        yield from _read(adapter, cursor, known)
        return
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    child = context.Process(target=_child, args=(adapter, cursor, known, theirs, ours),
                            name="weightkeeper-read-ahead", daemon=True)
    child.start()
    theirs.close()  # so that the child's end of the pipe closes with the child
    caches = {"cache": adapter.cache, "digests": adapter.digests}
    try:
        while True:
            try:
                message = pickle.loads(ours.recv_bytes())
            except (EOFError, OSError):
                child.join()
                raise RegistryUnavailable(
                    f"the process reading the registry ended before the listing did (exit code {child.exitcode});"
                    " nothing was concluded") from None
            kind = message[0]
            if kind == "page":
                yield message[1]
            elif kind == "get":
                ours.send_bytes(pickle.dumps(caches[message[1]].get(*message[2]), pickle.HIGHEST_PROTOCOL))
            elif kind == "put":
                caches[message[1]].put(*message[2])
            elif kind == "wait" and adapter.on_wait is not None:
                adapter.on_wait(*message[1:])
            elif kind == "error":
                raise message[1]
            else:
                return
    finally:
        child.kill()  # nothing when it has exited
        child.join()
        child.close()
        ours.close()


class _ToParent:
    """The child's side of the pipe: messages are pickled by the reading thread and sent by another, up to
    `AHEAD` of them waiting, so that the child reads on while the parent is busy writing."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.outbox: queue.Queue[bytes | None] = queue.Queue(AHEAD)
        self.sender = threading.Thread(target=self._send, name="read-ahead-sender", daemon=True)
        self.sender.start()

    def tell(self, *message: object) -> None:
        self.outbox.put(_dumps(message))

    def ask(self, *message: object) -> object:
        self.tell(*message)
        try:
            return pickle.loads(self.connection.recv_bytes())
        except (EOFError, OSError):
            os._exit(1)  # the parent is gone

    def wait(self, seconds: float, reason: str) -> None:
        self.tell("wait", seconds, reason)

    def close(self) -> None:
        self.outbox.put(None)
        self.sender.join()

    def _send(self) -> None:
        try:
            while (message := self.outbox.get()) is not None:
                self.connection.send_bytes(message)
        except OSError:
            os._exit(1)  # the parent is gone


class _RelayedCache:
    """One of the adapter's caches, as the child sees it: kept by the parent."""

    def __init__(self, parent: _ToParent, attribute: str) -> None:
        self.parent, self.attribute = parent, attribute

    def get(self, *key: object) -> str | None:
        return self.parent.ask("get", self.attribute, key)

    def put(self, *key_and_value: object) -> None:
        self.parent.tell("put", self.attribute, key_and_value)


def _child(adapter: RegistryAdapter, cursor: str | None, known: frozenset[int], connection: Connection,
           parents_end: Connection) -> None:
    parents_end.close()  # else a write to a parent that is gone would block instead of failing
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = _ToParent(connection)
    # Referenced here until the end: nothing of the parent's (a ledger connection) may be finalised in the child.
    originals = (adapter.cache, adapter.digests, adapter.on_wait)
    if adapter.cache is not None:
        adapter.cache = _RelayedCache(parent, "cache")
    if adapter.digests is not None:
        adapter.digests = _RelayedCache(parent, "digests")
    if adapter.on_wait is not None:
        adapter.on_wait = parent.wait
    try:
        for page in _read(adapter, cursor, known):
            parent.tell("page", page)
        parent.tell("done")
    except BaseException as exc:  # whatever it is, the parent raises it
        parent.outbox.put(_pickled_error(exc))
    parent.close()
    os._exit(0)  # no finaliser or atexit handler inherited from the parent runs here


def _pickled_error(exc: BaseException) -> bytes:
    """("error", exc) pickled, with the child's traceback as a note; an exception that does not survive
    pickling is sent as a RuntimeError saying what it was."""
    exc.add_note("raised in the process reading the registry:\n" + "".join(traceback.format_tb(exc.__traceback__)))
    try:
        message = _dumps(("error", exc))
        pickle.loads(message)
        return message
    except Exception:  # any failure to pickle or unpickle it
        substitute = RuntimeError(f"{type(exc).__name__}: {exc}")
        substitute.__notes__ = getattr(exc, "__notes__", [])
        return _dumps(("error", substitute))
