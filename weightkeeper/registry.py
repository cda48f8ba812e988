"""The contract every registry adapter keeps, in the style of Software Heritage's swh-lister.

One class per registry kind with the same four methods:

- `pages(cursor)` yields raw pages of the listing, starting after `cursor`;
  each page carries the cursor to resume after it.
- `records(page)` turns a raw page into model records (or problems, for
  models whose data cannot be read; a problem never reads as a deletion).
- `lookup(name)` asks about one model directly: the only way a model that
  is missing from a listing becomes `deleted`.
- `check()` verifies that the registry answers and accepts our credentials,
  and says what it verified (`weightkeeper registry check`).

Any of them raises `RegistryUnavailable` when the registry cannot answer; the
scan engine then concludes nothing.

A record's `shutdown_date` is when that model stops being served. Whether a model stops with
the one it was built on is a fact of the registry, so its adapter sets the date: an OpenAI
fine-tune is served on its base and takes the base's date, while a Hub or local fine-tune holds
its own weights and takes none. The scan engine inherits nothing through lineage.

`unlisted` names the visibilities the listing leaves out (the Hub lists no private
model to an anonymous caller): a model recorded with one of them is expected to be
absent, and is looked up quietly instead of being suspected missing.

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

from collections.abc import Iterator
from typing import Protocol

from weightkeeper.domain import Gone, LookupResult, ModelRecord, Page, RecordProblem, Visibility, Withdrawn


class RegistryAdapter(Protocol):
    kind: str
    unlisted: frozenset[Visibility]
    stable_keys: bool
    resumes_see_renames: bool

    def pages(self, cursor: str | None) -> Iterator[Page]: ...

    def records(self, page: Page) -> list[ModelRecord | RecordProblem]: ...

    def lookup(self, name: str) -> LookupResult: ...

    def check(self) -> str: ...


class KeepsIdentities(RegistryAdapter, Protocol):
    """An adapter with `stable_keys`."""

    def name_taken(self, name: str, other: ModelRecord) -> Gone | Withdrawn: ...


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
