"""The review console: `weightkeeper review` with no subcommand.

Screens (tui/screens/): the inbox, one proposal, the ledger, the statistics, the registries and the archive;
`1`…`5` switch between them, `?` shows the keys that work here, ctrl+p the current screen's commands. Every
binding has an id, and `[console.keys]` in weightkeeper.toml remaps it. The ledger is read and decisions are
recorded in worker threads. Proposals drafted meanwhile appear in place: on a PostgreSQL store the console hears the
database's notice of each change (`follow`), on SQLite (or while it cannot listen) it polls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from tui.data import Desk
from tui.screens.archive import ArchiveScreen
from tui.screens.inbox import InboxScreen
from tui.screens.ledger import LedgerScreen
from tui.screens.panel import Panel
from tui.screens.proposal import ProposalScreen
from tui.screens.registries import RegistriesScreen
from tui.screens.stats import StatsScreen
from weightkeeper.errors import WeightkeeperError

T = TypeVar("T")
POLL_SECONDS = 2.0
# While the database's notices are heard the poll reads only this often: for what no notice says (a day began, so a
# deferral may have ended).
HEARD_POLL_SECONDS = 60.0
NOTICE_GAP_SECONDS = 0.5  # at most one read per this long however many notices come (a scan's batches)
RECONNECT_SECONDS = 5.0
UNHEARD = "not following the ledger live"


class LedgerChanged(Message):
    """A review arrived or was decided since the last poll."""


class ReviewConsole(App[None]):
    CSS_PATH = Path(__file__).with_name("console.tcss")  # absolute: a subclass elsewhere finds it too
    TITLE = "weightkeeper"
    MODES = {"inbox": InboxScreen, "ledger": LedgerScreen, "stats": StatsScreen, "registries": RegistriesScreen,
             "archive": ArchiveScreen}
    BINDINGS = [
        Binding("1", "screen('inbox')", "Inbox", show=False, id="app.inbox"),
        Binding("2", "screen('ledger')", "Ledger", show=False, id="app.ledger"),
        Binding("3", "screen('stats')", "Stats", show=False, id="app.stats"),
        Binding("4", "screen('registries')", "Registries", show=False, id="app.registries"),
        Binding("5", "screen('archive')", "Archive", show=False, id="app.archive"),
        Binding("question_mark", "keys", "Keys", id="app.keys"),
        Binding("ctrl+t", "toggle_theme", "Light/dark", show=False, id="app.theme"),
    ]

    def __init__(self, desk: Desk, *, poll_seconds: float = POLL_SECONDS, reconnect_seconds: float = RECONNECT_SECONDS,
                 keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.desk, self.poll_seconds, self.reconnect_seconds, self.seen = desk, poll_seconds, reconnect_seconds, None
        self.listening, self.read_at = False, 0.0
        self.unheard: str | None = None  # what the status line says while the notices are not heard
        if keymap:
            self.set_keymap(keymap)

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        self.switch_mode("inbox")
        self.set_interval(self.poll_seconds, self.poll)
        self.run_worker(self.follow, group="follow", exit_on_error=False)

    def proposal(self, review_id: int) -> ProposalScreen:
        """The proposal screen, showing `review_id`: one instance, installed once, so opening one restyles nothing."""
        if not self.is_screen_installed("proposal"):
            self.install_screen(ProposalScreen(), "proposal")
        return self.get_screen("proposal").open(review_id)

    def title_line(self, where: str) -> str:
        return f"[b]weightkeeper[/b] · {where} · reviewer {self.desk.reviewer}"

    # -- background work ----------------------------------------------------------------------

    def in_background(self, work: Callable[[], T], done: Callable[[T], object], *, group: str) -> None:
        """Run `work` in a thread (it opens the ledger there), then `done` with its result on the screen's
        thread. A refusal (a WeightkeeperError: a missing key, a stale version) is shown, never swallowed."""

        def run() -> None:
            try:
                result = work()
            except WeightkeeperError as exc:
                self.call_from_thread(self.notify, str(exc), title="not done", severity="error", timeout=12)
            else:
                self.call_from_thread(done, result)

        self.run_worker(run, thread=True, group=group, exit_on_error=False)

    def after_dialog(self, dialog: Screen[T | None], work: Callable[[T], Any], done: Callable[[Any], object]) -> None:
        """Open a dialog; when it is answered (not cancelled), run `work` with the answer in the background."""
        self.push_screen(dialog, lambda answer: None if answer is None else
                         self.in_background(partial(work, answer), done, group="decide"))

    # -- following the ledger -----------------------------------------------------------------

    def poll(self) -> None:
        """Every `poll_seconds`; while the database's notices are heard, only every HEARD_POLL_SECONDS."""
        if not self.listening or time.monotonic() - self.read_at >= HEARD_POLL_SECONDS:
            self.read_ledger()

    def read_ledger(self, *, catch_up: bool = False) -> None:
        """The one read that follows the ledger, for a poll, a notice or a catch-up: its fingerprint, compared with
        the last one read."""
        self.read_at = time.monotonic()
        self.in_background(self.desk.fingerprint, partial(self.compare, catch_up=catch_up), group="poll")

    def compare(self, fingerprint: tuple[Any, ...], *, catch_up: bool = False) -> None:
        """Tell every open screen, of every top screen's stack, that the ledger changed. The first fingerprint read
        is only remembered (the screens read the ledger as they opened), unless it catches up: what changed
        between their reading and the first notice heard is not known otherwise."""
        if fingerprint != self.seen and (self.seen is not None or catch_up):
            for screen in self.open_screens():
                screen.post_message(LedgerChanged())
        self.seen = fingerprint

    async def follow(self) -> None:
        """On a PostgreSQL store, hear the database's notices (an async worker: the screen never waits on it) and
        read the ledger on each; on each (re)connection read it once, to catch up with what changed while nothing
        listened. While it cannot listen, the status line says so, the poll reads every `poll_seconds`, and it
        tries again every `reconnect_seconds`. On SQLite it returns at once: the poll follows the ledger."""
        while True:
            try:
                notices = await self.desk.notices()
                if notices is None:
                    return
                async with notices:
                    self.hearing(None)
                    while True:
                        await notices.changed()
                        self.read_ledger()
                        await asyncio.sleep(NOTICE_GAP_SECONDS)
            except WeightkeeperError as exc:
                self.hearing(str(exc))
            await asyncio.sleep(self.reconnect_seconds)

    def hearing(self, problem: str | None) -> None:
        """The notices are heard (`problem` None: catch up), or not: say why once, and poll until they are again."""
        if problem is None:
            self.unheard = None
            self.read_ledger(catch_up=True)
        elif self.unheard is None:
            self.notify(problem, title=UNHEARD, severity="warning", timeout=12)
            self.unheard = f"{UNHEARD}: reading it every {self.poll_seconds:,g} s until it is heard again"
        self.listening = problem is None
        for screen in self.open_screens():
            if isinstance(screen, Panel) and screen.is_mounted:
                screen.update_status()

    def open_screens(self) -> list[Screen[Any]]:
        screens = []
        for mode in self.MODES:
            try:
                screens += self.get_screen_stack(mode)
            except KeyError:  # a top screen not opened yet
                continue
        return screens

    def show_results(self, results: list[dict[str, Any]]) -> None:
        for result in results:
            failed = "error" in result or "refused" in result
            self.notify(str(result.get("error") or result.get("refused") or result.get("target", "")),
                        title=f"action {result.get('action', '')} {'failed' if failed else 'done'}",
                        severity="error" if failed else "information", timeout=10)

    # -- screens and keys ---------------------------------------------------------------------

    def action_screen(self, name: str) -> None:
        """Each top screen keeps its own stack: a proposal left open is there on coming back."""
        if name in self.MODES:
            self.switch_mode(name)

    def action_keys(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette offers what the keys of this screen do, then the app's own commands."""
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if active.enabled and binding.description and not binding.system:
                yield SystemCommand(binding.description, f"{binding.action} ({key})",
                                    partial(self.call_later, active.node.run_action, binding.action))
        yield from super().get_system_commands(screen)


def binding_ids() -> set[str]:
    """The ids of every binding of the console, its screens, dialogs and widgets: what [console.keys] remaps."""
    from tui.screens.dialogs import ApproveDialog, DeferDialog, ReasonDialog
    from tui.screens.edit import EditScreen
    from tui.widgets.rowlist import RowList

    owners = (ReviewConsole, InboxScreen, LedgerScreen, StatsScreen, RegistriesScreen, ArchiveScreen, ProposalScreen,
              EditScreen, ApproveDialog, ReasonDialog, DeferDialog, RowList)
    return {binding.id for owner in owners for kind in owner.__mro__ for binding in vars(kind).get("BINDINGS", ())
            if isinstance(binding, Binding) and binding.id}


def keymap(home: Path) -> dict[str, str]:
    """[console.keys] of the home's config, each id checked against the console's bindings."""
    from weightkeeper import config

    keys = config.load(home).console.keys
    known = binding_ids()
    unknown = sorted(set(keys) - known)
    if unknown:
        raise WeightkeeperError(f"[console.keys] in {config.config_path(home)}: no key binding has the id "
                                f"{', '.join(unknown)}; the ids are {', '.join(sorted(known))}")
    return keys


def prepared(home: Path) -> dict[str, str]:
    """Open the home's ledger once (created and migrated if new) before the console's workers open it at once,
    and read its keymap. Returns the keymap."""
    from weightkeeper import config
    from weightkeeper.ledger import Ledger

    keys = keymap(home)
    with Ledger(config.load(home).store):
        return keys


def run_console(home: Path, *, reviewer: str | None = None) -> None:
    from weightkeeper.cli.reviewing import on_terminal, reviewer_name

    on_terminal("the review console", "Without one, `weightkeeper review list` prints the queue and `weightkeeper "
                                      "review show ID` a proposal")
    ReviewConsole(Desk(home, reviewer_name(reviewer)), keymap=prepared(home)).run()
