"""What a scan shows while it runs: a progress bar on a terminal, plain log lines elsewhere.

Both hear the same two things from a scan: a page was read (pages and models so far), and
the registry asked us to wait (rate limit or backoff, with the reason).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from weightkeeper.words import counted


class ScanDisplay(Protocol):
    def start(self, registry: str) -> None: ...

    def progress(self, pages: int, models: int) -> None: ...

    def wait(self, seconds: float, reason: str) -> None: ...

    def stop(self) -> None: ...


def listed(pages: int, models: int) -> str:
    """How far a listing got: `1 page, 40 models`."""
    return f"{counted(pages, 'page')}, {counted(models, 'model')}"


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LogLines:
    """One line per wait and every `every` pages, for cron, systemd and pipes."""

    def __init__(self, log: Callable[[str], object] = print, *, every: int = 50, timestamps: bool = False) -> None:
        self.log, self.every, self.timestamps, self.registry = log, every, timestamps, ""

    def _say(self, text: str) -> None:
        self.log(f"{stamp()} {text}" if self.timestamps else text)

    def start(self, registry: str) -> None:
        self.registry = registry

    def progress(self, pages: int, models: int) -> None:
        if pages % self.every == 0:
            self._say(f"{self.registry}: {listed(pages, models)} listed so far")

    def wait(self, seconds: float, reason: str) -> None:
        self._say(f"{self.registry}: waiting {seconds:.1f} s ({reason})")

    def stop(self) -> None:
        pass


class ProgressBar:
    """A rich live line per registry: pages, models, and the current wait if any."""

    def __init__(self) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[registry]}"),
                             TextColumn("{task.fields[listed]}"),
                             TextColumn("[yellow]{task.fields[waiting]}"), TimeElapsedColumn(), transient=True)
        self._task: int | None = None

    def start(self, registry: str) -> None:
        self._bar.start()
        self._task = self._bar.add_task("scan", total=None, registry=registry, listed=listed(0, 0), waiting="")

    def progress(self, pages: int, models: int) -> None:
        self._bar.update(self._task, listed=listed(pages, models), waiting="")

    def wait(self, seconds: float, reason: str) -> None:
        self._bar.update(self._task, waiting=f"waiting {seconds:.0f} s: {reason}")

    def stop(self) -> None:
        self._bar.stop()


def display_for(log: Callable[[str], object] | None) -> ScanDisplay | None:
    """A progress bar when a person watches the terminal, log lines otherwise; None when nothing is printed."""
    if log is None:
        return None
    return ProgressBar() if sys.stdout.isatty() else LogLines(log)
