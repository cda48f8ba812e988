"""The witness: what this user has seen of each ledger's decisions, kept outside the ledger.

A chain of signed decisions shows a decision removed, reordered or rewritten inside it, but not a cut end: with
a review's newest decisions deleted, what is left is a valid chain. Nor can a ledger vouch for its own first
reviewer. So each user keeps a witness file in their keys folder, beside their private keys and as private
(mode 0600), that holds for every ledger they decided or verified on, by its resolved path (as SSH's
known_hosts holds hosts): the root reviewer pinned when it was first seen, and for each review the length and
last signature of its decision chain as this user last signed or verified it. weightkeeper/review.py refuses a
ledger whose root differs from the pin, or whose chain no longer holds a witnessed head at its place.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightkeeper.errors import WeightkeeperError

KEYS_ENV = "WEIGHTKEEPER_KEYS_DIR"
WITNESS_NAME = "witness.json"


class WitnessError(WeightkeeperError):
    """The witness file cannot be kept safely or read; the message says how to fix it."""


def keys_dir() -> Path:
    """Where this user's reviewer keys and witness live: $WEIGHTKEEPER_KEYS_DIR, else the user configuration folder."""
    if os.environ.get(KEYS_ENV):
        return Path(os.environ[KEYS_ENV])
    from platformdirs import user_config_dir

    return Path(user_config_dir("weightkeeper")) / "keys"


def fingerprint(public_key: str) -> str:
    """A public key as a person compares it, in SSH's form: SHA256: and the base64 of its digest."""
    digest = hashlib.sha256(bytes.fromhex(public_key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def described(reviewer: tuple[str, str] | None) -> str:
    """A reviewer (name, public key) as messages show it: the name and the key's fingerprint."""
    return f"{reviewer[0]!r} (ed25519 {fingerprint(reviewer[1])})" if reviewer else "none"


@dataclass
class Seen:
    """What the witness holds of one ledger: its pinned root reviewer (name, public key), and per review id
    the (length, last signature) of its decision chain."""

    root: tuple[str, str] | None = None
    heads: dict[int, tuple[int, str]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Seen:
        root = entry.get("root")
        return cls(root=(root["name"], root["public_key"]) if root else None,
                   heads={int(review): (head["length"], head["signature"])
                          for review, head in entry.get("reviews", {}).items()})

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root and {"name": self.root[0], "public_key": self.root[1]},
                "reviews": {str(review): {"length": length, "signature": signature}
                            for review, (length, signature) in sorted(self.heads.items())}}


class Witness:
    """One user's witness file (`witness.json` in their keys folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / WITNESS_NAME

    @contextmanager
    def seen(self, ledger: Path | str) -> Iterator[Seen]:
        """What this user has seen of `ledger` (a SQLite file, or a PostgreSQL ledger's URL without its password),
        locked against this user's other processes while the block runs, and written back (atomically, fsynced)
        if the block changed it and did not raise."""
        key, folder = str(ledger) if isinstance(ledger, str) else str(ledger.resolve()), self.folder.resolve()
        if isinstance(ledger, Path) and folder.is_relative_to(ledger.resolve().parent):
            raise WitnessError(f"the keys folder {folder} is inside the folder of the ledger {ledger}: whoever writes "
                               f"the ledger could rewrite what it is checked against. Point ${KEYS_ENV} elsewhere "
                               "(default: the user configuration folder)")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(folder / f"{WITNESS_NAME}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            ledgers = self._read()
            entry = ledgers.setdefault(key, Seen())
            before = entry.to_json()
            yield entry
            if entry.to_json() != before:
                self._write(ledgers)
        finally:
            os.close(fd)

    def _read(self) -> dict[str, Seen]:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return {}
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise WitnessError(f"the witness {self.path} can be read or written by others (mode "
                               f"{stat.S_IMODE(mode):o}); run `chmod 600 {self.path}`")
        try:
            ledgers = json.loads(self.path.read_text(encoding="utf-8"))["ledgers"]
            return {key: Seen.from_json(entry) for key, entry in ledgers.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WitnessError(f"the witness {self.path} cannot be read ({exc}); restore it from a backup, or "
                               "remove it to start anew (every ledger is then first seen again)") from exc

    def _write(self, ledgers: dict[str, Seen]) -> None:
        fd, scratch = tempfile.mkstemp(dir=self.path.parent, prefix=f".{WITNESS_NAME}-")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"ledgers": {key: entry.to_json() for key, entry in ledgers.items()}}, handle, indent=1,
                          sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(scratch, self.path)
        except BaseException:
            Path(scratch).unlink(missing_ok=True)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
