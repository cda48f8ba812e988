"""The listing read ahead in a forked child (`weightkeeper.read_ahead`), as every scan reads it.

What the split must keep: the parent meets the pages in order, then the end of the listing or the
exception the child met; a child that dies mid-listing fails the scan and concludes nothing about
absent models; no child outlives its listing or its parent; the adapter's caches and wait reports
stay the parent's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from fake_hub import FakeHub
from http_fakes import Fault
from ledger_reading import query
from registry_fakes import MemoryRegistry
from tools.registries.http import RetryPolicy
from tools.registries.huggingface import HubRegistry
from weightkeeper.config import RegistryConfig, ScanSettings
from weightkeeper.domain import ModelRecord, Page
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.store import LedgerAdapterCache
from weightkeeper.read_ahead import read_ahead
from weightkeeper.registry import Registry
from weightkeeper.scan import Scanner, ScanResult

NAMES = [f"acme/model-{index}" for index in range(6)]  # three pages of two


def record(name: str, revision: str = "r1") -> ModelRecord:
    return ModelRecord(name=name, key=f"id-{name}", revision=revision)


@dataclass
class Stalling(MemoryRegistry):
    """Stops answering (the child waits a minute) before the page numbered `stall_before`."""

    stall_before: int | None = None

    def pages(self, cursor: str | None) -> Iterator[Page]:
        for number, page in enumerate(super().pages(cursor)):
            if number == self.stall_before:
                time.sleep(60)
            yield page


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as opened:
        yield opened


def registry(**options: Any) -> Stalling:
    return Stalling(models={name: record(name) for name in NAMES}, page_size=2, **options)


def scan(ledger: Ledger, adapter: MemoryRegistry, **options: Any) -> ScanResult:
    return Scanner(ledger, adapter.config(), adapter, **options).run()


_OLDER: set[int] = set()


@pytest.fixture(autouse=True)
def _older_children() -> None:
    """The processes this one had before the test (a test server, say): not the test's read-ahead children."""
    _OLDER.clear()
    _OLDER.update(child.pid for child in psutil.Process().children(recursive=True))


def children() -> list[psutil.Process]:
    """This process's children started by the test, alive or not yet reaped."""
    return [child for child in psutil.Process().children(recursive=True) if child.pid not in _OLDER]


def ledger_events(ledger: Ledger) -> Counter[tuple[str, str]]:
    return Counter((row[0], row[1]) for row in ledger.conn.execute(
        "SELECT e.kind, m.name FROM events e JOIN models m ON m.id = e.model_id"))


def kill_children(pages: int, models: int) -> None:
    """A scan's progress callback: SIGKILL the reading child once the first page is in."""
    for child in children():
        child.send_signal(signal.SIGKILL)


# -- faults and ends -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [RegistryUnavailable, OSError])
@pytest.mark.parametrize("where", ["pages", "records"])
def test_a_fault_in_the_child_fails_the_scan_after_the_pages_before_it_and_the_next_scan_resumes(
        ledger: Ledger, where: str, fault: type[Exception]) -> None:
    adapter = registry(fail_page=2, fail_in=where, fault=fault)
    failed = scan(ledger, adapter)
    assert failed.status == "failed" and "injected fault" in failed.error
    assert (failed.pages, failed.models_seen) == (2, 4), "the two pages before the fault are kept"
    assert adapter.listing_faults == 1
    assert children() == []

    adapter.fail_page = None
    resumed = scan(ledger, adapter)
    assert (resumed.resumed, resumed.status, resumed.pages, resumed.models_seen) == (True, "complete", 3, 6)
    assert ledger_events(ledger) == Counter({("appeared", name): 1 for name in NAMES})


def test_an_interrupt_raised_in_the_child_is_raised_in_the_parent_and_the_scan_resumes(ledger: Ledger) -> None:
    adapter = registry(fail_page=1, fault=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        scan(ledger, adapter)
    assert ledger.conn.execute("SELECT status, pages FROM scans").fetchone()[:] == ("interrupted", 1)
    assert children() == []
    adapter.fail_page = None
    assert scan(ledger, adapter).status == "complete"
    assert ledger_events(ledger) == Counter({("appeared", name): 1 for name in NAMES})


class Odd(Exception):
    """An exception that pickles but cannot be unpickled (its constructor takes two arguments)."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"{code}: {why}")


def test_an_exception_that_does_not_survive_pickling_arrives_as_a_runtime_error_naming_it() -> None:
    class Raising(MemoryRegistry):
        def pages(self, cursor: str | None) -> Iterator[Page]:
            yield from super().pages(cursor)
            raise Odd(7, "no such thing")

    listing = read_ahead(Raising(models={name: record(name) for name in NAMES}, page_size=2), None)
    assert [page.cursor for page in (next(listing), next(listing), next(listing))] == [NAMES[1], NAMES[3], NAMES[5]]
    with pytest.raises(RuntimeError, match="^Odd: 7: no such thing") as raised:
        next(listing)
    assert "raised in the process reading the registry" in raised.value.__notes__[0]
    assert "in pages" in raised.value.__notes__[0]
    assert children() == []


def test_a_child_killed_mid_listing_fails_the_scan_concludes_nothing_and_the_rerun_repeats_nothing(
        ledger: Ledger) -> None:
    adapter = registry()
    assert scan(ledger, adapter).status == "complete"
    adapter.models[NAMES[0]] = record(NAMES[0], revision="r2")  # on the first page: read before the kill
    del adapter.models[NAMES[5]]  # on the last page: never reached
    adapter.stall_before = 1

    killed = scan(ledger, adapter, progress=kill_children)

    assert killed.status == "failed" and "ended before the listing did" in killed.error, killed.error
    assert killed.events == {"updated": 1}, "no suspected_missing or deleted after a listing cut short"
    assert children() == []
    adapter.stall_before = None
    rerun = scan(ledger, adapter)
    assert (rerun.resumed, rerun.status) == (True, "complete")
    # Resumed after its cursor, the listing only suspects what it lacks; the next, from the start, concludes.
    assert rerun.events == {"suspected_missing": 1, "updated": 1}, "the update is not repeated"
    assert scan(ledger, adapter).events == {"deleted": 1}
    assert ledger_events(ledger) == Counter({**{("appeared", name): 1 for name in NAMES}, ("updated", NAMES[0]): 1,
                                             ("suspected_missing", NAMES[5]): 1, ("deleted", NAMES[5]): 1})


def test_a_scan_asked_to_stop_leaves_no_child_behind_though_the_child_ignores_sigterm(ledger: Ledger) -> None:
    adapter = registry(stall_before=1)
    started = time.monotonic()
    stopped = scan(ledger, adapter, should_stop=lambda: True)
    assert stopped.status == "interrupted" and stopped.pages == 1
    assert time.monotonic() - started < 10, "the child, waiting on its registry, was killed at once"
    assert children() == [], "killed and reaped: no zombie either"


def test_the_child_ignores_sigint_and_sigterm_the_parent_decides(ledger: Ledger) -> None:
    class Slow(MemoryRegistry):
        def pages(self, cursor: str | None) -> Iterator[Page]:
            for page in super().pages(cursor):
                time.sleep(0.2)  # signalled after the first page: still listing
                yield page

    def signal_children(pages: int, models: int) -> None:
        if pages == 1:
            for child in children():
                child.send_signal(signal.SIGINT)
                child.send_signal(signal.SIGTERM)

    adapter = Slow(models={name: record(name) for name in NAMES}, page_size=2)
    result = scan(ledger, adapter, progress=signal_children)
    assert (result.status, result.models_seen) == ("complete", 6)


def test_the_child_exits_on_its_own_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, time
        from weightkeeper.domain import ModelRecord, Page
        from weightkeeper.read_ahead import read_ahead
        from weightkeeper.registry import Registry

        class Endless(Registry):
            kind, unlisted = "endless", frozenset()

            def pages(self, cursor):
                number = 0
                while True:
                    number += 1
                    yield Page((ModelRecord(f"m/{number}", str(number)),), cursor=str(number))

            def records(self, page):
                return list(page.items)

        listing = read_ahead(Endless(), None)
        next(listing)
        print(multiprocessing.active_children()[0].pid, flush=True)
        time.sleep(60)
    """), encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        else:
            child.kill()
            pytest.fail("the child outlived its parent")
    finally:
        parent.kill()
        parent.wait()


def test_where_processes_cannot_be_forked_the_listing_is_read_in_this_process(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("multiprocessing.get_all_start_methods", lambda: ["spawn"])
    faulty = registry(fail_page=2, fail_in="records")
    failed = scan(ledger, faulty)
    assert (failed.status, failed.pages, faulty.listing_faults) == ("failed", 2, 1)
    faulty.fail_page = None
    assert scan(ledger, faulty).status == "complete"
    faulty.models[NAMES[0]] = record(NAMES[0], revision="r2")
    assert scan(ledger, faulty, progress=lambda pages, models: assert_no_children()).events == {"updated": 1}


def assert_no_children() -> None:
    assert children() == [], "read in this process"


# -- models known unchanged ----------------------------------------------------------------------


@dataclass
class Listing(Registry):
    """A registry listing exactly these pages, a name twice if so given."""

    listed: list[list[ModelRecord]]
    kind = "listing"
    unlisted = frozenset()

    def config(self) -> RegistryConfig:
        return RegistryConfig("listing", self.kind, {"path": "memory://listing"})

    def pages(self, cursor: str | None) -> Iterator[Page]:
        start = int(cursor) if cursor else 0
        for number in range(start, len(self.listed)):
            yield Page(tuple(self.listed[number]), cursor=str(number + 1))

    def records(self, page: Page) -> list[ModelRecord]:
        return list(page.items)

    def lookup(self, name: str) -> Any:
        raise AssertionError("nothing is absent")


def test_a_record_the_ledger_holds_unchanged_is_sent_without_its_data_unless_its_name_came_in_full() -> None:
    one, two = record("acme/one"), record("acme/two")
    one_changed = record("acme/one", revision="r2")
    listing = Listing([[one, two], [one_changed], [one], [two]])
    pages = list(read_ahead(listing, None, frozenset({one.digest(), two.digest()})))
    assert [page.records for page in pages] == [
        [("acme/one", None, one.digest()), ("acme/two", None, two.digest())],
        [("acme/one", one_changed.row(), one_changed.digest())],
        [("acme/one", one.row(), one.digest())],  # its model was changed by the page before: sent in full
        [("acme/two", None, two.digest())],
    ]


def test_with_nothing_known_the_pages_carry_no_digests_and_the_scan_stores_each_records(ledger: Ledger) -> None:
    one, two = record("acme/one"), record("acme/two")
    listing = Listing([[one], [two, one]])
    assert [page.records for page in read_ahead(listing, None)] == [
        [("acme/one", one.row(), None)], [("acme/two", two.row(), None), ("acme/one", one.row(), None)]]
    assert Scanner(ledger, listing.config(), listing).run().events == {"appeared": 2}
    stored = dict(ledger.conn.execute("SELECT name, digest FROM models").fetchall())
    assert stored == {"acme/one": one.digest(), "acme/two": two.digest()}


def test_a_name_listed_twice_with_other_data_in_between_is_written_as_two_updates(ledger: Ledger) -> None:
    one, two = record("acme/one"), record("acme/two")
    assert Scanner(ledger, Listing([[]]).config(), Listing([[one, two]])).run().events == {"appeared": 2}
    changed = record("acme/one", revision="r2")
    listing = Listing([[changed], [one, two]])
    result = Scanner(ledger, listing.config(), listing, settings=ScanSettings(commit_records=1)).run()
    assert (result.status, result.events) == ("complete", {"updated": 2}), result.error
    assert ledger.conn.execute("SELECT revision FROM observations o JOIN models m ON m.last_observation_id = o.id"
                               " WHERE m.name = 'acme/one'").fetchone()[0] == "r1"


# -- what stays the parent's ---------------------------------------------------------------------


POLICY = RetryPolicy(attempts=3, first_backoff=0.01)


class SeenByTheParent(LedgerAdapterCache):
    """The ledger's adapter cache, noting each call in a list of the parent's own: the child's calls show
    up there only if they were relayed."""

    def __init__(self, ledger: Ledger, registry_id: int) -> None:
        super().__init__(ledger, registry_id)
        self.calls: list[tuple[str, str]] = []

    def get(self, key: str) -> str | None:
        self.calls.append(("get", key))
        return super().get(key)

    def put(self, key: str, value: str) -> None:
        self.calls.append(("put", key))
        super().put(key, value)


def hub_scan(ledger_path: Path, hub: FakeHub, calls: list[tuple[str, str]] | None = None,
             **options: Any) -> ScanResult:
    config = RegistryConfig("hub", "hf", {"endpoint": hub.url, "author": "acme"})
    with Ledger(ledger_path) as ledger:
        cache = SeenByTheParent(ledger, ledger.registry_id(config.name, config.kind, config.location))
        adapter = HubRegistry(hub.url, author="acme", search=None, filter=None, token=None, cache=cache,
                              policy=POLICY, timeout=1.0, **{"files": None, "on_wait": None, **options})
        result = Scanner(ledger, config, adapter).run()
    if calls is not None:
        calls += cache.calls
    return result


def test_the_hub_adapter_reads_and_fills_its_file_list_cache_through_the_parent(tmp_path: Path) -> None:
    ledger, calls = tmp_path / "ledger.sqlite3", []
    with FakeHub(page_size=2) as hub:
        for name in ("acme/alpha", "acme/beta", "acme/gamma"):
            hub.add(name)
        keys = {name: f"files:{name}@{repo.sha}" for name, repo in hub.repos.items()}
        first = hub_scan(ledger, hub, calls, files="acme/*")
        assert first.events == {"appeared": 3}, first.error
        assert all(len(hub.tree_requests(name)) == 1 for name in hub.repos)
        assert calls == [(kind, keys[name]) for name in sorted(keys) for kind in ("get", "put")]
        assert sorted(row[0] for row in query(ledger, "SELECT key FROM adapter_cache")) == sorted(keys.values())
        assert query(ledger, "SELECT COUNT(*) FROM observation_files")[0][0] == 6

        calls.clear()
        hub.server.requests.clear()
        hub.commit("acme/beta", files={"model.safetensors": b"retrained"})
        keys["acme/beta"] = f"files:acme/beta@{hub.repos['acme/beta'].sha}"
        second = hub_scan(ledger, hub, calls, files="acme/*")
        assert second.events == {"updated": 1}, second.error
        assert [name for name in hub.repos if hub.tree_requests(name)] == ["acme/beta"], "the others were cached"
        assert calls == [("get", keys["acme/alpha"]), ("get", keys["acme/beta"]), ("put", keys["acme/beta"]),
                         ("get", keys["acme/gamma"])]


def test_rate_limit_waits_met_in_the_child_are_reported_to_the_parent(tmp_path: Path) -> None:
    waits: list[tuple[float, str]] = []
    with FakeHub(page_size=2) as hub:
        for index in range(5):
            hub.add(f"acme/model-{index}")
        hub.after_listing_page(1, Fault.http(429, {"Retry-After": "0"}), Fault.http(503, {"Retry-After": "0"}))
        result = hub_scan(tmp_path / "ledger.sqlite3", hub, on_wait=lambda seconds, why: waits.append((seconds, why)))
    assert result.events == {"appeared": 5}, result.error
    assert [seconds for seconds, _ in waits] == [0.0, 0.0]
    assert [why.startswith(f"listing models at {hub.url}: HTTP {status}") for (_, why), status in zip(waits, (429, 503))
            ] == [True, True], waits
