"""The review console with 10,000 pending proposals, beside a bare Textual DataTable filled with the same
10,000 rows in the same run (the anchor: it builds every row before its first paint).

Targets (issue 15):
- launch to the inbox's first rows: at most 0.5 s;
- key latency for `j`, `enter` and `escape`, from the key event to the end of the refresh it causes: at most
  50 ms median, and for `j` at most 1.5x the bare table's.

    python benchmarks/tui.py [--proposals 10000] [--repeat 20]

Measured inside the app, headless (Textual's run_test at 120x40): a key's time starts when the app receives
its event and ends with the first frame composed after the state it causes holds (the cursor on the next
row; the proposal screen; the inbox back). Pilot's own press-and-pause is not counted. The proposal's
letter is read from the ledger and laid out in a worker thread: the time to it is printed too, and so is
the CPU time the screen's thread spent from each key to its frame, which a loaded machine stretches far less
than the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from textual import events  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from tui.app import ReviewConsole  # noqa: E402
from tui.screens.inbox import InboxScreen  # noqa: E402
from tui.screens.proposal import ProposalScreen  # noqa: E402
from tui.widgets.rowlist import RowList  # noqa: E402

SIZE = (120, 40)


class Stopwatch:
    """Times, inside the app, from a key event to the first frame composed once each watched state holds."""

    started = 0.0
    key_at = 0.0
    key_cpu = 0.0

    def watch(self, **states: Callable[[], bool]) -> None:
        self.states, self.reached, self.cpu = states, {}, {}

    def _display(self, screen: Any, renderable: Any) -> None:
        super()._display(screen, renderable)  # type: ignore[misc]
        if renderable is not None:
            for name, holds in list(self.states.items()):
                if holds():
                    self.reached[name] = time.perf_counter()
                    self.cpu[name] = time.thread_time() - self.key_cpu  # this thread's CPU: what load cannot inflate
                    del self.states[name]

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.key_at, self.key_cpu = time.perf_counter(), time.thread_time()
        await super().on_event(event)  # type: ignore[misc]


class TimedConsole(Stopwatch, ReviewConsole):
    def table(self) -> RowList:
        return self.screen.query_one(RowList)


class BareTable(Stopwatch, App[None]):
    def __init__(self, rows: list[tuple[str, ...]], columns: tuple[str, ...]) -> None:
        super().__init__()
        self.rows, self.columns = rows, columns

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*self.columns)
        table.add_rows(self.rows)
        table.focus()


async def settle(pilot: Any, app: Stopwatch, name: str = "done", timeout: float = 30.0) -> float:
    """Wait for the watched state `name`'s frame; the time from the key (or the launch) to it."""
    deadline = time.monotonic() + timeout
    while name not in app.reached:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: the watched state never reached the screen")
        await pilot.pause(0.005)
    return app.reached[name] - (app.key_at or app.started)


async def console_figures(home: Path, count: int, repeat: int) -> dict[str, Any]:
    from console_world import desk

    app = TimedConsole(desk(home), poll_seconds=3600)
    app.watch(done=lambda: isinstance(app.screen, InboxScreen) and bool(app.table().rows),
              every=lambda: isinstance(app.screen, InboxScreen) and len(app.table().rows) == count)
    app.started = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        launch = await settle(pilot, app)
        every = await settle(pilot, app, "every")
        figures: dict[str, list[float]] = {"j": [], "enter": [], "letter": [], "escape": []}
        cpu: dict[str, list[float]] = {"j": [], "enter": [], "escape": []}
        for _ in range(repeat):
            table = app.table()
            target = table.cursor + 1
            app.watch(done=lambda: table.cursor == target)
            await pilot.press("j")
            figures["j"].append(await settle(pilot, app))
            cpu["j"].append(app.cpu["done"])
            app.watch(done=lambda: isinstance(app.screen, ProposalScreen),
                      letter=lambda: isinstance(app.screen, ProposalScreen) and app.screen.dossier is not None)
            await pilot.press("enter")
            figures["enter"].append(await settle(pilot, app))
            cpu["enter"].append(app.cpu["done"])
            figures["letter"].append(await settle(pilot, app, "letter"))
            app.watch(done=lambda: isinstance(app.screen, InboxScreen))
            await pilot.press("escape")
            figures["escape"].append(await settle(pilot, app))
            cpu["escape"].append(app.cpu["done"])
        rows = [row.cells for row in app.table().rows]
        columns = tuple(column.title for column in app.table().columns)
    return {"launch": launch, "every": every, "keys": figures, "cpu": cpu, "rows": rows, "columns": columns}


async def bare_figures(rows: list[tuple[str, ...]], columns: tuple[str, ...], repeat: int) -> dict[str, Any]:
    app = BareTable(rows, columns)
    app.watch(done=lambda: bool(app.query(DataTable)) and app.query_one(DataTable).row_count == len(rows))
    app.started = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        launch = await settle(pilot, app)
        table, keys = app.query_one(DataTable), []
        for _ in range(repeat):
            target = table.cursor_row + 1
            app.watch(done=lambda: table.cursor_row == target)
            await pilot.press("down")
            keys.append(await settle(pilot, app))
    return {"launch": launch, "j": keys}


def build(count: int) -> Path:
    from console_world import crowd, demo_home

    base = Path(tempfile.mkdtemp(prefix="weightkeeper-tui-bench-"))
    os.environ["WEIGHTKEEPER_KEYS_DIR"] = str(base / "keys")
    home = demo_home(base / "home")
    crowd(home, count - 3)  # the demo's three, and copies of the first
    return home


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    home = build(args.proposals)
    mine = asyncio.run(console_figures(home, args.proposals, args.repeat))
    bare = asyncio.run(bare_figures(mine["rows"], mine["columns"], args.repeat))
    medians = {key: statistics.median(values) for key, values in mine["keys"].items()}
    bare_j = statistics.median(bare["j"])
    print(f"{args.proposals:,} pending proposals, {args.repeat} presses of each key, {SIZE[0]}x{SIZE[1]}, headless")
    print(f"launch to first rows   console {ms(mine['launch'])}   bare DataTable {ms(bare['launch'])}   (target <= 500 ms)")
    print(f"launch to all {args.proposals:,} rows  console {ms(mine['every'])}   (read in a worker after the first rows)")
    for key in ("j", "enter", "escape"):
        values = mine["keys"][key]
        print(f"key {key:<7} median {ms(medians[key])}  max {ms(max(values))}"
              + (f"   bare DataTable {ms(bare_j)}  ratio {medians['j'] / bare_j:.2f}x (target <= 1.5x)" if key == "j"
                 else "") + "   (target <= 50 ms)")
    print(f"enter to the letter, read and laid out in a worker: median {ms(medians['letter'])}  "
          f"max {ms(max(mine['keys']['letter']))}")
    print("the screen's thread's CPU from the key to that frame (what other programs' load does not add): "
          + ", ".join(f"{key} {ms(statistics.median(values)).strip()}" for key, values in mine["cpu"].items()))
    met = (mine["launch"] <= 0.5 and all(medians[key] <= 0.05 for key in ("j", "enter", "escape"))
           and medians["j"] <= 1.5 * bare_j)
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
