"""The ledger: every event, newest first; the filter takes words or kind:, registry:, model:, at: (a date's
start, e.g. at:2026-11). The pane shows the event's detail, and `enter` the observations it was recorded from."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.markup import escape

from tui.screens.panel import Panel
from tui.widgets.rowlist import Column, Row, RowList


class LedgerScreen(Panel):
    heading = "Ledger"
    columns = (Column("Id", 6, right=True), Column("At", 16), Column("Kind", 20), Column("Registry", 8),
               Column("Model", 0))
    hint = "filter: words, or kind:deleted registry:NAME model:NAME at:2026-11"

    def __init__(self) -> None:
        super().__init__()
        self.opened: dict[int, list[dict[str, Any]]] = {}  # event id -> its observations, once opened

    def read(self) -> Callable[[], list[Any]]:
        return self.app.desk.events

    def key(self, item: dict[str, Any]) -> int:
        return item["id"]

    def noun(self) -> tuple[str, str]:
        return "event", "events"

    def row(self, item: dict[str, Any]) -> Row:
        return Row(item["id"], (str(item["id"]), item["at"][:16].replace("T", " "), item["event"], item["registry"],
                                item["model"] or ""))

    def haystack(self, item: dict[str, Any]) -> str:
        return (f"kind:{item['event']} registry:{item['registry']} model:{item['model']} at:{item['at']} "
                f"{json.dumps(item['detail'])}").lower()

    def describe(self, item: dict[str, Any]) -> str:
        lines = [f"[b]event {item['id']}[/b] {item['event']} of {escape(str(item['model']))} in {item['registry']}, "
                 f"scan {item['scan']}, at {item['at']}", escape(json.dumps(item["detail"], ensure_ascii=False))]
        for row in self.opened.get(item["id"], []):
            lines.append(f"[b]{row['row']}[/b] " + escape(", ".join(f"{key}={value}" for key, value in row.items()
                                                                    if key != "row" and value is not None)))
        if item["id"] not in self.opened and (item["observation"] or item["prior_observation"]):
            lines.append("[dim]enter shows the observations it was recorded from[/dim]")
        return "\n".join(lines)

    def on_row_list_opened(self, event: RowList.Opened) -> None:
        item = self.items[event.key]

        def shown(rows: list[dict[str, Any]]) -> None:
            self.opened[item["id"]] = rows
            self.update_detail()

        self.app.in_background(lambda: self.app.desk.observations(item), shown, group="ledger-open")
