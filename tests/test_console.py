"""The review console driven by Textual's Pilot on the demo's proposals: every decision is recorded in the
signed decision log on the channel `tui`, and exactly the approved payloads run (the outbox, the archive)."""

from __future__ import annotations

import asyncio
import re
import functools
import json
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from console_world import SEEN, desk

from tui.app import ReviewConsole
from tui.data import Desk, Dossier
from tui.screens.dialogs import ApproveDialog, ReasonDialog
from tui.screens.proposal import ProposalScreen
from tui.widgets.rowlist import RowList
from weightkeeper import config
from weightkeeper.ledger import Ledger
from weightkeeper.review import Review, ReviewQueue

SIZE = (120, 40)


def driven(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test (its fixtures as they are) in its own event loop."""

    @functools.wraps(test)
    def run(*args: object, **kwargs: object) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def console(home: Path, reviewer: str = "ada", **options: object) -> ReviewConsole:
    return ReviewConsole(desk(home, reviewer), **options)


async def until(pilot, condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Let the console work (its workers run in threads) until `condition` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the console did not get there in time"
        await pilot.pause(0.05)


def rows(app: ReviewConsole) -> list[int]:
    return [row.key for row in app.screen.query_one(RowList).rows]


def reviews(home: Path) -> dict[int, Review]:
    """The queue as it stands on the console's day (SEEN), whatever today's date."""
    with Ledger(config.load(home).ledger_path) as ledger:
        return {review.id: review for review in ReviewQueue(ledger, clock=lambda: SEEN).list()}


def decisions(home: Path, review_id: int) -> list[dict]:
    with Ledger(config.load(home).ledger_path) as ledger:
        return ReviewQueue(ledger).decisions(review_id)


def outbox(home: Path) -> list[str]:
    folder = home / "outbox"
    return [path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.md"))] if folder.exists() else []


def ledger_kinds(home: Path, *kinds: str) -> list[dict]:
    with Ledger(config.load(home).ledger_path) as ledger:
        return [{"kind": row["kind"], **json.loads(row["detail"])} for row in ledger.conn.execute(
            f"SELECT kind, detail FROM events WHERE kind IN ({', '.join('?' * len(kinds))}) ORDER BY id", kinds)]


async def opened(pilot, app: ReviewConsole, review_id: int) -> ProposalScreen:
    """From the inbox, the proposal `review_id` open (the cursor moved down to it)."""
    await until(pilot, lambda: rows(app))
    await pilot.press(*["j"] * rows(app).index(review_id), "enter")
    await until(pilot, lambda: isinstance(app.screen, ProposalScreen) and app.screen.dossier is not None)
    return app.screen


async def approving(pilot, app: ReviewConsole, review_id: int | None = None) -> None:
    """The approve dialog open on the proposal `review_id` (opened from the inbox), or on the one already open."""
    if review_id is not None:
        await opened(pilot, app, review_id)
    await pilot.press("a")
    await until(pilot, lambda: isinstance(app.screen, ApproveDialog))


async def edited(pilot, app: ReviewConsole, change: Callable[[str], str], note: str = "") -> None:
    """`e` on the open proposal, its body changed by `change` (and a note typed), saved: the new version shown."""
    from textual.widgets import TextArea

    from tui.screens.edit import EditScreen

    version = app.screen.dossier.review.version
    await pilot.press("e")
    await until(pilot, lambda: isinstance(app.screen, EditScreen))
    body = app.screen.query_one(TextArea)
    body.text = change(body.text)
    if note:
        await pilot.click("#edit-note")
        await pilot.press(*note)
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(app.screen, ProposalScreen) and app.screen.dossier is not None
                and app.screen.dossier.review.version == version + 1)


async def refused(pilot, app: ReviewConsole, key: str, *answer: str, says: str) -> None:
    """`key` opens a dialog, `answer` is typed into it, and the dialog refuses it, saying `says`."""
    from textual.screen import ModalScreen

    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, ModalScreen))
    await pilot.press(*answer)
    await until(pilot, lambda: says in str(app.screen.query_one("#problem").render()))


def letter_of(text: str, review: Review) -> bool:
    return review.draft.title in text and review.draft.body.strip().splitlines()[0] in text


@driven
async def test_approve_confirms_every_action_and_runs_exactly_the_approved_payloads(console_home: Path) -> None:
    before = reviews(console_home)[1]
    assert [action.kind for action in before.draft.actions] == ["publish", "archive"]
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await approving(pilot, app, 1)
        assert reviews(console_home)[1].status == "pending" and decisions(console_home, 1) == []  # `a` alone: nothing
        await pilot.press("y")
        await until(pilot, lambda: reviews(console_home)[1].status == "executed")
        await until(pilot, lambda: "done" in str(app.screen.query_one("#actions").render()))
    approvals = decisions(console_home, 1)
    assert [(d["decision"], d["action_index"], d["channel"], d["reviewer"]) for d in approvals] == [
        ("approve", 0, "tui", "ada"), ("approve", 1, "tui", "ada")]
    assert [d["payload_sha256"] for d in approvals] == [before.payload_sha256(0), before.payload_sha256(1)]
    (letter,) = outbox(console_home)
    assert letter_of(letter, before)
    assert [event["action"] for event in ledger_kinds(console_home, "action_executed")] == [0, 1]


@driven
async def test_approving_some_actions_runs_only_those(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await approving(pilot, app, 1)
        await pilot.press("down", "space", "y")  # the archive action unselected
        await until(pilot, lambda: reviews(console_home)[1].status == "executed")
    assert [(d["decision"], d["action_index"]) for d in decisions(console_home, 1)] == [("approve", 0)]
    assert len(outbox(console_home)) == 1
    assert ledger_kinds(console_home, "archive_requested", "archive_verified") == []
    assert [event["action"] for event in ledger_kinds(console_home, "action_executed")] == [0]


@driven
async def test_cancelling_the_dialog_or_selecting_nothing_records_nothing(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await approving(pilot, app, 1)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProposalScreen))
        await refused(pilot, app, "a", "space", "down", "space", "y", says="select at least one action")  # none
        await pilot.press("n")
    assert decisions(console_home, 1) == [] and outbox(console_home) == []


@driven
async def test_edit_then_approve_sends_the_edited_letter_of_the_new_version(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app, 2)
        await edited(pilot, app, lambda body: body.replace("Hello larchmont-nlp,", "Dear larchmont-nlp team,"),
                     note="greet the team")
        await approving(pilot, app)
        await pilot.press("y")
        await until(pilot, lambda: reviews(console_home)[2].status == "executed")
    new = reviews(console_home)[2]
    (edit, approval) = decisions(console_home, 2)
    assert (edit["decision"], edit["channel"], edit["reason"]) == (
        "edit", "tui", "greet the team\n\n-Hello larchmont-nlp,\n+Dear larchmont-nlp team,")
    assert (approval["decision"], approval["version"], approval["payload_sha256"]) == (
        "approve", 2, new.payload_sha256(0))
    (letter,) = outbox(console_home)
    assert "Dear larchmont-nlp team," in letter and "Hello larchmont-nlp," not in letter


@driven
async def test_reject_needs_a_reason_and_records_it(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app, 3)
        await refused(pilot, app, "r", "enter", says="needs a reason")  # no reason
        assert decisions(console_home, 3) == []
        await pilot.press(*"the owner archived it already", "enter")
        await until(pilot, lambda: reviews(console_home)[3].status == "rejected")
    (decision,) = decisions(console_home, 3)
    assert (decision["decision"], decision["reason"], decision["channel"]) == (
        "reject", "the owner archived it already", "tui")
    assert ledger_kinds(console_home, "review_rejected")[0]["reason"] == "the owner archived it already"
    assert outbox(console_home) == []


@driven
async def test_defer_until_a_date(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app, 2)
        await refused(pilot, app, "d", *"next week", "enter", says="is not a date")
        await pilot.press(*["backspace"] * 9, *"2027-01-15", "enter", *"the owner is on leave", "enter")
        await until(pilot, lambda: reviews(console_home)[2].status == "deferred")
        await pilot.press("escape", "l")  # back to the inbox, then the deferred tab
        await until(pilot, lambda: rows(app) == [2])
    (decision,) = decisions(console_home, 2)
    assert (decision["decision"], decision["reason"]) == ("defer", "until 2027-01-15; the owner is on leave")


def greeting(review: Review) -> str:
    return review.draft.body.strip().splitlines()[0]


def on_screen(app: ReviewConsole) -> str:
    """The text of the frame the console would draw now."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@driven
async def test_the_next_proposal_shows_nothing_of_the_one_before_while_it_is_read_and_keeps_the_focus(
        console_home: Path) -> None:
    held = threading.Event()

    class SlowLedger(Desk):  # review 2 is read only once the test has looked at the screen
        def dossier(self, review_id: int) -> Dossier:
            if review_id == 2:
                held.wait(30)
            return super().dossier(review_id)

    first, second = reviews(console_home)[1], reviews(console_home)[2]
    app = ReviewConsole(SlowLedger(console_home, "ada", now=desk(console_home).now))
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app, 1)
        await until(pilot, lambda: first.model in on_screen(app) and greeting(first) in on_screen(app))
        focused = app.focused
        await pilot.press("tab")  # the focus elsewhere than where the screen puts it first
        assert app.focused is not focused
        focused = app.focused
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ProposalScreen))
        await pilot.press("j", "enter")
        await until(pilot, lambda: isinstance(app.screen, ProposalScreen) and app.screen.review_id == 2)
        await pilot.pause()
        reading = on_screen(app)
        assert "Review 2 · reading" in reading
        assert first.model not in reading and greeting(first) not in reading
        held.set()
        await until(pilot, lambda: app.screen.dossier is not None and app.screen.dossier.review.id == 2)
        await until(pilot, lambda: second.model in on_screen(app) and greeting(second) in on_screen(app))
        assert app.focused is focused


@driven
async def test_a_deferral_ends_on_its_date_and_the_proposal_is_back_in_the_inbox(console_home: Path) -> None:
    from tui.screens.dialogs import DeferDialog
    from tui.screens.inbox import BACK

    clock = [SEEN]  # 2026-11-02, moved on by the test: nothing waits for a day to pass
    app = ReviewConsole(Desk(console_home, "ada", now=lambda: clock[0]), poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app, 2)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeferDialog))
        await pilot.press(*"2026-11-02", "enter", "enter")  # today: that would be no deferral at all
        await until(pilot, lambda: any("is not after today" in str(note.message) for note in app._notifications))
        assert reviews(console_home)[2].status == "pending"
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeferDialog))
        await pilot.press(*"2026-11-10", "enter", *"the owner is on leave", "enter")
        await until(pilot, lambda: reviews(console_home)[2].status == "deferred")
        await pilot.press("escape")
        await until(pilot, lambda: rows(app) == [1, 3])
        clock[0] = SEEN + timedelta(days=7, hours=10)  # 2026-11-10 00:00 UTC: the deferral's day
        await until(pilot, lambda: rows(app) == [1, 2, 3])
        table = app.screen.query_one(RowList)
        marks = {row.key: row.badge for row in table.rows}
        assert marks == {1: "", 2: BACK, 3: ""}
        assert f"{BACK} 1 back from a deferral" in status_of(app)
        await pilot.press("g", "j")
        await until(pilot, lambda: "until 2026-11-10; the owner is on leave" in on_screen(app))
        await pilot.press("l")  # the deferred tab: empty now
        await until(pilot, lambda: app.screen.tab == "deferred" and app.screen.ready and rows(app) == [])
        await pilot.press("h", "j", "enter")
        await until(pilot, lambda: isinstance(app.screen, ProposalScreen) and app.screen.dossier is not None
                    and app.screen.dossier.review.id == 2)
        history = str(app.screen.query_one("#history").render())
        assert "v1 defer by ada (tui)" in history and "back in the inbox" in history
        assert app.screen.dossier.review.status == "pending"


@driven
async def test_batch_reject_of_the_marked_proposals(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: rows(app) == [1, 2, 3])
        await pilot.press("space", "j", "j", "space", "r")
        await pilot.pause(0.2)
        await pilot.press(*"not ours to ask", "enter")
        await until(pilot, lambda: rows(app) == [2])
    assert {review_id: review.status for review_id, review in reviews(console_home).items()} == {
        1: "rejected", 2: "pending", 3: "rejected"}
    assert [d["reason"] for d in decisions(console_home, 1) + decisions(console_home, 3)] == ["not ours to ask"] * 2
    assert outbox(console_home) == []


@driven
async def test_batch_never_approves(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: rows(app) == [1, 2, 3])
        await pilot.press("space", "j", "space", "a", "y")
        await pilot.pause(0.5)
    assert all(not decisions(console_home, review_id) for review_id in (1, 2, 3)) and outbox(console_home) == []


@driven
async def test_filter_by_model_recipient_registry_or_event(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: rows(app) == [1, 2, 3])
        await pilot.press("slash", *"deleted")
        await until(pilot, lambda: rows(app) == [2, 3])
        await pilot.press(*" quill")
        await until(pilot, lambda: rows(app) == [3])
        await pilot.press("enter", "enter")  # back to the list, then open what is left
        await until(pilot, lambda: isinstance(app.screen, ProposalScreen) and app.screen.review_id == 3)
        await pilot.press("escape", "escape")  # back, then the filter cleared
        await until(pilot, lambda: rows(app) == [1, 2, 3])


@driven
async def test_a_proposal_drafted_meanwhile_appears_without_moving_the_cursor_or_the_marks(console_home: Path) -> None:
    from weightkeeper.cli.reviewing import propose
    from weightkeeper.cli.scanning import scan_registries

    app = console(console_home, poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: rows(app) == [1, 2, 3])
        await pilot.press("j", "j", "space")
        table = app.screen.query_one(RowList)
        assert (table.current, table.marked) == (3, {3})
        registry, copy = Path(config.load(console_home).registries["demo"].settings["path"]), console_home / "gone"
        shutil.copytree(registry, copy)  # this test's own copy of the registry, to delete a model from
        config.add_registry(console_home, config.RegistryConfig("gone", "local", {"path": str(copy)}))
        await asyncio.to_thread(scan_registries, console_home, ["gone"], log=None)
        shutil.rmtree(copy / "bramblecloud" / "ticket-router-bert-base")
        await asyncio.to_thread(scan_registries, console_home, ["gone"], log=None)
        await asyncio.to_thread(propose, console_home, model=None, limit=None, log=lambda line: None)
        await until(pilot, lambda: len(rows(app)) == len(reviews(console_home)) > 3)
        assert (table.current, table.marked) == (3, {3})


@driven
async def test_a_reviewer_without_a_key_is_told_why_and_nothing_is_recorded(console_home: Path) -> None:
    app = console(console_home, reviewer="mallory")
    async with app.run_test(size=SIZE) as pilot:
        await approving(pilot, app, 1)
        await pilot.press("y")
        await until(pilot, lambda: any("no signing key for reviewer 'mallory'" in str(note.message)
                                       for note in app._notifications))
    assert decisions(console_home, 1) == [] and outbox(console_home) == []


@driven
async def test_ten_thousand_pending_proposals_open_and_scroll_to_the_end(console_home: Path) -> None:
    from console_world import crowd

    crowd(console_home, 10_000)
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(rows(app)) == 10_003)
        table = app.screen.query_one(RowList)
        await pilot.press("G")
        await until(pilot, lambda: table.scroll_offset.y == 10_003 + 1 - table.size.height)
        last = table.rows[-1]
        assert table.current == last.key
        assert table.render_line(table.size.height - 1).text.split()[:2] == [last.cells[0], last.cells[1]]
        await pilot.press("g")
        await until(pilot, lambda: table.scroll_offset.y == 0 and table.current == rows(app)[0])


def test_console_keys_are_remapped_from_the_config(console_home: Path) -> None:
    from tui.app import keymap

    settings = config.config_path(console_home)
    settings.write_text(settings.read_text() + '\n[console.keys]\n"inbox.reject" = "x"\n"panel.filter" = "f,slash"\n')
    assert keymap(console_home) == {"inbox.reject": "x", "panel.filter": "f,slash"}

    @driven
    async def rejecting_with_x(home: Path) -> None:
        app = console(home, keymap=keymap(home))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: rows(app) == [1, 2, 3])
            await pilot.press("r")  # remapped away: nothing opens
            await pilot.pause(0.2)
            assert app.screen.id == "inbox"
            await refused(pilot, app, "x", "enter", says="needs a reason")

    rejecting_with_x(console_home)


@pytest.mark.parametrize("table, says", [
    ('[console.keys]\n"inbox.nothing" = "x"\n', "no key binding has the id inbox.nothing"),
    ('[console.keys]\n"inbox.reject" = 3\n', "must be a string"),
    ('[console]\ncolours = "red"\n', "[console] takes only `keys`"),
])
def test_a_wrong_keymap_is_refused_saying_what_to_write(console_home: Path, table: str, says: str) -> None:
    from tui.app import keymap
    from weightkeeper.errors import WeightkeeperError

    settings = config.config_path(console_home)
    settings.write_text(settings.read_text() + "\n" + table)
    with pytest.raises(WeightkeeperError, match=re.escape(says)):
        keymap(console_home)


@driven
async def test_a_critic_error_must_be_overridden_by_id_in_the_dialog(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot, app, 3)  # a figure no evidence holds:
        await edited(pilot, app, lambda body: body + "\nIt was downloaded 987,654 times before it vanished.\n")
        (error,) = reviews(console_home)[3].errors()  # the critic read the edited letter
        await refused(pilot, app, "a", "y", says=f"the critic's error {error} is not overridden")
        await pilot.press("down", "space", "y")  # the override selected, once read
        await until(pilot, lambda: reviews(console_home)[3].status == "executed")
    approval = decisions(console_home, 3)[-1]
    assert (approval["decision"], json.loads(approval["overrides"])) == ("approve", [error])
    (letter,) = outbox(console_home)
    assert "987,654" in letter


@driven
async def test_a_failed_action_is_shown_in_place_and_a_new_version_runs_again(console_home: Path) -> None:
    (console_home / "outbox").write_text("a file where the outbox folder goes")  # the outbox cannot be written
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await approving(pilot, app, 2)
        await pilot.press("y")
        await until(pilot, lambda: "failed" in str(app.screen.query_one("#actions").render()))
        assert "an edit makes a new version" in str(app.screen.query_one("#actions").render())
        assert reviews(console_home)[2].status == "approved" and ledger_kinds(console_home, "action_failed")
        (console_home / "outbox").unlink()
        await edited(pilot, app, lambda body: body + "\n")
        await approving(pilot, app)
        await pilot.press("y")
        await until(pilot, lambda: reviews(console_home)[2].status == "executed")
        await until(pilot, lambda: "done" in str(app.screen.query_one("#actions").render()))
    (letter,) = outbox(console_home)
    assert letter_of(letter, reviews(console_home)[2])


@driven
async def test_the_palette_offers_this_screens_commands(console_home: Path) -> None:
    app = console(console_home)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: rows(app) == [1, 2, 3])
        inbox = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Reject", "Defer", "Mark", "Filter", "Keys", "Theme"} <= inbox and "Approve…" not in inbox
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ProposalScreen))
        proposal = {command.title: command for command in app.get_system_commands(app.screen)}
        assert {"Approve…", "Edit", "Reject", "Defer", "Back"} <= set(proposal) and "Mark" not in proposal
        proposal["Reject"].callback()  # chosen in the palette: the same as the key
        await until(pilot, lambda: isinstance(app.screen, ReasonDialog))


ONE_OF_MANY = re.compile(r"(?<![\d.,])\b1 (?:[a-z]+ )?(?:pages|registries|objects|versions|version\(s\)|files|bytes|"
                         r"models|events|proposals|marked: r rejects them)\b")


def status_of(app: ReviewConsole) -> str:
    return str(app.screen.query_one("#status").render())


@driven
async def test_a_count_of_one_meets_its_noun_in_the_singular(console_home: Path) -> None:
    from tui.screens.registries import ScanProgress

    said: list[str] = []
    ScanProgress(said.append).progress(1, 1)
    assert said == ["scanning : 1 page, 1 model listed so far"]
    app = console(console_home)
    seen: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await approving(pilot, app, 1)
        await pilot.press("y")  # its archive action runs: one archived object, of one version
        await until(pilot, lambda: reviews(console_home)[1].status == "executed")
        await until(pilot, lambda: "done" in str(app.screen.query_one("#actions").render()))
        seen.append(on_screen(app))
        await pilot.press("escape", "slash", *"quill")
        await until(pilot, lambda: rows(app) == [3])
        assert status_of(app) == "1 of 2 pending proposals · filter: quill"
        await pilot.press("enter", "space")
        await until(pilot, lambda: "marked" in status_of(app))
        assert status_of(app).startswith("1 of 2 pending proposals · 1 proposal marked: r rejects it, d defers it")
        seen.append(on_screen(app))
        await pilot.press("4")
        await until(pilot, lambda: app.screen.id == "registries" and rows(app))
        await until(pilot, lambda: "page" in on_screen(app))
        assert status_of(app) == "1 registry"
        seen.append(on_screen(app))
        await pilot.press("5")
        await until(pilot, lambda: app.screen.id == "archive" and rows(app))
        await until(pilot, lambda: "version" in on_screen(app))
        assert status_of(app) == "1 archived object"
        assert "of 1 version," in on_screen(app)
        seen.append(on_screen(app))
    assert [ONE_OF_MANY.findall(text) for text in seen] == [[]] * len(seen)
