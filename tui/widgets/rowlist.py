"""A table drawn line by line (Textual's line API): only the rows on screen are ever rendered, so ten thousand
rows open and move as fast as ten. A cursor, marks for batch decisions, and a header that stays in place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

MARK = "●"


@dataclass(frozen=True)
class Column:
    title: str
    width: int  # 0: the column takes the width the others leave
    right: bool = False


@dataclass(frozen=True)
class Row:
    key: int
    cells: tuple[str, ...]
    alert: bool = False  # drawn in the error colour (a critic error, a failed scan)
    badge: str = ""  # one character before the cells, where a mark is drawn: what sets the row apart


class RowList(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("j,down", "move(1)", "Down", show=False, id="rows.down"),
        Binding("k,up", "move(-1)", "Up", show=False, id="rows.up"),
        Binding("g,home", "first", "First", show=False, id="rows.first"),
        Binding("G,end", "last", "Last", show=False, id="rows.last"),
        Binding("pagedown,ctrl+d", "page(1)", "Page down", show=False, id="rows.page_down"),
        Binding("pageup,ctrl+u", "page(-1)", "Page up", show=False, id="rows.page_up"),
        Binding("enter", "open", "Open", id="rows.open"),
    ]
    COMPONENT_CLASSES = {"rowlist--header", "rowlist--cursor", "rowlist--marked", "rowlist--alert"}

    # No repaint on a move: the two lines it changes are refreshed, never the whole list.
    cursor: reactive[int] = reactive(0, always_update=True, init=False, repaint=False)

    class Opened(Message):
        """enter on a row."""

        def __init__(self, rowlist: RowList, key: int) -> None:
            super().__init__()
            self.rowlist, self.key = rowlist, key

    class Moved(Message):
        """The cursor is on another row."""

        def __init__(self, rowlist: RowList, key: int | None) -> None:
            super().__init__()
            self.rowlist, self.key = rowlist, key

    def __init__(self, columns: Sequence[Column], *, markable: bool = False, empty: str = "nothing here",
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns, self.markable, self.empty = tuple(columns), markable, empty
        self.rows: list[Row] = []
        self.marked: set[int] = set()
        self.drawn: LRUCache[tuple[Any, ...], Strip] = LRUCache(1024)  # lines as last drawn
        self.base = Style()  # the widget's own style, as of the frame being drawn

    # -- what it shows ------------------------------------------------------------------------

    def show(self, rows: list[Row], columns: Sequence[Column] | None = None, *, empty: str | None = None) -> None:
        """Replace the rows, keeping the cursor on the row it was on and the marks of rows still there."""
        current = self.current
        if columns is not None:
            self.columns = tuple(columns)
        if empty is not None:
            self.empty = empty
        self.rows = rows
        self.drawn.clear()
        self.marked &= {row.key for row in rows}
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        index = next((i for i, row in enumerate(rows) if current is not None and row.key == current), None)
        self.cursor = min(self.cursor, max(len(rows) - 1, 0)) if index is None else index
        self.refresh()

    @property
    def current(self) -> int | None:
        """The key of the row under the cursor."""
        return self.rows[self.cursor].key if 0 <= self.cursor < len(self.rows) else None

    def toggle_mark(self) -> None:
        if self.current is not None:
            self.marked ^= {self.current}
            self.refresh_line(self.cursor + 1)

    # -- keys ---------------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + step))

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = max(len(self.rows) - 1, 0)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(self.size.height - 2, 1))

    def action_open(self) -> None:
        if self.current is not None:
            self.post_message(self.Opened(self, self.current))

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        body = max(self.size.height - 1, 1)
        if new < self.scroll_offset.y:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= self.scroll_offset.y + body:
            self.scroll_to(y=new - body + 1, animate=False, immediate=True)
        self.post_message(self.Moved(self, self.current))

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.drawn.clear()  # another theme

    # -- drawing ------------------------------------------------------------------------------

    def widths(self, total: int) -> list[int]:
        fixed = sum(column.width for column in self.columns) + len(self.columns) + 2
        rest = max(total - fixed, 8)
        return [column.width or rest for column in self.columns]

    def line(self, cells: Sequence[str], widths: list[int], marker: str) -> Text:
        text = Text(marker.ljust(2), end="", no_wrap=True)
        for cell, column, width in zip(cells, self.columns, widths):
            shown = cell if len(cell) <= width else cell[: max(width - 1, 0)] + "…"
            text.append((shown.rjust(width) if column.right else shown.ljust(width)) + " ")
        return text

    def render_lines(self, crop: Region) -> list[Strip]:
        self.base = self.rich_style  # once a frame, not once a line: it walks every ancestor's styles
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y - 1
        row = self.rows[index] if 0 <= index < len(self.rows) and y else None
        if row is None and (y == 0 or index != 0 or self.rows):
            index = -1  # the header, or a blank line below the rows: one drawing serves them all
        look = (y == 0, index, self.size.width, self.base, row, row is not None and row.key in self.marked,
                index == self.cursor)
        line = self.drawn.get(look)
        if line is None:
            line = self.drawn[look] = self.draw(y, index, row)
        return line

    def draw(self, y: int, index: int, row: Row | None) -> Strip:
        width = self.size.width
        widths = self.widths(width)
        base = self.base
        if y == 0:
            text = self.line([column.title for column in self.columns], widths, "")
            return self.strip(text, width, base + self.get_component_rich_style("rowlist--header"))
        if row is None:
            if index == 0 and not self.rows:
                return self.strip(Text("  " + self.empty), width, base)
            return Strip.blank(width, base)
        style = base
        if row.alert:
            style += self.get_component_rich_style("rowlist--alert")
        if row.key in self.marked:
            style += self.get_component_rich_style("rowlist--marked")
        if index == self.cursor:
            style += self.get_component_rich_style("rowlist--cursor")
        marker = MARK if row.key in self.marked else row.badge
        return self.strip(self.line(row.cells, widths, marker), width, style)

    def strip(self, text: Text, width: int, style: Style) -> Strip:
        return Strip(text.render(self.app.console)).crop_extend(0, width, style).apply_style(style)
