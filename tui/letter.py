"""The letter as its recipient will read it. For now the draft's title and markdown body; the rendered letter
(footnotes, Sources) replaces this one function."""

from __future__ import annotations

from weightkeeper.review import Review


def letter(review: Review) -> str:
    return f"# {review.draft.title}\n\n{review.draft.body}"
