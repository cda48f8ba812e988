"""The statistics of `weightkeeper stats` as terminal plots, with the numbers beside them: deleted, archived
and persisting models over time, deletions per registry and per base-model lineage."""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from tui.data import Figures
from tui.widgets.keyline import KeyLine
from tui.widgets.plot import Plot

GONE = ("deleted", "withdrawn")


class StatsScreen(Screen[None]):
    BINDINGS = [Binding("q", "app.quit", "Quit", id="stats.quit")]

    def __init__(self) -> None:
        super().__init__(id="stats")
        self.figures: Figures | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="title", classes="title")
        with Horizontal(id="split"):
            with VerticalScroll(id="plots"):
                yield Plot(self.over_time, id="over-time")
                yield Plot(self.per_registry, id="per-registry")
                yield Plot(self.per_lineage, id="per-lineage")
            yield Static(id="numbers", classes="numbers")
        yield KeyLine()

    def on_mount(self) -> None:
        self.query_one("#title", Static).update(self.app.title_line("Stats"))
        self.load()

    def load(self) -> None:
        self.app.in_background(self.app.desk.figures, self.loaded, group="stats")

    def on_screen_resume(self) -> None:
        self.load()

    def on_ledger_changed(self) -> None:
        self.load()

    def loaded(self, figures: Figures) -> None:
        self.figures = figures
        models = figures.overall["models"]
        lines = ["[b]Models[/b]"] + [f"{key.replace('_', ' '):<20}{value:>8,}" for key, value in models.items()]
        lines += ["", "[b]Per registry[/b] deleted / tracked"] + [
            f"{name:<20}{counts['deleted']:>4,} / {counts['tracked']:,}" for name, counts in figures.per_registry.items()]
        lines += ["", "[b]Lineages most affected[/b]"] + [
            f"{row['base_model'][:22]:<23}{row['affected']:>3}" for row in figures.overall["top_lineages"]]
        self.query_one("#numbers", Static).update("\n".join(lines))
        for plot in self.query(Plot):
            plot.redraw()

    # -- the plots (each draws nothing until the figures are read) -------------------------------

    def over_time(self, plt: Any) -> None:
        weeks = self.figures.overall["weeks"] if self.figures else {}
        if not weeks:
            return
        names = list(weeks)
        came = [sum(weeks[week].get(kind, 0) for kind in ("appeared", "restored")) for week in names]
        gone = [sum(weeks[week].get(kind, 0) for kind in GONE) for week in names]
        persisting = [int(a - b) for a, b in zip(accumulate(came), accumulate(gone))]
        archived = list(accumulate(weeks[week].get("archive_verified", 0) for week in names))
        ticks = list(range(len(names)))
        plt.plot(ticks, persisting, label="persisting", marker="braille")
        plt.plot(ticks, list(accumulate(gone)), label="deleted or withdrawn", marker="braille")
        plt.plot(ticks, archived, label="archived", marker="braille")
        plt.xticks(ticks, names)
        plt.title("models over time (per ISO week)")

    def per_registry(self, plt: Any) -> None:
        counts = self.figures.per_registry if self.figures else {}
        if counts:
            plt.bar(list(counts), [sum(row[kind] for kind in GONE) for row in counts.values()], width=0.4)
            plt.title("deleted or withdrawn, per registry")

    def per_lineage(self, plt: Any) -> None:
        rows = self.figures.overall["top_lineages"] if self.figures else []
        if rows:
            plt.bar([row["base_model"].split("/")[-1][:16] for row in rows],
                    [row["deleted"] + row["withdrawn"] for row in rows], orientation="horizontal", width=0.4)
            plt.title("deleted or withdrawn, per base model")
