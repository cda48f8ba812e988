"""The archive: each object's versions, size, and its last fixity check with the result. `v` verifies the
object under the cursor (every byte), recorded as `weightkeeper archive verify ID` records it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.markup import escape
from textual.binding import Binding

from tui.data import Archived
from tui.screens.panel import Panel
from tui.widgets.rowlist import Column, Row, RowList
from weightkeeper.words import counted


class ArchiveScreen(Panel):
    BINDINGS = [Binding("v", "verify", "Verify", id="archive.verify")]
    heading = "Archive"
    columns = (Column("Object", 0), Column("Versions", 8, right=True), Column("Files", 6, right=True),
               Column("Bytes", 14, right=True), Column("Last fixity check", 24))

    def read(self) -> Callable[[], list[Any]]:
        return self.app.desk.archive

    def key(self, item: Archived) -> int:
        return hash(item.object_id)

    def noun(self) -> tuple[str, str]:
        return "archived object", "archived objects"

    def shown_columns(self) -> tuple[Any, str]:
        return self.columns, "the archive is empty; an archive is written when a reviewer approves an archive action"

    def row(self, item: Archived) -> Row:
        check = "never" if item.fixity is None else f"{item.fixity.removeprefix('fixity_')} {item.checked_at[:16]}"
        return Row(hash(item.object_id), (item.object_id, str(item.versions), str(item.files), f"{item.bytes:,}",
                                          check.replace("T", " ")), alert=item.fixity == "fixity_failed")

    def haystack(self, item: Archived) -> str:
        return item.object_id.lower()

    def describe(self, item: Archived) -> str:
        return (f"[b]{escape(item.object_id)}[/b] head {item.head} of {counted(item.versions, 'version')}, "
                f"{counted(item.files, 'file')}, {counted(item.bytes, 'byte')} · v verifies every byte")

    def action_verify(self) -> None:
        current = self.query_one(RowList).current
        if current is None:
            return
        object_id = self.items[current].object_id

        def done(report: Any) -> None:
            self.app.notify(f"{counted(report.checked_files, 'file')}, {counted(report.checked_bytes, 'byte')} checked: "
                            + ("intact" if report.ok else f"{len(report.failures)} FAILED"), title=object_id,
                            severity="information" if report.ok else "error", timeout=10)
            self.load()

        self.app.in_background(lambda: self.app.desk.verify(object_id), done, group="verify")
