"""The dialogs a decision passes through. None acts on a single key: an approval lists every planned action with
its target and payload hash and waits for `y`; a rejection waits for a reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from weightkeeper.review import Review

T = TypeVar("T")


@dataclass(frozen=True)
class Approval:
    shown: dict[int, str]  # action index -> the payload sha256 the reviewer was shown
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Rejection:
    reason: str
    refused: bool  # the recipient asked not to be contacted


@dataclass(frozen=True)
class Deferral:
    until: date | None
    reason: str | None


class Dialog(ModalScreen[T | None]):
    """A dialog over the screen: a heading, its fields, a hint of its keys, and a line for what is wrong with
    the answer. `escape` cancels (dismissed with None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]
    hint = ""

    def __init__(self, heading: str) -> None:
        super().__init__(classes="dialog")
        self.heading = heading

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.heading, classes="heading")
            yield from self.fields()
            yield Static(self.hint, classes="hint")
            yield Static(id="problem", classes="problem")

    def fields(self) -> ComposeResult:
        yield from ()

    def problem(self, text: str) -> None:
        self.query_one("#problem", Static).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ApproveDialog(Dialog[Approval]):
    """Every planned action, selected; `space` toggles one, `y` approves the selected ones, `n` or `escape`
    cancels. The critic's errors are listed too, unselected: each must be selected (overridden, once read)."""

    BINDINGS = [
        Binding("y", "approve", "Approve selected", id="approve.yes"),
        Binding("n,escape", "cancel", "Cancel", id="approve.no"),
    ]
    hint = "space toggles · y approves the selected actions · n or escape cancels"

    def __init__(self, review: Review) -> None:
        super().__init__(f"Approve review {review.id}, version {review.version}: {review.draft.title}")
        self.review = review

    def fields(self) -> ComposeResult:
        review = self.review
        errors = [finding for finding in review.findings if finding.severity == "error"]
        selections: list[Selection[str]] = [
            Selection(f"[{index}] {action.kind} via {action.channel}", f"action:{index}", True)
            for index, action in enumerate(review.draft.actions)]
        selections += [Selection(Text.assemble(("override ", "bold red"), finding.id), f"override:{finding.id}", False)
                       for finding in errors]
        details = [Text.assemble((f"[{index}] ", "bold"), f"{action.kind} via {action.channel} to ",
                                 (action.target, "bold"), f"\n    payload sha256 {review.payload_sha256(index)}")
                   for index, action in enumerate(review.draft.actions)]
        details += [Text.assemble(("override ", "bold red"), (finding.id, "bold"), f": {finding.message}")
                    for finding in errors]
        yield SelectionList[str](*selections, id="choices")
        yield Static(Text("\n").join(details), classes="details")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_approve(self) -> None:
        chosen = set(self.query_one(SelectionList).selected)
        actions = sorted(int(value.split(":")[1]) for value in chosen if value.startswith("action:"))
        overrides = tuple(sorted(value.split(":", 1)[1] for value in chosen if value.startswith("override:")))
        missing = [error for error in self.review.errors() if error not in overrides]
        if not actions:
            self.problem("select at least one action to approve")
        elif missing:
            self.problem(f"the critic's error {', '.join(missing)} is not overridden: read it and select it, or "
                         "cancel and edit the letter (e)")
        else:
            self.dismiss(Approval({index: self.review.payload_sha256(index) for index in actions}, overrides))


class ReasonDialog(Dialog[Rejection]):
    """A rejection's reason, required: it is kept, and the drafters learn from it."""

    hint = "enter rejects · escape cancels"

    def fields(self) -> ComposeResult:
        yield Input(placeholder="why (required; kept, and fed to the drafters as guidance)", id="reason")
        yield Checkbox("the recipient asked not to be contacted: block them", id="refused")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if reason:
            self.dismiss(Rejection(reason, self.query_one(Checkbox).value))
        else:
            self.problem("a rejection needs a reason")


class DeferDialog(Dialog[Deferral]):
    """Put aside until a date (optional) with a reason (optional)."""

    hint = "enter moves on, then defers · escape cancels"

    def fields(self) -> ComposeResult:
        yield Input(placeholder="until YYYY-MM-DD (optional)", id="until")
        yield Input(placeholder="why (optional)", id="reason")

    def on_mount(self) -> None:
        self.query_one("#until", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = self.query_one("#until", Input).value.strip()
        try:
            until = date.fromisoformat(text) if text else None
        except ValueError:
            self.problem(f"{text!r} is not a date; write it as 2027-01-31")
            return
        if event.input.id == "until":
            self.query_one("#reason", Input).focus()
        else:
            self.dismiss(Deferral(until, self.query_one("#reason", Input).value.strip() or None))
