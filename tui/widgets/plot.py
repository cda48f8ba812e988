"""A terminal plot (plotext) drawn to the widget's size, again whenever that changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.widgets import Static


class Plot(Static):
    def __init__(self, draw: Callable[[Any], None], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.draw = draw

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        import plotext

        width, height = self.size
        if width < 10 or height < 5:
            return
        plotext.clear_figure()
        plotext.plotsize(width, height)
        plotext.theme("clear")  # the console's theme colours the text; the plot keeps none of its own
        self.draw(plotext)
        self.update(Text.from_ansi(plotext.build()))
