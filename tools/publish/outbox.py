"""The default channel: markdown files in the home's outbox, for a person to send on. Offline."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

from tools.publish import single_line

SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutboxPublisher:
    channel = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def publish(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Write the proposal as `<target>-<key>.md`, created exclusively under that name: a file already there
        under this key means it was published before (a replay, a crash after writing, another executor), and
        it is not written again."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{SAFE.sub('_', payload['target'])[:80]}-{idempotency_key[:16]}.md"
        headers = f"To: {single_line(payload['target'])}\nSubject: {single_line(payload['title'])}"
        text = f"{headers}\n\n{payload['body']}\n"
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.partial")
        partial.write_text(text, encoding="utf-8")
        try:
            os.link(partial, path)  # whole or not at all, and only if no file has the name yet
        except FileExistsError:
            return {"path": str(path), "already_published": True}
        finally:
            partial.unlink()
        return {"path": str(path), "already_published": False}
