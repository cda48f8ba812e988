"""The registries: each one's last scan, status, counts and problems, and its next scheduled run. `s` scans
the one under the cursor now (a scan acts on nobody's model and needs no approval), showing its progress as
the CLI does: pages and models so far, and any wait the registry asks for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.markup import escape
from textual.binding import Binding
from textual.widgets import Static

from tui.data import RegistryState
from tui.screens.panel import Panel
from tui.widgets.rowlist import Column, Row, RowList
from weightkeeper.cli.progress import listed


class RegistriesScreen(Panel):
    BINDINGS = [Binding("s", "scan", "Scan now", id="registries.scan")]
    heading = "Registries"
    columns = (Column("Name", 12), Column("Kind", 6), Column("Last scan", 16), Column("Status", 11),
               Column("Models", 7, right=True), Column("Problems", 8, right=True), Column("Next run", 0))

    def read(self) -> Callable[[], list[Any]]:
        return self.app.desk.registries

    def key(self, item: RegistryState) -> int:
        return hash(item.name)

    def row(self, item: RegistryState) -> Row:
        scan = item.last_scan or {}
        return Row(hash(item.name), (item.name, item.kind, (scan.get("started_at") or "never")[:16].replace("T", " "),
                                     scan.get("status", "—"), f"{scan.get('models_seen', 0):,}",
                                     str(len(item.problems)), item.next_run),
                   alert=scan.get("status") == "failed" or bool(item.problems))

    def noun(self) -> tuple[str, str]:
        return "registry", "registries"

    def haystack(self, item: RegistryState) -> str:
        return f"{item.name} {item.kind} {item.location} {(item.last_scan or {}).get('status', '')}".lower()

    def describe(self, item: RegistryState) -> str:
        scan = item.last_scan
        lines = [f"[b]{escape(item.name)}[/b] {item.kind} at {escape(item.location)} · schedule {item.schedule}"]
        if scan:
            lines.append(f"scan {scan['id']}: {scan['status']}, {listed(scan['pages'], scan['models_seen'])}"
                         + (f" · {escape(scan['error'])}" if scan["error"] else ""))
        lines += [f"[red]problem[/red] {escape(problem)}" for problem in item.problems[:5]]
        if len(item.problems) > 5:
            lines.append(f"… and {len(item.problems) - 5} more (`weightkeeper ledger` and the scan's problems)")
        return "\n".join(lines)

    def action_scan(self) -> None:
        current = self.query_one(RowList).current
        if current is None:
            return
        name = self.items[current].name
        progress = self.query_one("#status", Static)
        display = ScanProgress(lambda text: self.app.call_from_thread(progress.update, text))

        def done(summary: str) -> None:
            self.app.notify(summary, title=f"scanned {name}", timeout=10)
            self.load()

        progress.update(f"scanning {name}…")
        self.app.in_background(lambda: self.app.desk.scan(name, display), done, group=f"scan-{name}")


class ScanProgress:
    """What a scan reports while it runs (weightkeeper/cli/progress.py's ScanDisplay), as one status line."""

    def __init__(self, say: Callable[[str], object]) -> None:
        self.say, self.registry = say, ""

    def start(self, registry: str) -> None:
        self.registry = registry
        self.say(f"scanning {registry}…")

    def progress(self, pages: int, models: int) -> None:
        self.say(f"scanning {self.registry}: {listed(pages, models)} listed so far")

    def wait(self, seconds: float, reason: str) -> None:
        self.say(f"scanning {self.registry}: waiting {seconds:.1f} s ({reason})")

    def stop(self) -> None:
        self.say(f"{self.registry}: listed; recording what changed…")
