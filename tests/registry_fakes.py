"""An in-memory registry keeping the `RegistryAdapter` protocol, for tests of the scan engine.

It behaves like a registry with a name-ordered, cursor-paged listing (the cursor
is the last name of a page, as in the local folder registry) and a direct
lookup that answers `Found` for a listed name and `Gone` otherwise. Faults are
injected on demand while listing a given page (from `pages` or from `records`)
or on lookups of chosen names: `RegistryUnavailable` by default, or any other
exception (an `OSError`, or `KeyboardInterrupt` as SIGTERM raises it).

A scan lists through a forked child (`weightkeeper.read_ahead`): what `pages` and `records` change
there is lost to the test, unless it is kept in something both processes share (`SharedList`, the
listing fault count).
"""

from __future__ import annotations

import bisect
import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from weightkeeper.config import RegistryConfig
from weightkeeper.domain import Found, Gone, LookupResult, ModelRecord, Page, RecordProblem, Visibility, Withdrawn
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import Registry


@dataclass
class MemoryRegistry(Registry):
    models: dict[str, ModelRecord] = field(default_factory=dict)
    page_size: int = 3
    # Fault injection. `fail_page` is the index (0-based, within one `pages()` call) of the page
    # whose listing raises; `fail_in` says whether `pages` or `records` raises it.
    fail_page: int | None = None
    fail_in: str = "pages"
    fail_lookup: Callable[[str], bool] | None = None
    fault: type[BaseException] = RegistryUnavailable
    # False: a missing model's lookup cannot tell deleted from hidden (the Hub's answer to an anonymous caller).
    conclusive: bool = True
    # True: keys are identities (the Hub's _id); else content, and a model is its name (a local folder).
    stable_keys: bool = False
    # True: a model renamed while a listing was interrupted is found when it resumes (a lookup follows the rename).
    resumes_see_renames: bool = False
    # What happened, for assertions. Listing faults happen in the read-ahead child: counted in shared memory.
    _listing_faults: Any = field(default_factory=lambda: multiprocessing.get_context("fork").Value("i", 0))
    lookup_faults: int = 0
    lookups: list[str] = field(default_factory=list)

    kind = "memory"
    unlisted: ClassVar[frozenset[Visibility]] = frozenset()

    @property
    def listing_faults(self) -> int:
        return self._listing_faults.value

    def config(self, name: str = "mem") -> RegistryConfig:
        return RegistryConfig(name, self.kind, {"path": f"memory://{name}"})

    def pages(self, cursor: str | None) -> Iterator[Page]:
        names = sorted(self.models)
        start = bisect.bisect_right(names, cursor) if cursor else 0
        for index, offset in enumerate(range(start, len(names), self.page_size)):
            chunk = names[offset : offset + self.page_size]
            page = Page(tuple(self.models[name] for name in chunk), cursor=chunk[-1])
            if self.fail_page == index:
                if self.fail_in == "pages":
                    self._listing_faults.value += 1
                    raise self.fault(f"injected fault listing page {index}")
                page = Page(("FAIL",), cursor=page.cursor)
            yield page

    def records(self, page: Page) -> list[ModelRecord | RecordProblem]:
        if page.items == ("FAIL",):
            self._listing_faults.value += 1
            raise self.fault("injected fault reading a page")
        return list(page.items)

    def lookup(self, name: str) -> LookupResult:
        self.lookups.append(name)
        if self.fail_lookup is not None and self.fail_lookup(name):
            self.lookup_faults += 1
            raise self.fault(f"injected fault looking up {name}")
        record = self.models.get(name)
        if record is not None:
            return Found(record)
        return self.name_taken(name, None)

    def name_taken(self, name: str, other: ModelRecord | None) -> Gone | Withdrawn:
        """Not found as `name` (another model, `other`, answering for it, where keys are stable)."""
        return Gone(f"{name} is not in the registry") if self.conclusive else Withdrawn(
            f"{name} is not visible to this caller: deleted or hidden")


class MemoryCache:
    """An `AdapterCache` in a dict, as the ledger keeps one for an adapter; `values` shows what was kept."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def put(self, key: str, value: str) -> None:
        self.values[key] = value


class SharedList:
    """A list the read-ahead child appends to and the test reads: what an adapter was asked while listing."""

    def __init__(self) -> None:
        self._sent = multiprocessing.get_context("fork").SimpleQueue()
        self._items: list[Any] = []

    def append(self, item: Any) -> None:
        self._sent.put(item)

    def items(self) -> list[Any]:
        while not self._sent.empty():
            self._items.append(self._sent.get())
        return list(self._items)

    def clear(self) -> None:
        self.items()
        self._items.clear()
