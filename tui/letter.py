"""The letter as its recipient will read it (weightkeeper/letter.py: notes and Sources, no internal ids), laid out
for the console."""

from __future__ import annotations

from functools import lru_cache

from rich.text import Text

from weightkeeper import letter as rendered
from weightkeeper.review import Review


def letter(review: Review) -> str:
    """Exactly what every channel publishes and `review show ID --letter` prints, with the title as a heading."""
    return f"# {rendered.title(review.draft)}\n\n{rendered.render(review.draft, review.evidence)}"


@lru_cache(maxsize=64)
def laid_out(markdown: str, width: int) -> Text:
    """The markdown laid out for `width` columns, once (in a worker thread): drawing it is then a copy, where
    rich's Markdown would be parsed and wrapped again on every repaint. Kept per text and width, so a proposal
    read again (opened again, or its ledger changed) is not laid out again until its letter changes."""
    import io

    from rich.console import Console
    from rich.markdown import Markdown

    console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    text = Text(no_wrap=True, end="")
    for number, line in enumerate(console.render_lines(Markdown(markdown), pad=False)):
        if number:
            text.append("\n")
        for segment in line:
            text.append(segment.text, segment.style)
    return text
