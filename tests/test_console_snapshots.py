"""Every screen of the console as it looks at 80x24 and 120x40, compared with the SVGs under
tests/__snapshots__/ (accepted by a person; `pytest --snapshot-update` writes them anew). The demo's ledger is
built at a fixed time and the console's clock is fixed, so the screens are the same on every run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from test_console import console, until

from tui.screens.dialogs import ApproveDialog
from tui.screens.proposal import ProposalScreen
from tui.widgets.rowlist import RowList

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def inbox_ready(app) -> Callable:
    async def ready(pilot) -> None:
        await until(pilot, lambda: app.screen.id == "inbox" and len(app.screen.query_one(RowList).rows) == 3)
    return ready


def after(first: Callable, *keys: str, ready: Callable[[object], bool]) -> Callable:
    """Once `first` is done, press `keys`, then wait until `ready(app.screen)`."""
    async def run(pilot) -> None:
        await first(pilot)
        await pilot.press(*keys)
        await until(pilot, lambda: ready(pilot.app.screen))
        await pilot.pause()
    return run


def proposal_ready(screen: object) -> bool:
    return isinstance(screen, ProposalScreen) and screen.dossier is not None


def rows_shown(count: int) -> Callable[[object], bool]:
    def shown(screen: object) -> bool:
        rows = screen.query(RowList)
        return bool(rows) and len(rows.first().rows) == count
    return shown


def plotted(screen: object) -> bool:
    return getattr(screen, "figures", None) is not None


SCREENS: dict[str, Callable[[object], Callable[..., Awaitable[None]]]] = {
    "inbox": inbox_ready,
    "triaged": lambda app: after(inbox_ready(app), "h", ready=rows_shown(3)),
    "proposal": lambda app: after(inbox_ready(app), "enter", ready=proposal_ready),
    "approve_dialog": lambda app: after(after(inbox_ready(app), "enter", ready=proposal_ready), "a",
                                        ready=lambda screen: isinstance(screen, ApproveDialog)),
    "keys": lambda app: after(inbox_ready(app), "question_mark", ready=lambda screen: bool(screen.query("HelpPanel"))),
    "ledger": lambda app: after(inbox_ready(app), "2", ready=rows_shown(30)),
    "stats": lambda app: after(inbox_ready(app), "3", ready=plotted),
    "registries": lambda app: after(inbox_ready(app), "4", ready=rows_shown(1)),
    "archive": lambda app: after(inbox_ready(app), "5", ready=lambda screen: screen.id == "archive"
                                 and "archived objects" in str(screen.query_one("#status").render())),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", list(SCREENS))
def test_screen(name: str, size: tuple[int, int], console_home: Path, snap_compare) -> None:
    app = console(console_home, poll_seconds=3600)
    assert snap_compare(app, terminal_size=size, run_before=SCREENS[name](app))
