"""Where an approved proposal is published. Every publisher takes the approved payload and the claim's
idempotency key, and publishing the same key twice publishes once.

A channel is one class with `channel` and `publish(payload, idempotency_key) -> dict`; the dict is the
detail the executor records in the ledger (where it went, `already_published`), so it never holds a
secret. A channel's token is read from the environment variable the config names when `publish` runs,
and kept for that call only: it never reaches the ledger, a log, a proposal or a checkpoint.

Registry strings (a model's name, a card's value) reach the payload's target, title and body. A title or
a header is written through `single_line`, so no line break in it can start a header or a field of its
own; a JSON body is built by `json`, never by joining strings.
"""

from __future__ import annotations

import os
from typing import Any

from weightkeeper.errors import WeightkeeperError
from weightkeeper.untrusted import shown


class PublishError(WeightkeeperError):
    """A channel refused the proposal or could not be reached; the message says what to do. The executor
    records it as an `action_failed` event."""


def channel_token(variable: str, key: str) -> str:
    """The token in `variable`, read now. `key` is the [proposals] setting that names the variable."""
    token = os.environ.get(variable)
    if not token:
        raise PublishError(f"${variable} is not set; export {variable}=... with the channel's token, or name "
                           f"another variable with `{key}` in [proposals] of weightkeeper.toml")
    return token


def single_line(text: str) -> str:
    """`text` as one line of a header or a title: each character that could end the line (or hide what follows:
    control, format and separator characters) written as its visible escape (`\\n`, `\\x85`, `\\u2028`), so a
    reader still sees what the registry said."""
    return shown(text)


def bound_endpoint(payload: dict[str, Any], configured: str, key: str) -> None:
    """Refuse to send the approved payload, and the token with it, to another server than it was approved for."""
    approved = payload["parameters"].get("endpoint")
    if approved is None or approved.rstrip("/") != configured.rstrip("/"):
        raise PublishError(f"the action was approved for {approved or 'no named server'}, but `{key}` in [proposals] "
                           f"is now {configured}; set it back to run the action (sending it elsewhere needs a new "
                           "approval)")


def marked(body: str, idempotency_key: str) -> str:
    """The body as a channel that keeps what it is sent (a Hub discussion, a GitHub issue) publishes it: ending
    with a marker hidden when rendered, by which a later publish of the same key finds it instead of posting
    it again. The approved text is unchanged; the marker is the channel's bookkeeping."""
    return f"{body.rstrip()}\n\n{marker(idempotency_key)}"


def marker(idempotency_key: str) -> str:
    return f"<!-- weightkeeper:{idempotency_key} -->"
