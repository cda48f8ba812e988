"""Editing a letter: saving makes a new version, which the critic reads again; any approval of the old one is
void (the queue enforces it)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static, TextArea

from tui.widgets.keyline import KeyLine
from weightkeeper.review import Review


class EditScreen(Screen[int | None]):
    """Dismissed with the new version number, or None when left unsaved."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save as a new version", id="edit.save"),
        Binding("escape", "cancel", "Cancel", id="edit.cancel"),
    ]

    def __init__(self, review: Review) -> None:
        super().__init__(id="edit")
        self.review = review

    def compose(self) -> ComposeResult:
        review = self.review
        yield Static(self.app.title_line(f"Editing review {review.id}, version {review.version}"), classes="title")
        yield Input(review.draft.title, placeholder="title", id="edit-title")
        yield TextArea(review.draft.body, soft_wrap=True, id="edit-body")
        yield Input(placeholder="note for the record and the drafters (optional)", id="edit-note")
        yield KeyLine()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        title = self.query_one("#edit-title", Input).value.strip()
        body = self.query_one(TextArea).text
        note = self.query_one("#edit-note", Input).value.strip() or None
        if (title, body) == (self.review.draft.title, self.review.draft.body):
            self.app.notify("nothing changed; escape leaves without a new version", severity="warning")
            return
        if not title or not body.strip():
            self.app.notify("a letter needs a title and a body", severity="error")
            return

        def saved(version: int) -> None:
            self.app.notify(f"review {self.review.id} is now version {version}; the critic read it again, and it "
                            "needs a new approval", title="saved")
            self.dismiss(version)

        desk = self.app.desk
        self.app.in_background(lambda: desk.edit(self.review, title=title, body=body, note=note), saved, group="decide")

    def action_cancel(self) -> None:
        self.dismiss(None)
