"""Numbers in sentences, as people write them."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """`1 page`, `2 pages`, `1,200 models`; `plural` for nouns that do not take an s (`1 was`, `3 were`)."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"
