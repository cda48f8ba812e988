"""The scans' bookkeeping (`weightkeeper.ledger.scans`): how far each scan got, for the next run to resume."""

from __future__ import annotations

from pathlib import Path

from weightkeeper.ledger import Ledger
from weightkeeper.ledger.scans import ScanStart, ScanStore


def scans_of(ledger: Ledger) -> ScanStore:
    return ScanStore(ledger, ledger.registry_id("mem", "memory", "memory://mem"))


def test_an_unfinished_scan_is_resumed_and_its_listing_counts_as_resumed_only_after_a_cursor(store: str | Path) -> None:
    with Ledger(store) as ledger:
        scans = scans_of(ledger)
        first = scans.start()
        assert first == ScanStart(first.scan_id, "listing", None, False)
        scans.finish(first.scan_id, "interrupted", "stopped")
        again = scans.start()  # nothing committed: the listing starts over, from the beginning
        assert again == ScanStart(first.scan_id, "listing", None, True) and not scans.listing_resumed(first.scan_id)
        scans.advance(first.scan_id, "page-1", 1, 3, 0)
        scans.finish(first.scan_id, "failed", "HTTP 503")
        resumed = scans.start()
        assert resumed == ScanStart(first.scan_id, "listing", "page-1", True) and scans.listing_resumed(first.scan_id)
        scans.resolving(first.scan_id)
        scans.finish(first.scan_id, "interrupted", "stopped")
        assert scans.start().phase == "resolving" and scans.listing_resumed(first.scan_id), "kept by a later run"


def test_listed_parts_last_until_their_scan_completes_and_problems_are_counted(store: str | Path) -> None:
    with Ledger(store) as ledger:
        scans = scans_of(ledger)
        scan_id = scans.start().scan_id
        scans.keep_listed(scan_id, 1, "[1, 3]")
        scans.keep_listed(scan_id, 0, "[9]")
        scans.defer(scan_id, [("org/b", "{}"), ("org/a", "{}")])
        assert [model_id in scans.listed(scan_id) for model_id in (1, 2, 3, 9)] == [True, False, True, True]
        assert scans.deferred(scan_id) == [("org/a", "{}"), ("org/b", "{}")]
        scans.resolved(scan_id, "org/a")
        scans.problem(scan_id, "org/\x1b[31mred", "lookup failed")
        scans.finish(scan_id, "complete", None)
        summary = scans.summary(scan_id)
        assert (summary.status, summary.error) == ("complete", None)
        assert ledger.conn.execute("SELECT problems FROM scans WHERE id = ?", (scan_id,)).fetchone()[0] == 1
        (problem,) = summary.problems
        assert "\x1b" not in problem["model"] and problem["message"] == "lookup failed", "registry text is escaped"
        assert 5 not in scans.listed(scan_id) and 1 not in scans.listed(scan_id), "a complete scan's bits are gone"
        assert scans.deferred(scan_id) == [("org/b", "{}")], "resolved one by one"
        assert scans.last_complete_start() is not None
