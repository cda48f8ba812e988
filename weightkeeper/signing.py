"""Reviewers' private keys, and the ledger's record of their public keys. Only the faces import this.

A reviewer signs decisions with an Ed25519 key of their own, kept in their user configuration folder
(`platformdirs.user_config_dir("weightkeeper")/keys`, or $WEIGHTKEEPER_KEYS_DIR) with owner-only
permissions, never inside a weightkeeper home: whoever can read the home or write the ledger does not
hold it. The ledger's `reviewers` table holds each reviewer's public key, endorsed (signed) by a
reviewer already there; the first reviewer, recorded at `weightkeeper init`, endorses itself, and is pinned as
the ledger's root in this user's witness (weightkeeper/witness.py), beside the keys.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger, decisions, now_iso
from weightkeeper.review import ReviewError, reviewer_fields, reviewer_keys
from weightkeeper.witness import KEYS_ENV, Witness, keys_dir

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["KEYS_ENV", "SigningKeyError", "Signer", "add_reviewer", "enroll", "keys_dir", "signer"]


class SigningKeyError(WeightkeeperError):
    """A reviewer's key cannot be created or read safely; the message says how to fix it."""


@dataclass(frozen=True)
class Signer:
    """A reviewer's name and private key, for one session of deciding, and the keys folder it came from (whose
    witness anchors what they sign)."""

    name: str
    key: Ed25519PrivateKey
    folder: Path

    @property
    def witness(self) -> Witness:
        return Witness(self.folder)

    @property
    def public_key(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def sign(self, message: bytes) -> str:
        return self.key.sign(message).hex()


def signer(name: str, home: Path, *, create: bool = False, directory: Path | None = None) -> Signer:
    """The reviewer's key from the keys folder (created, mode 0600, with `create`). Refuses a folder inside the
    home, and a key file others may read."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = (directory or keys_dir()).resolve()
    if folder.is_relative_to(home.resolve()):
        raise SigningKeyError(f"the reviewer keys folder {folder} is inside the home {home}: whoever reads the home "
                        f"could sign. Point ${KEYS_ENV} elsewhere (default: the user configuration folder)")
    path = folder / f"{quote(name, safe='')}.ed25519"
    if not path.exists():
        if not create:
            raise SigningKeyError(f"there is no signing key for reviewer {name!r} in {folder}; a reviewer is added (and "
                            "their key created) with `weightkeeper reviewer add NAME` by an existing reviewer")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(Ed25519PrivateKey.generate().private_bytes_raw().hex())
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(f"the signing key {path} can be read by others (mode {stat.S_IMODE(mode):o}); "
                        f"run `chmod 600 {path}`")
    return Signer(name, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip())), folder)


def add_reviewer(ledger: Ledger, name: str, public_key: str, *, endorser: Signer | None) -> None:
    """Record a reviewer's public key, endorsed by `endorser` (a recorded reviewer), or, for the ledger's first
    reviewer only, by the reviewer's own key (`endorser` is then that reviewer's signer)."""
    with ledger.transaction() as conn:
        trusted = reviewer_keys(conn)
        if name in trusted:
            if trusted[name] != public_key:
                raise ReviewError(f"reviewer {name!r} is recorded with another key; choose another name")
            return
        if endorser is None or (trusted and trusted.get(endorser.name) != endorser.public_key):
            raise ReviewError(f"a new reviewer is endorsed by a recorded reviewer's key ({', '.join(sorted(trusted))}"
                              f"); run `weightkeeper reviewer add {name} --by REVIEWER` as one of them")
        if not trusted and (endorser.name, endorser.public_key) != (name, public_key):
            raise ReviewError(f"the ledger has no reviewer yet: the first, {name!r}, endorses itself")
        row = {"name": name, "public_key": public_key, "added_by": endorser.name, "added_at": now_iso()}
        decisions.record_reviewer(conn, {**row, "signature": endorser.sign(reviewer_fields(row))})


def enroll(ledger: Ledger, home: Path, name: str, *, directory: Path | None = None) -> Signer:
    """The signer of `name`, its key created if new; recorded as the ledger's first reviewer when it has none,
    and then pinned as its root in the signer's witness (what the witness held of a ledger at that path before
    is forgotten: a ledger with no reviewer is a new one)."""
    own = signer(name, home, create=True, directory=directory)
    trusted = reviewer_keys(ledger.conn)
    if not trusted:
        add_reviewer(ledger, name, own.public_key, endorser=own)
        with own.witness.seen(ledger.path) as seen:
            seen.root, seen.heads = (name, own.public_key), {}
    elif trusted.get(name) != own.public_key:
        raise ReviewError(f"{name!r} is not a reviewer of this ledger with this key; a reviewer adds them with "
                          f"`weightkeeper reviewer add {name}`")
    return own
