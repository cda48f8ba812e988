"""The contract every registry adapter keeps, in the style of Software Heritage's swh-lister, and the
specification of each registry kind.

An adapter is one class per registry kind, usually built on `Registry`, with the same four methods:

- `pages(cursor)` yields raw pages of the listing, starting after `cursor`; each page carries the
  cursor to resume after it.
- `records(page)` turns a raw page into model records (or problems, for models whose data cannot be
  read; a problem never reads as a deletion). `Registry.records` is written once: a kind says how one
  item becomes a record (`record`) and raises `RecordUnreadable` when it cannot.
- `lookup(name)` asks about one model directly: the only way a model that is missing from a listing
  becomes `deleted`.
- `check()` verifies that the registry answers and accepts our credentials, and says what it
  verified (`weightkeeper registry check`).

Any of them raises `RegistryUnavailable` when the registry cannot answer; the scan engine then concludes
nothing. I/O may happen in all four: `pages` reads the listing, and `records` may read more per item
(a Hub model's file tree, an MLflow model's versions, a local folder's files). Both run in the scan's
read-ahead child process (`weightkeeper/read_ahead.py`), which relays to the parent what the adapter
holds of the parent's: its `cache`, its `digests` and its `on_wait` reporter, declared below.
An adapter is closed after use (`close()`, or `with`).

A record's `shutdown_date` is when that model stops being served. Whether a model stops with
the one it was built on is a fact of the registry, so its adapter sets the date: an OpenAI
fine-tune is served on its base and takes the base's date, while a Hub or local fine-tune holds
its own weights and takes none. The scan engine inherits nothing through lineage.

`unlisted` names the visibilities the listing leaves out (the Hub lists no private
model to an anonymous caller): a model recorded with one of them is expected to be
absent, and is looked up quietly instead of being suspected missing.

A kind is described once, by a `RegistryKind` in its adapter's module and registered with
`register_kind`: its settings in `weightkeeper.toml` (and so the `registry add` flags), how its
adapter and its archive source are built, and how an archive of one of its models is pinned
(docs/registry-kinds.md).

`resumes_see_renames` says whether a model renamed while a listing was interrupted is still found
when it resumes, though its new name may sort before the resume point: by a lookup of its old name
(the Hub's redirect), by the listing itself (MLflow's re-reads every model updated since the listing
began), or because nothing is ever renamed (OpenAI's ids). Then what a resumed listing lacks is
looked up at once. Otherwise (a local folder, Ollama) a lookup's "gone" could be a rename: what the
resumed listing lacks waits, suspected, for a listing from the start.

`stable_keys` says whether a record's `key` is the model's identity for good (the Hub's `_id`), so
that a name answering with another key is another model: a model deleted and another created under
its name, or two names swapped. Such an adapter has `name_taken(name, other)`: what it concludes of
the model last seen as `name` when a lookup of `name` answers with `other` and the listing shows the
model's key nowhere (`Gone`, or `Withdrawn` where it could be hidden from this caller). Otherwise a
key is content (a digest of files, a manifest) and a model is its name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from weightkeeper.domain import Gone, RecordProblem, Withdrawn

if TYPE_CHECKING:
    from weightkeeper.config import RegistryConfig
    from weightkeeper.domain import LookupResult, ModelRecord, Page, Visibility

# Called with the seconds a registry asked to wait (or the backoff) and why, so a scan can show it.
WaitReporter = Callable[[float, str], None]


class RecordUnreadable(Exception):
    """One model's data cannot be read; the message says what and where. The model becomes a problem of the
    scan, never an absence; in a lookup, the registry is unavailable (nothing is concluded)."""


class DigestCache(Protocol):
    """Remembers a file's sha256 by (path, size, stamp) so it is computed once per change.

    The stamp is whatever the adapter trusts to change with the bytes: for local files
    mtime, ctime and inode (ctime cannot be set back by a writer, unlike mtime).
    """

    def get(self, path: str, size: int, stamp: str) -> str | None: ...

    def put(self, path: str, size: int, stamp: str, sha256: str) -> None: ...


class AdapterCache(Protocol):
    """Text an adapter keeps between scans under its own keys (a model's file list at a revision, say),
    so what only changes with a revision is fetched once per revision, not once per scan."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class RegistryAdapter(Protocol):
    kind: str
    unlisted: frozenset[Visibility]
    stable_keys: bool
    resumes_see_renames: bool
    # What the read-ahead child relays to the parent, which owns them; None when the adapter has none.
    cache: AdapterCache | None
    digests: DigestCache | None
    on_wait: WaitReporter | None

    def pages(self, cursor: str | None) -> Iterator[Page]: ...

    def records(self, page: Page) -> list[ModelRecord | RecordProblem]: ...

    def lookup(self, name: str) -> LookupResult: ...

    def check(self) -> str: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None: ...


class KeepsIdentities(RegistryAdapter, Protocol):
    """An adapter with `stable_keys`."""

    def name_taken(self, name: str, other: ModelRecord) -> Gone | Withdrawn: ...


class Registry:
    """The base of an adapter: `records` written once, `close` and `with`, and the attributes the read-ahead
    child relays to the parent (None when the adapter has none)."""

    kind: ClassVar[str]
    unlisted: frozenset[Visibility] = frozenset()
    stable_keys: ClassVar[bool] = False  # see the module's docstring
    resumes_see_renames: ClassVar[bool] = False
    cache: AdapterCache | None = None  # kept in the ledger: the child asks the parent
    digests: DigestCache | None = None  # kept in the ledger: the child asks the parent
    on_wait: WaitReporter | None = None  # the progress display: the child tells the parent
    # What, raised while one item is read, makes that item a problem; a kind whose per-item reading
    # asks the registry again adds RegistryUnavailable.
    unreadable: ClassVar[tuple[type[Exception], ...]] = (RecordUnreadable,)

    def pages(self, cursor: str | None) -> Iterator[Page]:
        raise NotImplementedError

    def lookup(self, name: str) -> LookupResult:
        raise NotImplementedError

    def check(self) -> str:
        raise NotImplementedError

    def records(self, page: Page) -> list[ModelRecord | RecordProblem]:
        records: list[ModelRecord | RecordProblem] = []
        for item in self.items(page):
            try:
                records.append(self.record(item))
            except self.unreadable as exc:
                records.append(RecordProblem(self.item_name(item), str(exc)))
        return records

    def items(self, page: Page) -> Iterable[Any]:
        """The items of a page that each become one record (an MLflow model becomes one per version)."""
        return page.items

    def record(self, item: Any) -> ModelRecord | RecordProblem:
        """One item as a record; RecordUnreadable when its data cannot be read."""
        raise NotImplementedError

    def item_name(self, item: Any) -> str:
        """The item's model name, for the problem its unreadable data is."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the adapter holds open (an HTTP client's connections); nothing by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Setting:
    """One key of a kind's table in `weightkeeper.toml`; `registry add` takes it as `--key-name`."""

    name: str
    help: str  # the flag's help, said of this kind
    metavar: str = "VALUE"
    required: bool = False
    default: str | None = None  # what the kind uses when the table leaves the key out
    url: bool = False  # must be an http:// or https:// URL
    file: bool = False  # a file or folder, relative to the config file unless absolute (or an http(s) URL)
    many: bool = False  # a list of strings in the table; `registry add` takes them separated by commas
    excludes: str | None = None  # a setting this one replaces: a table holds one of them
    pattern: str | None = None  # a regular expression the value (each value of a list) must match entirely
    pattern_rule: str = ""  # what such a value is, said when one does not match: "an OpenAI organisation id (…)"


@dataclass(frozen=True, slots=True)
class Opening:
    """What an adapter is built with besides its config: the ledger's caches for it, the wait reporter, and
    the token read now from the variable its `token_env` names (None without one)."""

    digests: DigestCache
    cache: AdapterCache
    on_wait: WaitReporter | None
    token: str | None


@dataclass(frozen=True, slots=True)
class RegistryKind:
    """Everything weightkeeper knows of one registry kind, declared in its adapter's module.

    `adapter` builds the adapter; `archive_source` (None: its models cannot be archived) builds the
    `tools.archive.sources.Source` of one record, raising `SourceError` when that record cannot be
    archived; `files_listed` says whether an archive needs the observation to have listed the model's
    files (an MLflow version's artifacts are listed when archived, an OpenAI fine-tune's archive is its
    metadata); `pin` says what pins an archive of a record, the same when planned and when run.
    `one_of`, with `one_of_because`, asks for at least one of those settings. `shards` (None: never split)
    splits one configured registry into the registries that are scanned, each a registry of its own in the
    ledger (its own cursor, lease and complete listing), named `NAME/PART`; it returns the registry itself
    when its config asks for no split (`shards_by` makes one from a list setting)."""

    name: str
    settings: tuple[Setting, ...]
    adapter: Callable[[RegistryConfig, Opening], RegistryAdapter]
    archive_source: Callable[[RegistryConfig, ModelRecord], Any] | None = None
    files_listed: bool = False
    pin: Callable[[ModelRecord], str | None] | None = None  # None: `ModelRecord.pinned_revision`
    token_env: str | None = None  # the variable its token is read from when the table names none
    one_of: tuple[str, ...] = ()
    one_of_because: str = ""
    location: Callable[[RegistryConfig], str] | None = None  # None: its first URL or file setting
    shards: Callable[[RegistryConfig], list[RegistryConfig]] | None = None

    @property
    def required(self) -> frozenset[str]:
        return frozenset(setting.name for setting in self.settings if setting.required)

    @property
    def optional(self) -> frozenset[str]:
        return frozenset(setting.name for setting in self.settings if not setting.required)

    def setting(self, name: str) -> Setting | None:
        return next((setting for setting in self.settings if setting.name == name), None)


def shards_by(setting: str, *, into: str) -> Callable[[RegistryConfig], list[RegistryConfig]]:
    """A kind's `shards`, split by a list setting: with `setting` (the Hub's `authors`), one registry per value,
    named NAME/VALUE, with the table's other settings and `into` (`author`) set to the value; without, the
    registry itself."""

    def shards(config: RegistryConfig) -> list[RegistryConfig]:
        values = config.settings.get(setting)
        if not values:
            return [config]
        settings = {key: value for key, value in config.settings.items() if key != setting}
        return [replace(config, name=f"{config.name}/{value}", settings={**settings, into: value}) for value in values]

    return shards


_KINDS: dict[str, RegistryKind] = {}


def register_kind(kind: RegistryKind) -> RegistryKind:
    """Make `kind` known to the config, `registry add`, the scan and the archive; returns it."""
    _KINDS[kind.name] = kind
    return kind


def registry_kinds() -> Mapping[str, RegistryKind]:
    """The registered kinds, in the order they were registered. The built-in ones are registered when
    `tools.registries` is imported, as the command does when it starts."""
    return _KINDS


def registry_kind(name: str) -> RegistryKind | None:
    return _KINDS.get(name)
