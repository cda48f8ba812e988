"""What every top screen of the console is: a title, rows read from the ledger in a worker, a filter (`/`), a
pane describing the row under the cursor, and a status line. Read again when the ledger changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from tui.widgets.keyline import KeyLine
from tui.widgets.rowlist import Column, Row, RowList
from weightkeeper.words import counted


class Panel(Screen[None]):
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="panel.filter"),
        Binding("escape", "clear", "Clear", show=False, id="panel.clear"),
        Binding("q", "app.quit", "Quit", id="panel.quit"),
    ]
    heading: ClassVar[str] = ""
    columns: ClassVar[Sequence[Column]] = ()
    markable: ClassVar[bool] = False
    hint: ClassVar[str] = "filter: words, or field:value"

    def __init__(self) -> None:
        super().__init__(id=self.heading.lower())
        self.items: dict[int, Any] = {}
        self.query_text, self.ready = "", False

    def compose(self) -> ComposeResult:
        yield Static(id="title", classes="title")
        yield from self.above()
        with Vertical(id="body"):
            yield Input(placeholder=self.hint, id="filter")
            yield RowList(self.columns, markable=self.markable, id="rows")
            yield Static(id="detail", classes="detail")
            yield Static(id="status", classes="status")
        yield KeyLine()

    def above(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one("#title", Static).update(self.app.title_line(self.heading))
        self.query_one("#detail", Static).display = False
        self.query_one(RowList).focus()

    # -- what a screen says ---------------------------------------------------------------------

    def read(self) -> Callable[[], list[Any]]:
        """What to read, in a worker thread; its items are keyed by `key`."""
        raise NotImplementedError

    def key(self, item: Any) -> int:
        return item.id

    def row(self, item: Any) -> Row:
        raise NotImplementedError

    def haystack(self, item: Any) -> str:
        """What the filter's words are looked for in."""
        raise NotImplementedError

    def describe(self, item: Any) -> str | None:
        """What the detail pane shows of the item under the cursor; None hides it."""
        return None

    def shown_columns(self) -> tuple[Sequence[Column], str]:
        return self.columns, f"no {self.heading.lower()}"

    def noun(self) -> tuple[str, str]:
        """What one row is and what several are, for the status line: ("registry", "registries")."""
        raise NotImplementedError

    def status(self) -> list[str]:
        return []

    # -- reading and showing --------------------------------------------------------------------

    def load(self) -> None:
        self.app.in_background(self.read(), self.loaded, group=self.heading)

    def loaded(self, items: list[Any]) -> None:
        self.items, self.ready = {self.key(item): item for item in items}, True
        self.show()

    def show(self) -> None:
        words = self.query_text.lower().split()
        rows = [self.row(item) for item in self.items.values() if all(word in self.haystack(item) for word in words)]
        columns, empty = self.shown_columns()
        self.query_one(RowList).show(rows, columns, empty=empty)
        self.update_status()
        self.update_detail()

    def update_status(self) -> None:
        rowlist = self.query_one(RowList)
        shown = (f"{len(rowlist.rows):,} of {counted(len(self.items), *self.noun())}" if self.query_text
                 else counted(len(rowlist.rows), *self.noun()))
        parts = [shown, *self.status()]
        if self.query_text:
            parts.append(f"filter: {self.query_text}")
        if self.app.unheard:
            parts.append(self.app.unheard)
        self.query_one("#status", Static).update(" · ".join(parts))

    def update_detail(self) -> None:
        current = self.query_one(RowList).current
        text = self.describe(self.items[current]) if current in self.items else None
        detail = self.query_one("#detail", Static)
        if detail.display != (text is not None):  # set only when it changes: each change lays the screen out again
            detail.display = text is not None
        if text is not None:
            detail.update(text)

    def on_row_list_moved(self, event: RowList.Moved) -> None:
        self.update_detail()

    def on_ledger_changed(self) -> None:
        self.load()

    def on_screen_resume(self) -> None:
        """Shown: read the rows, in the background (shown again, the rows it had stay until the new ones are
        read). A change the poll announced while another screen was on top is not relied on: it can be lost."""
        self.load()

    # -- the filter -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.query_text = event.value.strip()
            self.show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(RowList).focus()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus or self.query_text:
            box.value, box.display = "", False
            self.query_text = ""
            self.show()
            self.query_one(RowList).focus()
