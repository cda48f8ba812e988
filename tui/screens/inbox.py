"""The inbox: proposals waiting for a decision, highest priority first; tabs for the deferred, decided and
executed ones, and for the events the coordinator left alone (with its reason)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Tab, Tabs

from tui.data import Triaged, age, came_back, critic_status, lead
from tui.screens.dialogs import DeferDialog, ReasonDialog
from tui.screens.panel import Panel
from tui.widgets.rowlist import Column, Row, RowList
from weightkeeper.review import Headline
from weightkeeper.words import counted

TAB_TITLES = {"pending": "Pending", "deferred": "Deferred", "decided": "Decided", "executed": "Executed",
              "triaged": "Triaged"}
REVIEW_COLUMNS = (Column("Prio", 5, right=True), Column("Recipient", 11), Column("Model", 0), Column("Registry", 7),
                  Column("Event", 11), Column("Age", 4, right=True), Column("Drafter", 7))
TRIAGED_COLUMNS = (Column("Event", 6, right=True), Column("Model", 24), Column("Registry", 8), Column("Kind", 12),
                   Column("Why no proposal", 0))
FIRST = 200  # proposals read before the first paint; the rest follow
BACK = "↻"  # a pending proposal that was deferred before (its deferral ended, or a new event amended it)
EMPTY = {"pending": "no proposal waits for a decision; `weightkeeper propose` drafts them for recorded events",
         "triaged": "every event that may need a proposal has one"}


class InboxScreen(Panel):
    BINDINGS = [
        Binding("space", "mark", "Mark", id="inbox.mark"),
        Binding("r", "reject", "Reject", id="inbox.reject"),
        Binding("d", "defer", "Defer", id="inbox.defer"),
        Binding("l,right,tab", "tab(1)", "Next tab", show=False, id="inbox.next_tab"),
        Binding("h,left,shift+tab", "tab(-1)", "Previous tab", show=False, id="inbox.previous_tab"),
    ]
    heading = "Inbox"
    columns = REVIEW_COLUMNS
    markable = True
    hint = "filter: model, recipient, registry or event kind; or field:value, e.g. event:deleted"

    def __init__(self) -> None:
        super().__init__()
        self.tab, self.whole = "pending", False
        self.back = 0  # how many of the proposals read are back from a deferral

    def above(self) -> ComposeResult:
        yield Tabs(*(Tab(title, id=name) for name, title in TAB_TITLES.items()), id="tabs")

    def read(self) -> Callable[[], list[Any]]:
        tab, desk = self.tab, self.app.desk
        read = desk.triaged if tab == "triaged" else (lambda: desk.headlines(tab))
        return lambda: (tab, True, read())

    def load(self) -> None:
        """The first screenful first, then all: ten thousand proposals take a while to read."""
        if not self.items and self.tab != "triaged":
            tab, desk = self.tab, self.app.desk
            self.app.in_background(lambda: (tab, False, desk.headlines(tab, FIRST)), self.loaded, group="inbox")
        super().load()

    def loaded(self, answer: tuple[str, bool, list[Any]]) -> None:
        tab, whole, items = answer
        if tab == self.tab and (whole or not self.whole):  # not a tab left meanwhile, nor a part after the whole
            self.whole, self.back = whole, sum(1 for item in items if came_back(item))
            super().loaded(items)

    def key(self, item: Headline | Triaged) -> int:
        return item.event_id if isinstance(item, Triaged) else item.id

    def shown_columns(self) -> tuple[Sequence[Column], str]:
        columns = TRIAGED_COLUMNS if self.tab == "triaged" else REVIEW_COLUMNS + (
            (Column("Critic", 7),) if self.tab == "pending" else (Column("Decision", 16),))
        return columns, EMPTY.get(self.tab, f"no {self.tab} proposal")

    def haystack(self, item: Headline | Triaged) -> str:
        recipient = "" if isinstance(item, Triaged) else f" recipient:{item.recipient}"
        return f"model:{item.model}{recipient} registry:{item.registry} event:{item.event}".lower()

    def row(self, item: Headline | Triaged) -> Row:
        if isinstance(item, Triaged):
            return Row(item.event_id, (str(item.event_id), item.model, item.registry, item.event, item.reason))
        last = critic_status(item) if self.tab == "pending" else item.status + (f": {item.reason}" if item.reason else "")
        return Row(item.id, (f"{item.priority:.1f}", item.recipient, lead(item), item.registry, item.event,
                             age(item.created_at, self.app.desk.now()), item.drafter, last),
                   alert=self.tab == "pending" and item.errors > 0, badge=BACK if came_back(item) else "")

    def noun(self) -> tuple[str, str]:
        what = "event" if self.tab == "triaged" else "proposal"
        return f"{self.tab} {what}", f"{self.tab} {what}s"

    def describe(self, item: Headline | Triaged) -> str | None:
        """A triaged event's whole reason (its column is cut short), and what a proposal back from a deferral was
        deferred for; a proposal opens with enter."""
        if isinstance(item, Triaged):
            return f"{item.event} of {item.model} (event {item.event_id}): {item.reason}"
        return f"{BACK} deferred before: {escape(item.deferral or 'no date, no reason given')}" if came_back(item) \
            else None

    def status(self) -> list[str]:
        marked, parts = self.query_one(RowList).marked, []
        if self.back:
            parts.append(f"{BACK} {self.back:,} back from a deferral")
        if marked:
            them = "it" if len(marked) == 1 else "them"
            parts.append(f"{counted(len(marked), 'proposal')} marked: r rejects {them}, d defers {them}")
        return parts

    # -- keys ---------------------------------------------------------------------------------

    def action_tab(self, step: int) -> None:
        names = list(TAB_TITLES)
        self.query_one(Tabs).active = names[(names.index(self.tab) + step) % len(names)]

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab is None or event.tab.id == self.tab:
            return
        self.tab, self.whole = event.tab.id or "pending", False
        rowlist = self.query_one(RowList)
        rowlist.marked.clear()
        rowlist.cursor = 0
        self.items, self.back = {}, 0
        self.show()
        self.load()
        rowlist.focus()

    def action_clear(self) -> None:
        rowlist = self.query_one(RowList)
        if self.query_one("#filter", Input).has_focus or self.query_text or not rowlist.marked:
            super().action_clear()
        else:
            rowlist.marked.clear()
            rowlist.refresh()
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
            return  # its reason is in the pane below
        self.app.push_screen(self.app.proposal(event.key))
