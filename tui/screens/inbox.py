"""The inbox: proposals waiting for a decision, highest priority first; tabs for the deferred, decided and
executed ones, and for the events the coordinator left alone (with its reason)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static, Tab, Tabs

from tui.data import TABS, Triaged, age, critic_status, lead
from tui.screens.dialogs import DeferDialog, ReasonDialog
from tui.widgets.rowlist import Column, Row, RowList
from weightkeeper.review import Headline

TAB_TITLES = {"pending": "Pending", "deferred": "Deferred", "decided": "Decided", "executed": "Executed",
              "triaged": "Triaged"}
REVIEW_COLUMNS = (Column("Prio", 5, right=True), Column("Recipient", 11), Column("Model", 0), Column("Registry", 7),
                  Column("Event", 11), Column("Age", 4, right=True), Column("Drafter", 7))
TRIAGED_COLUMNS = (Column("Event", 6, right=True), Column("Model", 24), Column("Registry", 8), Column("Kind", 12),
                   Column("Why no proposal", 0))
EMPTY = {"pending": "no proposal waits for a decision; `weightkeeper propose` drafts them for recorded events",
         "triaged": "every event that may need a proposal has one"}


class InboxScreen(Screen[None]):
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="inbox.filter"),
        Binding("space", "mark", "Mark", id="inbox.mark"),
        Binding("r", "reject", "Reject", id="inbox.reject"),
        Binding("d", "defer", "Defer", id="inbox.defer"),
        Binding("l,right,tab", "tab(1)", "Next tab", show=False, id="inbox.next_tab"),
        Binding("h,left,shift+tab", "tab(-1)", "Previous tab", show=False, id="inbox.previous_tab"),
        Binding("escape", "clear", "Clear marks", show=False, id="inbox.clear"),
        Binding("q", "app.quit", "Quit", id="inbox.quit"),
    ]

    def __init__(self) -> None:
        super().__init__(id="inbox")
        self.tab = "pending"
        self.items: dict[int, Headline | Triaged] = {}
        self.query_text = ""

    def compose(self) -> ComposeResult:
        yield Static(id="title", classes="title")
        yield Tabs(*(Tab(title, id=name) for name, title in TAB_TITLES.items()), id="tabs")
        with Vertical(id="body"):
            yield Input(placeholder="filter: model, recipient, registry or event kind", id="filter")
            yield RowList(REVIEW_COLUMNS, markable=True, id="rows")
            yield Static(id="status", classes="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#title", Static).update(self.app.title_line("Inbox"))
        self.query_one(RowList).focus()
        self.load()

    # -- loading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Read the tab's rows in a worker; the screen keeps answering while the ledger is read."""
        tab, desk = self.tab, self.app.desk
        read = desk.triaged if tab == "triaged" else (lambda: desk.headlines(tab))
        self.app.in_background(read, lambda items: self.loaded(tab, items), group="inbox")

    def loaded(self, tab: str, items: list[Any]) -> None:
        if tab != self.tab:
            return
        self.items = {self.key(item): item for item in items}
        self.show()

    @staticmethod
    def key(item: Headline | Triaged) -> int:
        return item.event_id if isinstance(item, Triaged) else item.id

    def show(self) -> None:
        words = self.query_text.lower().split()
        rows = [self.row(item) for item in self.items.values()
                if all(word in self.haystack(item) for word in words)]
        columns = TRIAGED_COLUMNS if self.tab == "triaged" else REVIEW_COLUMNS + (
            (Column("Critic", 7),) if self.tab == "pending" else (Column("Decision", 16),))
        rowlist = self.query_one(RowList)
        rowlist.show(rows, columns, empty=EMPTY.get(self.tab, f"no {self.tab} proposal"))
        self.update_status()

    def haystack(self, item: Headline | Triaged) -> str:
        recipient = "" if isinstance(item, Triaged) else item.recipient
        return f"{item.model} {recipient} {item.registry} {item.event}".lower()

    def row(self, item: Headline | Triaged) -> Row:
        if isinstance(item, Triaged):
            return Row(item.event_id, (str(item.event_id), item.model, item.registry, item.event, item.reason))
        last = critic_status(item) if self.tab == "pending" else item.status + (f": {item.reason}" if item.reason else "")
        return Row(item.id, (f"{item.priority:.1f}", item.recipient, lead(item), item.registry, item.event,
                             age(item.created_at, self.app.desk.now()), item.drafter, last),
                   alert=self.tab == "pending" and item.errors > 0)

    def update_status(self) -> None:
        rowlist = self.query_one(RowList)
        parts = [f"{len(rowlist.rows)} {self.tab}" + (f" of {len(self.items)}" if self.query_text else "")]
        if rowlist.marked:
            parts.append(f"{len(rowlist.marked)} marked: r rejects them, d defers them")
        if self.query_text:
            parts.append(f"filter: {self.query_text}")
        self.query_one("#status", Static).update(" · ".join(parts))

    def on_ledger_changed(self) -> None:
        """A proposal arrived or was decided elsewhere: read the tab again, cursor and marks kept."""
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    # -- keys ---------------------------------------------------------------------------------

    def action_tab(self, step: int) -> None:
        names = list(TAB_TITLES)
        self.query_one(Tabs).active = names[(names.index(self.tab) + step) % len(names)]

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab is None or event.tab.id == self.tab:
            return
        self.tab = event.tab.id or "pending"
        rowlist = self.query_one(RowList)
        rowlist.marked.clear()
        rowlist.cursor = 0
        self.items = {}
        self.show()
        self.load()
        rowlist.focus()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
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
        else:
            self.query_one(RowList).marked.clear()
            self.query_one(RowList).refresh()
            self.update_status()

    def action_mark(self) -> None:
        if self.tab in ("pending", "deferred"):
            self.query_one(RowList).toggle_mark()
            self.update_status()

    def chosen(self) -> list[int]:
        """The marked proposals, else the one under the cursor; only those still open to a decision."""
        rowlist = self.query_one(RowList)
        keys = sorted(rowlist.marked) or ([rowlist.current] if rowlist.current is not None else [])
        return keys if self.tab in ("pending", "deferred") else []

    def action_reject(self) -> None:
        keys, desk = self.chosen(), self.app.desk
        if keys:
            self.app.after_dialog(
                ReasonDialog(f"Reject {self.count(keys)}"),
                lambda answer: desk.reject(desk.reviews(keys), answer.reason, recipient_refused=answer.refused),
                self.decided(f"rejected {self.count(keys)}"))

    def action_defer(self) -> None:
        keys, desk = self.chosen(), self.app.desk
        if keys:
            self.app.after_dialog(DeferDialog(f"Defer {self.count(keys)}"),
                                  lambda answer: desk.defer(desk.reviews(keys), until=answer.until, reason=answer.reason),
                                  self.decided(f"deferred {self.count(keys)}"))

    @staticmethod
    def count(keys: list[int]) -> str:
        return f"review {keys[0]}" if len(keys) == 1 else f"{len(keys)} proposals"

    def decided(self, what: str) -> Callable[[object], None]:
        def done(_: object) -> None:
            self.app.notify(what, title="recorded")
            self.query_one(RowList).marked.clear()
            self.load()
        return done

    def on_row_list_opened(self, event: RowList.Opened) -> None:
        if self.tab == "triaged":
            item = self.items[event.key]
            self.app.notify(item.reason, title=f"{item.event} of {item.model}")
            return
        from tui.screens.proposal import ProposalScreen

        self.app.push_screen(ProposalScreen(event.key))
