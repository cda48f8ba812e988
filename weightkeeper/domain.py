"""The words weightkeeper speaks: what a registry lists, what the ledger records."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, NamedTuple

import orjson


# The model card's file name on the Hub and in local registries. Its changes are judged through
# the parsed card (`Card.digest`), not through the file's bytes.
CARD_FILE = "README.md"
# How `Card.digest` is computed, written before its hex digits. Digests of two forms cannot be
# compared (weightkeeper before 0.2 wrote bare sha256 hex of other bytes), see `comparable`.
CARD_DIGEST_FORM = "blake2b"


# In a `deprecation_announced` detail: the shutdown was announced before the ledger first saw the model.
FIRST_SEEN = "first_seen"


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    GATED = "gated"
    DISABLED = "disabled"


class ModelState(StrEnum):
    PRESENT = "present"
    SUSPECTED_MISSING = "suspected_missing"
    WITHDRAWN = "withdrawn"  # out of this watcher's view; the registry does not say whether deleted or hidden
    DELETED = "deleted"


class EventKind(StrEnum):
    """Kinds of ledger events. Later kinds (proposal_*, review_*, archive_*) join this list."""

    APPEARED = "appeared"
    UPDATED = "updated"
    RENAMED = "renamed"
    VISIBILITY_CHANGED = "visibility_changed"
    DEPRECATION_ANNOUNCED = "deprecation_announced"
    SUSPECTED_MISSING = "suspected_missing"
    # Left the registry's public view, and the registry does not tell this watcher whether it was deleted or
    # hidden (the Hub answers an anonymous caller, or a token of another namespace, alike for both).
    WITHDRAWN = "withdrawn"
    DELETED = "deleted"
    RESTORED = "restored"
    STAGE_CHANGED = "stage_changed"  # a registry's lifecycle stage (MLflow: Staging, Production, Archived)
    ARCHIVE_REQUESTED = "archive_requested"  # an approved archive action was claimed by the executor
    ARCHIVE_STARTED = "archive_started"
    ARCHIVE_VERIFIED = "archive_verified"  # every byte checked and the OCFL version written
    ARCHIVE_FAILED = "archive_failed"
    FIXITY_OK = "fixity_ok"  # `archive verify` found every checked file intact
    FIXITY_FAILED = "fixity_failed"
    REPAIRED = "repaired"  # a corrupted archived file restored from the mirror
    PROPOSAL_DRAFTED = "proposal_drafted"
    PROPOSAL_AMENDED = "proposal_amended"  # a recipient's new event joined their open proposal: a new version
    REVIEW_APPROVED = "review_approved"
    REVIEW_REJECTED = "review_rejected"
    REVIEW_DEFERRED = "review_deferred"
    REVIEW_EDITED = "review_edited"
    ACTION_EXECUTED = "action_executed"
    ACTION_FAILED = "action_failed"
    APPROVAL_REFUSED = "approval_refused"  # the executor found no signed approval of the exact action


class Lineage(NamedTuple):
    """One base model a model was built from, with the Hub's relation word (adapter, finetune, …)."""

    base_model: str
    relation: str | None = None


class FileEntry(NamedTuple):
    path: str
    size: int
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Card:
    """The model-card fields weightkeeper uses, plus a digest of the whole card metadata."""

    digest: str
    license: str | None = None
    emissions: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    datasets: tuple[str, ...] = ()

    @property
    def digest_form(self) -> str:
        form, colon, _ = self.digest.partition(":")
        return form if colon else ""


def comparable(prior: ModelRecord, record: ModelRecord) -> ModelRecord:
    """`prior`, made comparable with `record`: when their card digests were computed in different
    forms (an upgrade of weightkeeper between the two), the digest cannot tell whether the card
    changed, so `record`'s stands in for it and only the card fields weightkeeper keeps are compared."""
    if prior.card is None or record.card is None or prior.card.digest_form == record.card.digest_form:
        return prior
    return replace(prior, card=replace(prior.card, digest=record.card.digest))


class RecordRow(NamedTuple):
    """A `ModelRecord` flattened as the ledger stores it: mappings and lists as canonical JSON text,
    lineage and files as plain tuples. A scan's reading process sends records in this form (plain
    values pickle and unpickle in a fraction of a record's time), and the ledger writes it as it is."""

    name: str
    key: str
    revision: str | None
    created_at: str | None
    last_modified: str | None
    visibility: str
    downloads: int | None
    likes: int | None
    card_digest: str | None  # None: no card, and then no card field either
    license: str | None
    emissions: str | None
    training: str | None
    datasets: str | None
    shutdown_date: str | None
    successor: str | None
    extra: str
    lineage: tuple[tuple[str, str | None], ...]
    files: tuple[tuple[str, int, str | None], ...]


def row_digest(row: RecordRow) -> int:
    """A 64-bit digest of every field of a record (the name included), so an unchanged model costs one comparison.

    64 bits: a changed record matches its model's old digest with odds of one in 2**64, and the
    ledger keeps it as an integer.

    Taken over the row, which a scan builds anyway, in one call to orjson (`canonical_json`): a scan
    digests every listed model. A digest is never compared across weightkeeper versions blindly: a
    stored digest that matches nothing only costs a comparison of the records (`Scanner._observe`).
    `tests/test_domain.py` checks that each field changes it.
    """
    return int.from_bytes(hashlib.blake2b(canonical_json(tuple(row)), digest_size=8).digest(), "big", signed=True)


@dataclass(slots=True)
class ModelRecord:
    """One model as a registry lists it at one moment. Treat it as immutable (use `dataclasses.replace`).

    Not a frozen dataclass: a scan builds one per listed model, and frozen construction
    costs three times as much.

    `key` is the registry's stable identity when it has one (the Hub's `_id`);
    registries without one use a digest of the model's files, so a renamed
    folder with identical files is recognised as the same model.
    """

    name: str
    key: str
    revision: str | None = None
    created_at: str | None = None
    last_modified: str | None = None
    visibility: Visibility = Visibility.PUBLIC
    downloads: int | None = None
    likes: int | None = None
    lineage: tuple[Lineage, ...] = ()
    card: Card | None = None
    files: tuple[FileEntry, ...] = ()
    shutdown_date: str | None = None
    successor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> RecordRow:
        """The record flattened as the ledger stores it."""
        card = self.card
        return RecordRow(
            self.name, self.key, self.revision, self.created_at, self.last_modified, self.visibility.value,
            self.downloads, self.likes, card and card.digest, card and card.license,
            _json_or_none(card and card.emissions), _json_or_none(card and card.training),
            card and canonical_json(card.datasets).decode(), self.shutdown_date, self.successor,
            canonical_json(self.extra).decode(), tuple(map(tuple, self.lineage)), tuple(map(tuple, self.files)),
        )

    @classmethod
    def from_row(cls, row: RecordRow) -> ModelRecord:
        card = None
        if row.card_digest is not None:
            card = Card(row.card_digest, row.license, _loads(row.emissions), _loads(row.training),
                        tuple(_loads(row.datasets) or ()))
        return cls(
            row.name, row.key, row.revision, row.created_at, row.last_modified, Visibility(row.visibility),
            row.downloads, row.likes, tuple(Lineage(*item) for item in row.lineage), card,
            tuple(FileEntry(*item) for item in row.files), row.shutdown_date, row.successor,
            _loads(row.extra) or {},
        )

    def digest(self) -> int:
        """A 64-bit digest of every field (the name included): `row_digest` of its row."""
        return row_digest(self.row())

    def pinned_revision(self) -> str | None:
        """What pins this model's bytes: the registry's revision, or for a registry without revisions (a local
        folder) a digest of its file list with every file's sha256; None when some file has no known sha256."""
        if self.revision:
            return self.revision
        if not self.files or any(entry.sha256 is None for entry in self.files):
            return None
        return "files-" + hashlib.blake2b(canonical_json(sorted(map(tuple, self.files))), digest_size=16).hexdigest()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ModelRecord:
        raw = json.loads(text)
        card = raw.pop("card")
        return cls(
            **{
                **raw,
                "visibility": Visibility(raw["visibility"]),
                "lineage": tuple(Lineage(*item) for item in raw["lineage"]),
                "files": tuple(FileEntry(*item) for item in raw["files"]),
                "card": None if card is None else Card(**{**card, "datasets": tuple(card["datasets"])}),
            }
        )


def canonical_json(value: Any) -> bytes:
    """`value` as compact JSON with sorted keys: equal values give equal bytes.

    orjson, ten times faster than `json.dumps` on a model's card or tags, which a scan
    serialises several times per listed model. It refuses integers beyond 64 bits, which
    `json` writes.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _json_or_none(value: Any) -> str | None:
    return None if value is None else canonical_json(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """A model the registry lists but whose data could not be read; nothing about it is changed."""

    name: str
    message: str


@dataclass(frozen=True, slots=True)
class Page:
    """A raw page of a listing; `cursor` is where a resumed listing starts after this page."""

    items: tuple[Any, ...]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Found:
    record: ModelRecord


@dataclass(frozen=True, slots=True)
class Gone:
    reason: str


@dataclass(frozen=True, slots=True)
class Hidden:
    """The model exists but is no longer visible to us (401, 403, gated, disabled)."""

    visibility: Visibility
    reason: str


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """The model is out of our view, and the registry's answer means "deleted" and "hidden from you" alike."""

    reason: str


LookupResult = Found | Gone | Hidden | Withdrawn
