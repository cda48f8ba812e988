"""The letter as its recipient will read it. For now the draft's title and markdown body; the rendered letter
(footnotes, Sources) replaces `letter` alone."""

from __future__ import annotations

from rich.text import Text

from weightkeeper.review import Review


def letter(review: Review) -> str:
    return f"# {review.draft.title}\n\n{review.draft.body}"


def laid_out(markdown: str, width: int) -> Text:
    """The markdown laid out for `width` columns, once (in a worker thread): drawing it is then a copy, where
    rich's Markdown would be parsed and wrapped again on every repaint."""
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
