"""`weightkeeper archive list|show|verify|restore`: the OCFL archive, read and checked.

Nothing here archives: an archive is written only by the executor, for an approved action. A
verification is a ledger event (`fixity_ok`, `fixity_failed`, `repaired`) of the archived model,
as well as a line in the object's `logs/`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from weightkeeper import config
from weightkeeper.domain import EventKind
from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger, queries
from weightkeeper.ledger.store import NewEvent
from weightkeeper.words import counted


EMPTY = "the archive is empty; an archive is written when a reviewer approves an archive action"


def archive_list(home: Path, *, as_json: bool) -> None:
    from tools.archive.store import store_to_read

    store = store_to_read(config.load(home))
    rows = [{"id": item.object_id, "versions": item.versions, "head": item.head, "files": item.files,
             "bytes": item.bytes} for item in (store.objects() if store else [])]
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(EMPTY)
    else:
        from weightkeeper.cli.render import print_table

        print_table(rows)


def archive_show(home: Path, object_id: str) -> None:
    from tools.archive.store import store_to_read

    store = store_to_read(config.load(home))
    if store is None:
        raise WeightkeeperError(EMPTY)
    detail = store.describe(object_id)
    print(f"{object_id} · {counted(len(detail.versions), 'version')}")
    for version in detail.versions:
        print(f"\n{version.version} · {version.created} · {version.user_name}\n  {version.message}")
        for file in version.files:
            print(f"  {file.size:>15,}  {file.sha256}  {file.logical_path}")


def archive_verify(home: Path, object_id: str | None, *, sample: int | None, repair: bool) -> bool:
    """Verify one object or all; print each report; return whether every object was intact (after repair)."""
    settings = config.load(home)
    results = verify_archive(settings, object_id, sample=sample, repair=repair)
    for report in results:
        state = "ok" if report.ok else "FAILED"
        print(f"{report.object_id}: {state}, {counted(report.checked_files, 'file')}, "
              f"{counted(report.checked_bytes, 'byte')} checked"
              + (f", repaired {', '.join(report.repaired)}" if report.repaired else ""))
        for failure in report.failures:
            print(f"  {failure.logical_paths[0] if failure.logical_paths else failure.content_path}: expected "
                  f"{failure.expected}, found {failure.actual}")
    if not results:
        print("the archive is empty: nothing to verify")
    return all(report.ok for report in results)


def verify_archive(settings: config.Config, object_id: str | None, *, sample: int | None,
                   repair: bool = False) -> list[Any]:
    """Verify one object (or every one) and record each result as a ledger event of its model; also what
    `weightkeeper watch` runs on `[archive] verify_schedule`."""
    from tools.archive.store import store_to_read

    store = store_to_read(settings)
    if store is None:
        if object_id:
            raise WeightkeeperError(EMPTY)
        return []
    targets = [object_id] if object_id else [item.object_id for item in store.objects()]
    reports = []
    with Ledger.for_reading(settings.store) as ledger:
        if ledger.read_only and repair:
            raise WeightkeeperError(f"the home {settings.path.parent} is read-only: --repair cannot restore files "
                                    "or record it; verify without --repair, or repair as the home's owner")
        for target in targets:
            report = store.verify(target, sample=sample, repair=repair)
            reports.append(report)
            if not ledger.read_only:
                _record(ledger, target, report)
    if ledger.read_only and reports:
        print("(the home is read-only: these results were not recorded in its ledger)", file=sys.stderr)
    return reports


def archive_restore(home: Path, object_id: str, dest: Path, version: str | None) -> None:
    from tools.archive.store import open_store

    if version is not None and not version.startswith("v"):
        version = f"v{version}"
    written = open_store(config.load(home)).restore(object_id, dest, version)
    print(f"restored {counted(len(written), 'file')} of {object_id}{' ' + version if version else ''} into {dest}")


def _record(ledger: Ledger, object_id: str, report: Any) -> None:
    row = queries.archived_model(ledger, object_id)
    if row is None:
        raise WeightkeeperError(f"the archive holds {object_id}, which this ledger does not know; was the archive "
                                "path pointed at another home's archive?")
    detail = {"object_id": object_id, "checked_files": report.checked_files, "checked_bytes": report.checked_bytes,
              "failures": [{"file": failure.logical_paths, "expected": failure.expected, "actual": failure.actual}
                           for failure in report.failures]}
    events = [NewEvent(EventKind.REPAIRED, row[0], row[1], None, None, None, {"object_id": object_id, "file": path})
              for path in report.repaired]
    events.append(NewEvent(EventKind.FIXITY_OK if report.ok else EventKind.FIXITY_FAILED, row[0], row[1], None, None,
                           None, detail))
    with ledger.transaction():
        ledger.add_events(events)
