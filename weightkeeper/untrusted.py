"""Text from registries, written by strangers, as weightkeeper may record and show it.

A name or a message must show as what it is: a newline would start a mail header in a letter, a
right-to-left override (U+202E) would reverse what a reviewer reads, a lone surrogate (a folder name
that is not UTF-8) cannot even be stored. Such characters are escaped wherever registry text is shown,
and a record whose name holds one never becomes a model: it is a problem of the scan.
"""

from __future__ import annotations

import unicodedata

from weightkeeper.domain import ModelRecord, RecordProblem

# Controls (Cc), format characters (Cf: bidirectional overrides, zero-width spaces), surrogates (Cs: bytes
# that are not UTF-8), and the line and paragraph separators (Zl, Zp).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def has_hidden(text: str) -> bool:
    """Whether `text` holds a character that does not show as itself."""
    # isprintable() is False for each of them (and for other spaces than " "): the common case costs one call.
    return not text.isprintable() and any(unicodedata.category(char) in HIDDEN_CATEGORIES for char in text)


def shown(text: str) -> str:
    """`text` with each character that does not show as itself written as Python escapes it (`\\n`, `\\u202e`),
    the rest as it is."""
    if text.isprintable():
        return text
    return "".join(repr(char)[1:-1] if unicodedata.category(char) in HIDDEN_CATEGORIES else char for char in text)


def screened(item: ModelRecord | RecordProblem) -> ModelRecord | RecordProblem:
    """What a registry listed, as the ledger may take it: a record whose name holds hidden characters becomes a
    problem under its escaped name, and a problem's name and message are escaped."""
    if isinstance(item, RecordProblem):
        if has_hidden(item.name) or has_hidden(item.message):
            return RecordProblem(shown(item.name), shown(item.message))
        return item
    return name_problem(item.name) if has_hidden(item.name) else item


def name_problem(name: str) -> RecordProblem:
    """The problem a name holding hidden characters is, whatever the registry says of its model."""
    escaped = shown(name)
    return RecordProblem(escaped, f"its name {escaped} holds control, format or line-separator characters (escaped "
                                  "here); weightkeeper records no model under a name that does not show as itself: "
                                  "rename it in the registry")
