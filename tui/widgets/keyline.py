"""The keys that work here, on one line at the bottom: Textual's Footer without its widget per key, which it
builds again (and styles) on every screen change; one line of text is redrawn instead."""

from __future__ import annotations

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static


class KeyLine(Static):
    line: Text | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen) -> None:
        line, shown = Text(no_wrap=True, overflow="ellipsis"), set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if binding.show and binding.action not in shown:
                shown.add(binding.action)
                line.append(f" {self.app.get_key_display(binding)} ", "bold reverse" if active.enabled else "dim")
                line.append(f" {binding.description}  ")
        line.append(" ^p palette", "dim")
        if line != self.line:  # the same keys again (focus moved): an update would lay the screen out for nothing
            self.line = line
            self.update(line)
