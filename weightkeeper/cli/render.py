"""Printing ledger rows and statistics for people (table, markdown) and programs (jsonl, csv)."""

from __future__ import annotations

import csv
import json
import os
import sys
from typing import Any

from weightkeeper.words import counted

EVENT_COLUMNS = ("at", "event", "registry", "model", "detail")


def print_events(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "jsonl":
        for row in rows:
            print(json.dumps(row, sort_keys=True))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["id", *EVENT_COLUMNS])
        writer.writeheader()
        writer.writerows({**row, "detail": json.dumps(row["detail"], sort_keys=True)} for row in rows)
    elif fmt == "markdown":
        print("| " + " | ".join(EVENT_COLUMNS) + " |")
        print("|" + "---|" * len(EVENT_COLUMNS))
        for row in rows:
            cells = [row["at"], row["event"], row["registry"], row["model"] or "", describe_detail(row["detail"])]
            print("| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |")
    elif not rows:
        print("no events match")
    else:
        print_table([{"at": row["at"][:19].replace("T", " "), "event": row["event"], "registry": row["registry"],
                      "model": row["model"] or "", "detail": describe_detail(row["detail"])} for row in rows])


def describe_detail(detail: dict[str, Any]) -> str:
    """One readable phrase per event detail: `from → to`, the changed fields, the reason."""
    if "from" in detail and "to" in detail:
        return f"{detail['from']} → {detail['to']}"
    parts = []
    if detail.get("changed"):
        parts.append("changed: " + ", ".join(detail["changed"]))
    if detail.get("shutdown_date"):
        parts.append(f"shutdown {detail['shutdown_date']}")
    if detail.get("successor"):
        parts.append(f"successor {detail['successor']}")
    if detail.get("reason"):
        parts.append(detail["reason"])
    if detail.get("was"):
        parts.append(f"was {detail['was']}, seen again via {detail.get('via', 'listing')}")
    return "; ".join(parts)


def print_table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row.values()))
    # A terminal's own width; a pipe or file gets 80 columns unless $COLUMNS says otherwise.
    Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 80).print(table)


def print_stats(figures: dict[str, Any]) -> None:
    models = figures["models"]
    print("\n".join([
        f"models tracked: {models['tracked']:,}",
        f"  persist: {models['persist']:,} ({models['hidden']:,} hidden)",
        f"  suspected missing: {models['suspected_missing']:,}",
        f"  deleted: {models['deleted']:,} ({models['deleted_unarchived']:,} without an archive)",
        f"  withdrawn: {models['withdrawn']:,}"
        + (" (deleted or hidden: the registry does not say which)" if models["withdrawn"] else ""),
        f"  archived: {models['archived']:,}",
    ]))
    if figures["weeks"]:
        kinds = sorted({kind for counts in figures["weeks"].values() for kind in counts})
        print_table([{"week": week, **{kind: counts.get(kind, 0) for kind in kinds}}
                     for week, counts in figures["weeks"].items()], title="events per ISO week")
    if figures["top_lineages"]:
        print_table(figures["top_lineages"], title="lineages most affected (deleted, withdrawn, missing, hidden or deprecated)")


def action_line(result: dict[str, Any]) -> str:
    """One line for what an approved action did (`act`, `review approve`): what ran, where, its result."""
    where = f"review {result['review_id']}" + (f" action {result['action']}" if "action" in result else "")
    if "refused" in result:
        return f"{where}: refused, nothing ran: {result['refused']}"
    if "skipped" in result:
        return f"{where}: skipped, {result['skipped']}"
    what = f"{where}, {'archive' if result['channel'] == 'archive' else 'publish to ' + result['channel']} " \
           f"{result['target']}"
    if "error" in result:
        return f"{what}: failed: {result['error']}" + (
            "; the next `weightkeeper act` resumes it" if result.get("resumable") else "")
    if "object_id" in result:
        done = (f"archived as {result['object_id']} {result['version']} ({counted(result['files'], 'file')}, "
                f"{counted(result['bytes'], 'byte')}{', metadata only' if result.get('metadata_only') else ''})")
    else:
        done = f"published: {result.get('url') or result.get('path')}"
    return f"{what}: {done}" + (" (it was there already: not sent twice)" if result.get("already_published") else "")
