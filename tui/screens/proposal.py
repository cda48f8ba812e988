"""One proposal: the letter as the recipient reads it; beside it the evidence each claim cites (and the ledger
rows it came from), the critic's findings, the planned actions with their exact targets, sizes and payload
hashes (and, once run, their results), and the history of decisions and edits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static, TabbedContent, TabPane

from tui.data import Dossier
from tui.letter import laid_out, letter
from tui.screens.dialogs import ApproveDialog, DeferDialog, ReasonDialog
from tui.widgets.keyline import KeyLine
from tui.widgets.rowlist import Column, Row, RowList
from weightkeeper.domain import canonical_json
from weightkeeper.words import counted

EVIDENCE_COLUMNS = (Column("Id", 3), Column("Kind", 11), Column("Statement", 0))


@dataclass(frozen=True)
class Panes:
    """A proposal as the screen shows it, made in a worker thread from its dossier."""

    dossier: Dossier
    width: int  # what the letter was laid out for
    letter: Text
    evidence: list[Row]
    critic: str
    actions: str
    history: str


class ProposalScreen(Screen[None]):
    BINDINGS = [
        Binding("a", "approve", "Approve…", id="proposal.approve"),
        Binding("e", "edit", "Edit", id="proposal.edit"),
        Binding("r", "reject", "Reject", id="proposal.reject"),
        Binding("d", "defer", "Defer", id="proposal.defer"),
        Binding("x", "run_again", "Run again", id="proposal.run_again"),
        Binding("q,escape", "back", "Back", id="proposal.back"),
    ]

    def __init__(self) -> None:
        super().__init__(id="proposal")
        self.review_id: int | None = None
        self.dossier: Dossier | None = None
        self.laid_out_at = 0  # the width the letter was laid out for
        self.item_shown: int | None = None  # the evidence item the pane below the list describes
        self.refocus: Widget | None = None  # what had the focus before the panes were hidden

    def open(self, review_id: int) -> ProposalScreen:
        """Show another proposal: the console keeps one proposal screen, styled once, for every proposal."""
        self.review_id, self.dossier = review_id, None
        if self.is_mounted:
            with self.app.batch_update():
                self.query_one("#title", Static).update(self.app.title_line(f"Review {review_id} · reading…"))
                # Nothing of the proposal shown before stays on screen: its panes are hidden until the new ones
                # arrive from the worker (`loaded` replaces every one), so the first frame draws the title alone.
                self.refocus = self.focused or self.refocus  # hiding blurs it; `loaded` gives the focus back
                self.query_one("#split").styles.visibility = "hidden"
                self.query_one("#evidence", RowList).show([])  # the cursor back on the first item
            self.call_after_refresh(self.load)  # read once that frame is drawn: the worker's thread would slow it
        return self

    def compose(self) -> ComposeResult:
        yield Static(id="title", classes="title")
        with Horizontal(id="split"):
            with VerticalScroll(id="letter-pane"):
                yield Static(id="letter")
            with TabbedContent(id="side"):
                with TabPane("Evidence", id="evidence-tab"):
                    yield RowList(EVIDENCE_COLUMNS, empty="no evidence", id="evidence")
                    yield Static(id="evidence-detail", classes="detail")
                with TabPane("Critic", id="critic-tab"):
                    yield VerticalScroll(Static(id="critic"))
                with TabPane("Actions", id="actions-tab"):
                    yield VerticalScroll(Static(id="actions"))
                with TabPane("History", id="history-tab"):
                    yield VerticalScroll(Static(id="history"))
        yield KeyLine()

    def on_mount(self) -> None:
        self.call_after_refresh(self.load)

    def load(self) -> None:
        review_id, desk, width = self.review_id, self.app.desk, self.letter_width()
        if review_id is not None:
            self.app.in_background(lambda: self.read(desk, review_id, width), self.loaded, group="proposal")

    @staticmethod
    def read(desk: Any, review_id: int, width: int) -> Panes:
        """In a worker thread: the dossier, and every pane made from it, so showing them is only a copy."""
        dossier = desk.dossier(review_id)
        review = dossier.review
        return Panes(dossier, width, laid_out(letter(review), width),
                     [Row(index, (item.id, item.kind, item.statement)) for index, item in enumerate(review.evidence.items)],
                     ProposalScreen.critic_text(dossier), ProposalScreen.actions_text(dossier),
                     ProposalScreen.history_text(dossier))

    def letter_width(self) -> int:
        pane = self.query_one("#letter-pane") if self.is_mounted else None
        return max((pane.scrollable_content_region.width if pane else 0) or self.app.size.width * 3 // 5 - 3, 20)

    def on_ledger_changed(self) -> None:
        """Decided or edited elsewhere meanwhile: show it as it is now."""
        self.load()

    def on_resize(self) -> None:
        if self.dossier is not None and self.letter_width() != self.laid_out_at:
            self.load()

    def loaded(self, panes: Panes) -> None:
        dossier = panes.dossier
        if dossier.review.id != self.review_id:  # another proposal was opened meanwhile
            return
        self.dossier, self.laid_out_at = dossier, panes.width
        review = dossier.review
        covers = f" (+ {', '.join(dossier.members)})" if dossier.members else ""
        with self.app.batch_update():  # one frame for all the panes
            self.query_one("#split").styles.visibility = "visible"
            if self.focused is None and self.refocus is not None:
                self.set_focus(self.refocus, scroll_visible=False)
            self.query_one("#title", Static).update(self.app.title_line(
                f"Review {review.id} · {review.status} · v{review.version} · {review.event} of {review.model}{covers}"
                f" → {review.recipient} · {review.draft.drafter}"))
            self.query_one("#letter", Static).update(panes.letter)
            evidence = self.query_one("#evidence", RowList)
            evidence.show(panes.evidence)
            self.show_item(evidence.current)
            self.query_one("#critic", Static).update(panes.critic)
            self.query_one("#actions", Static).update(panes.actions)
            self.query_one("#history", Static).update(panes.history)

    # -- the panes ----------------------------------------------------------------------------

    def show_item(self, index: int | None) -> None:
        self.item_shown = index
        if self.dossier is None or index is None:
            return
        item = self.dossier.review.evidence.items[index]
        lines = [f"[b]{item.id}[/b] {escape(item.statement)}", f"[dim]source: {escape(item.source)}[/dim]"]
        for row in self.dossier.ledger_rows.get(item.id, []):
            fields = ", ".join(f"{key}={value}" for key, value in row.items() if key != "row" and value is not None)
            lines.append(f"[b]{row['row']}[/b] {escape(fields)}")
        self.query_one("#evidence-detail", Static).update("\n".join(lines))

    def on_row_list_moved(self, event: RowList.Moved) -> None:
        if event.rowlist.id == "evidence" and event.key != self.item_shown:  # not the move `show` announces
            self.show_item(event.key)

    @staticmethod
    def critic_text(dossier: Dossier) -> str:
        findings = dossier.review.findings
        if not findings:
            return "The critic found nothing to say."
        return "\n\n".join(f"[{'red' if finding.severity == 'error' else 'yellow'}]{finding.severity}[/] "
                           f"[b]{finding.id}[/b]\n{escape(finding.message)}" for finding in findings)

    @staticmethod
    def actions_text(dossier: Dossier) -> str:
        review, blocks = dossier.review, []
        files = next((item.facts for item in review.evidence.items if item.kind == "files"), {})
        for index, action in enumerate(review.draft.actions):
            payload = canonical_json(action.payload(review.draft.title, review.draft.body))
            size = (f"{counted(files.get('total_bytes', 0), 'byte')} in {counted(files.get('count', 0), 'file')}"
                    if action.kind == "archive" else counted(len(payload), "byte"))
            lines = [f"[b][{index}] {action.kind}[/b] via {action.channel}", f"to {escape(action.target)}",
                     f"size {size}", f"sha256 {review.payload_sha256(index)}"]
            result = dossier.results.get(index)
            if result is not None:
                lines.append(ProposalScreen.result_line(result))
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) or "No planned action."

    @staticmethod
    def result_line(result: dict[str, Any]) -> str:
        if result.get("outcome") == "done" and "error" not in result:
            where = result.get("path") or result.get("url") or result.get("object_id") or ""
            return f"[green]done[/green] {escape(str(where))}"
        retry = " (x runs it again)" if result.get("resumable") or result.get("outcome") is None else \
            " (an edit makes a new version to approve again)"
        return f"[red]failed[/red] {escape(str(result.get('error') or result.get('refused')))}{retry}"

    @staticmethod
    def history_text(dossier: Dossier) -> str:
        review, lines = dossier.review, [f"created {dossier.review.created_at[:16]} · version {dossier.review.version}"]
        for decision in dossier.decisions:
            what = decision["decision"] + (f" action {decision['action_index']}" if decision["action_index"] is not None
                                           else "")
            lines.append(f"\n[b]v{decision['version']} {what}[/b] by {escape(decision['reviewer'])} "
                         f"({decision['channel']}) {decision['decided_at'][:16]}")
            for line in (decision["reason"] or "").splitlines():
                colour = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
                lines.append(f"[{colour}]{escape(line)}[/{colour}]" if colour else escape(line))
        if review.status == "pending" and review.deferral is not None:
            lines.append(f"\n[b]back in the inbox[/b] from its deferral "
                         f"({escape(review.deferral or 'no date, no reason given')})")
        if len(lines) == 1:
            lines.append(f"\nno decision yet on {review.draft.title!r}")
        return "\n".join(lines)

    # -- decisions ----------------------------------------------------------------------------

    def decided(self, what: str) -> Any:
        def done(result: Any) -> None:
            self.app.notify(what, title="recorded")
            self.load()
            if isinstance(result, list):
                self.app.show_results(result)
        return done

    def action_approve(self) -> None:
        if self.dossier is None:
            return
        review, desk = self.dossier.review, self.app.desk
        if review.status not in ("pending", "deferred"):
            self.app.notify(f"review {review.id} is {review.status}; only a pending or deferred proposal is approved",
                            severity="warning")
            return
        self.app.after_dialog(ApproveDialog(review), lambda answer: desk.approve(review, answer.shown, answer.overrides),
                              self.decided(f"approved review {review.id}"))

    def action_reject(self) -> None:
        if self.dossier is not None:
            review, desk = self.dossier.review, self.app.desk
            self.app.after_dialog(ReasonDialog(f"Reject review {review.id}"),
                                  lambda answer: desk.reject([review], answer.reason, recipient_refused=answer.refused),
                                  self.decided(f"rejected review {review.id}"))

    def action_defer(self) -> None:
        if self.dossier is not None:
            review, desk = self.dossier.review, self.app.desk
            self.app.after_dialog(DeferDialog(f"Defer review {review.id}"),
                                  lambda answer: desk.defer([review], until=answer.until, reason=answer.reason),
                                  self.decided(f"deferred review {review.id}"))

    def action_edit(self) -> None:
        if self.dossier is not None:
            from tui.screens.edit import EditScreen

            self.app.push_screen(EditScreen(self.dossier.review), lambda version: version and self.load())

    def action_run_again(self) -> None:
        if self.dossier is not None and self.dossier.review.status == "approved":
            review = self.dossier.review
            self.app.in_background(lambda: self.app.desk.run_again(review),
                                   self.decided(f"ran review {review.id}'s approved actions again"), group="decide")

    def action_back(self) -> None:
        self.app.pop_screen()
