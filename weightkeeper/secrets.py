"""The secrets weightkeeper is configured with, and scrubbing them out of text.

The config never holds a secret: it names the environment variables that do (a registry's
`token_env`, the LLM's `api_key_env`, a publish channel's `*_token_env`). Each settings object
that names one tells this module when it is made (`name_secret_variables`), so this is the one
place that knows every configured secret; the values are read from the environment when a
message is scrubbed, never kept.

A server may echo a credential in its error message ("Invalid token hf_…"), which then travels
in an exception towards the ledger, a log or the terminal. `scrub` replaces each configured value
in a text with `[secret $VARIABLE]`, as it is, URL-encoded, or inside the base64 of an HTTP Basic
credential. The ledger's writes of free text, the executor's results and the command line's
output go through it.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import quote

# Shorter values would match ordinary words in every message; no token is that short.
MIN_SECRET_CHARS = 8

_variables: dict[str, None] = {}  # the environment variables the config names as holding secrets, in order


def name_secret_variables(*variables: str | None) -> None:
    """Remember that these environment variables hold secrets (None: a setting that names none)."""
    _variables.update(dict.fromkeys(name for name in variables if name))


def secret_values() -> tuple[tuple[str, str], ...]:
    """(variable, value) of each named variable that holds a value long enough to be a secret, read now."""
    found = ((name, os.environ.get(name) or "") for name in _variables)
    return tuple((name, value) for name, value in found if len(value) >= MIN_SECRET_CHARS)


def scrub(text: str) -> str:
    """`text` with every configured secret value replaced by `[secret $VARIABLE]`."""
    return _scrubber(secret_values())(text)


def scrubbed(value: Any) -> Any:
    """A JSON-like value (a ledger event's detail, say) with `scrub` applied to every string in it."""
    values = secret_values()
    return _walk(value, _scrubber(values)) if values else value


def _walk(value: Any, scrub_text: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {key: _walk(inner, scrub_text) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(inner, scrub_text) for inner in value]
    return value


@functools.lru_cache(maxsize=16)
def _scrubber(values: tuple[tuple[str, str], ...]) -> Callable[[str], str]:
    """A function replacing every form of every value in a text, by one regex (longest forms first)."""
    if not values:
        return lambda text: text
    names = {form: name for name, value in reversed(values) for form in _forms(value)}  # the first name wins
    pattern = re.compile("|".join(map(re.escape, sorted(names, key=len, reverse=True))))
    return lambda text: pattern.sub(lambda match: f"[secret ${names[match.group(0)]}]", text)


def _forms(value: str) -> Iterable[str]:
    """The ways a value appears in a server's message: as it is, URL-encoded, and base64-encoded inside a
    Basic credential (`user:value`), where it starts at any of three offsets within a base64 group."""
    yield value
    yield quote(value, safe="")
    raw = value.encode()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode()
        # A base64 character carries 6 bits: keep those carrying the value's bits alone, not the ones shared
        # with the bytes before or after it.
        first, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        if end - first >= MIN_SECRET_CHARS:
            yield encoded[first:end]


class ScrubbedStream:
    """A text stream (stdout, stderr) that scrubs what is written to it before passing it on."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(scrub(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding: the stream's own
        return getattr(self.stream, name)


@contextmanager
def scrubbed_output() -> Iterator[None]:
    """Scrub what is printed to stdout and stderr while the block runs, and from then on the traceback of an
    exception nobody catches (it may quote a server's message)."""
    before = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbedStream(sys.stdout), ScrubbedStream(sys.stderr)  # type: ignore[assignment]
    sys.excepthook = _scrubbed_traceback
    try:
        yield
    finally:
        sys.stdout, sys.stderr = before


def _scrubbed_traceback(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(scrub("".join(traceback.format_exception(kind, value, tb))))
