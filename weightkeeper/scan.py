"""The scan engine: one pass over one registry, turned into ledger events.

The listing is read page by page, in a child process that reads ahead while this one writes
(`weightkeeper.read_ahead`), and written in batches (up to 10,000 records, or what a second of
reading brought: `[scan]` in the config), one transaction each: each listed name
and its record's digest are compared with the ledger *in SQL* (a present model of
that name with the same digest is unchanged), the others are looked at more closely
and their observations and events written, the ids of the known models the
batch listed are kept for the end, and only then is the cursor committed. A crash
loses at most the batch in flight and repeats nothing.

Only after a *complete* listing does the engine look for what is missing:
a model absent from it becomes `suspected_missing`, and becomes `deleted`
only when a direct lookup says it is gone, or `withdrawn` when the registry's
answer means "gone" and "hidden from you" alike (the Hub's to an anonymous
caller). A withdrawn model is asked about again on every scan until it is seen
(`restored`) or confirmed gone (`deleted`). A failed or interrupted listing
concludes nothing about absent models; the next scan resumes it. A listing
resumed after its cursor may have missed a model renamed behind the cursor
meanwhile: what it lacks is only suspected, and looked up after the next
listing, from the start (unless the registry finds such a model anyway,
`resumes_see_renames`: the Hub's redirects, MLflow's re-read of recent updates).

A listed model is the ledger's model of its name; where the registry's keys are
identities (`stable_keys`: the Hub's `_id`) of its name and key. A name listed
with another identity waits for the complete listing, like a possible rename:
two names swapped are two renames, and a model deleted while another took its
name is suspected, then concluded by a lookup, and the other appears.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import TypeVar, cast

from weightkeeper.config import RegistryConfig, ScanSettings
from weightkeeper.domain import (
    CARD_FILE,
    EventKind,
    FileEntry,
    Found,
    Gone,
    Hidden,
    LookupResult,
    ModelRecord,
    ModelState,
    RecordProblem,
    RecordRow,
    Visibility,
    Withdrawn,
    comparable,
    row_digest,
)
from weightkeeper.errors import LedgerError, RegistryUnavailable
from weightkeeper.ledger import Ledger, now_iso
from weightkeeper.ledger.models import ModelRow, ModelStore, json_extend
from weightkeeper.ledger.scans import ScanStore
from weightkeeper.ledger.store import NewEvent
from weightkeeper.listed import ListedModels
from weightkeeper.read_ahead import ReadPage, read_ahead
from weightkeeper.registry import KeepsIdentities, RegistryAdapter
from weightkeeper.untrusted import screened
from weightkeeper.words import counted

# Fields whose change is recorded as a new observation but is no event of its own.
BOOKKEEPING_FIELDS = frozenset({"downloads", "likes", "last_modified", "key"})
DEPRECATION_FIELDS = frozenset({"shutdown_date", "successor"})
STAGE = "stage"  # the key of `ModelRecord.extra` holding a registry's lifecycle stage
COMPLETE_ABSENCE = "absent from a complete listing"
RESUMED_ABSENCE = ("absent from a listing resumed after an interruption: it may have been renamed behind the point "
                   "where the listing resumed, which a lookup of its old name cannot tell from a deletion; it is "
                   "looked up after the next listing, from the start")
LOOKUP_BATCH = 100  # lookups asked between two commits
T = TypeVar("T")


@dataclass
class ScanResult:
    registry: str
    scan_id: int | None  # None: the registry could not even be opened (a missing token, say)
    status: str
    resumed: bool
    pages: int = 0
    models_seen: int = 0
    events: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, str | None]] = field(default_factory=list)
    error: str | None = None
    # Wall time of this run: waiting on the registry and building its records vs writing the ledger.
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "complete"


def change_events(prior: ModelRecord, record: ModelRecord) -> list[tuple[EventKind, dict]]:
    """The events that tell how `record` differs from `prior` (the name is the caller's business)."""
    prior = comparable(prior, record)
    changed = [f.name for f in fields(ModelRecord) if getattr(prior, f.name) != getattr(record, f.name)]
    if "files" in changed and _without_card(prior.files) == _without_card(record.files):
        changed.remove("files")
    events: list[tuple[EventKind, dict]] = []
    if "visibility" in changed:
        events.append((EventKind.VISIBILITY_CHANGED, {"from": prior.visibility.value, "to": record.visibility.value}))
    announced = bool(DEPRECATION_FIELDS & set(changed)) and record.shutdown_date is not None
    if announced:
        events.append(
            (EventKind.DEPRECATION_ANNOUNCED, {"shutdown_date": record.shutdown_date, "successor": record.successor})
        )
    if prior.extra.get(STAGE) != record.extra.get(STAGE):
        events.append((EventKind.STAGE_CHANGED, {"from": prior.extra.get(STAGE), "to": record.extra.get(STAGE)}))
    # A withdrawn shutdown date, or a successor named without one, is an update like any other.
    silent = BOOKKEEPING_FIELDS | {"name", "visibility"} | (DEPRECATION_FIELDS if announced else frozenset())
    content = _inner_changes([name for name in changed if name not in silent], prior, record)
    if content:
        events.append((EventKind.UPDATED, {"changed": content}))
    return events


def _without_card(files: tuple[FileEntry, ...]) -> tuple[FileEntry, ...]:
    return tuple(entry for entry in files if entry.path != CARD_FILE)


def _inner_changes(changed: list[str], prior: ModelRecord, record: ModelRecord) -> list[str]:
    """The changed fields, with `card` and `extra` named by what changed inside them (`card.license`)."""
    named: list[str] = []
    for name in changed:
        if name == "card" and prior.card is not None and record.card is not None:
            named += [f"card.{f.name}" for f in fields(prior.card) if f.name != "digest"
                      and getattr(prior.card, f.name) != getattr(record.card, f.name)] or ["card"]
        elif name == "extra":  # the stage has an event of its own
            named += [f"extra.{key}" for key in sorted(prior.extra.keys() | record.extra.keys())
                      if key != STAGE and prior.extra.get(key) != record.extra.get(key)]
        else:
            named.append(name)
    return named


class ScanStopped(Exception):
    """The scan was asked to stop (SIGTERM under `watch`); what it committed stands and is resumed."""


@contextmanager
def _collecting_less() -> Iterator[None]:
    """Run the cyclic garbage collector less often during a scan.

    A scan allocates millions of short-lived records, and each page's are freed by reference
    counting soon after; at the default pace the collector kept walking every long-lived object
    of the process, which cost seconds per million models listed.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@dataclass
class _Batch:
    """Pages read and not yet written: their records' rows (the first of each name, with its digest; None for
    a record known unchanged), problems, and the cursor after them."""

    records: dict[str, tuple[RecordRow | None, int]] = field(default_factory=dict)
    problems: list[RecordProblem] = field(default_factory=list)
    pages: int = 0
    cursor: str | None = None

    def add(self, page: ReadPage) -> None:
        for name, row, digest in page.records:
            if name not in self.records:
                self.records[name] = (row, row_digest(row) if digest is None else digest)
        self.problems += page.problems
        self.pages += 1
        self.cursor = page.cursor


class Scanner:
    """Runs (or resumes) one scan of one registry into the ledger."""

    def __init__(self, ledger: Ledger, registry: RegistryConfig, adapter: RegistryAdapter, *,
                 allow_empty: bool = False, settings: ScanSettings = ScanSettings(),
                 should_stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[int, int], object] | None = None) -> None:
        """`should_stop` is asked after each page and lookup batch: when it says so, the scan commits what
        it has and ends `interrupted`, to be resumed. `progress(pages, models)` hears of each page read."""
        self.ledger, self.registry, self.adapter, self.allow_empty = ledger, registry, adapter, allow_empty
        self.settings, self.should_stop, self.progress = settings, should_stop, progress
        self.registry_seconds = 0.0
        self.registry_id = ledger.registry_id(registry.name, registry.kind, registry.location)
        self.scans, self.models = ScanStore(ledger, self.registry_id), ModelStore(ledger, self.registry_id)
        # A test double without the attribute is a registry whose keys are content, not identities.
        self.stable_keys: bool = getattr(adapter, "stable_keys", False)

    def run(self) -> ScanResult:
        started = time.perf_counter()
        scan_id, phase, cursor, resumed = self._start()
        with self.ledger.checkpoints_in_background(), _collecting_less():
            self._scan(scan_id, phase, cursor, resumed)
        result = self.result(scan_id, resumed)
        total = time.perf_counter() - started
        result.seconds = {"total": round(total, 3), "registry": round(self.registry_seconds, 3),
                          "ledger": round(total - self.registry_seconds, 3)}
        return result

    def _scan(self, scan_id: int, phase: str, cursor: str | None, resumed: bool) -> None:
        try:
            if phase == "listing":
                listed_before = self.scans.models_seen(scan_id)
                self._list(scan_id, cursor)
                if self.scans.models_seen(scan_id) == listed_before:
                    self._refuse_empty_listing(resumed_from=cursor)
                with self.ledger.transaction(registry=self.registry_id):
                    self.scans.resolving(scan_id)
            self._resolve(scan_id)
        except ScanStopped:
            self._finish(scan_id, "interrupted", "stopped on request; the next scan resumes from the last committed page")
        except RegistryUnavailable as exc:
            self._finish(scan_id, "failed", str(exc))
        except OSError as exc:
            self._finish(scan_id, "failed", f"{type(exc).__name__}: {exc}")
        except BaseException:
            self._finish(scan_id, "interrupted", "interrupted; the next scan resumes from the last committed page")
            raise

    def _timed(self, pages: Iterator[T]) -> Iterator[T]:
        while True:
            started = time.perf_counter()
            page = next(pages, None)
            self.registry_seconds += time.perf_counter() - started
            if page is None:
                return
            yield page

    def result(self, scan_id: int, resumed: bool = False) -> ScanResult:
        """What the ledger holds about one scan of this registry."""
        scan = self.scans.summary(scan_id)
        return ScanResult(self.registry.name, scan_id, scan.status, resumed, scan.pages, scan.models_seen,
                          scan.events, scan.problems, scan.error)

    # -- the listing ------------------------------------------------------------------------

    def _start(self) -> tuple[int, str, str | None, bool]:
        with self.ledger.transaction(registry=self.registry_id):
            start = self.scans.start()
        return start.scan_id, start.phase, start.cursor, start.resumed

    def _list(self, scan_id: int, cursor: str | None) -> None:
        """Read pages from the registry and write them in batches, each with the cursor after its last page."""
        batch, flushed, pages, models = _Batch(), time.perf_counter(), 0, 0
        # The present models' digests: the child sends a record matching one (unchanged) without its data.
        known = self.models.present_digests()
        try:
            with closing(read_ahead(self.adapter, cursor, known)) as listing:
                for page in self._timed(listing):
                    batch.add(page)
                    pages, models = pages + 1, models + len(page.records) + len(page.problems)
                    if self.progress:
                        self.progress(pages, models)
                    if self.should_stop():
                        raise ScanStopped
                    if (len(batch.records) + len(batch.problems) >= self.settings.commit_records
                            or time.perf_counter() - flushed >= self.settings.commit_seconds):
                        full, batch = batch, _Batch()
                        self._write_batch(scan_id, full)
                        flushed = time.perf_counter()
        finally:
            # Pages read before a fault or an interrupt are good: keep them, so a resumed scan starts after them.
            if batch.pages:
                self._write_batch(scan_id, batch)

    def _write_batch(self, scan_id: int, batch: _Batch) -> None:
        listed = list(batch.records.values())
        with self.ledger.transaction(registry=self.registry_id):
            page_no = self.scans.pages(scan_id) + batch.pages
            self.scans.add_problems(scan_id, [(problem.name, problem.message) for problem in batch.problems])
            matched, unmatched = self.models.unchanged([(name, digest) for name, (_, digest) in batch.records.items()])
            changed = [listed[position] for position in unmatched]
            if any(row is None for row, _ in changed):
                # Sent without its data, a record matched a present model when it was read, and this scan
                # changes a model only after reading its name in full: something else changed the ledger.
                raise LedgerError("a model the scan read as unchanged was changed meanwhile; nothing was concluded")
            by_name: list[int | None] = self._listed_by_name(scan_id, changed)
            # A listed model that could not be read is still listed.
            by_name += [self.models.latest_of_name(problem.name) for problem in batch.problems]
            self.scans.keep_listed(scan_id, page_no, json_extend(matched, [i for i in by_name if i is not None]))
            self.scans.advance(scan_id, batch.cursor, page_no, len(batch.records) + len(batch.problems),
                               len(batch.problems))

    def _listed_by_name(self, scan_id: int, listed: list[tuple[RecordRow, int]]) -> list[int]:
        """Listed records that matched no present model of their name and digest: known models that changed,
        and new names. Return the ids of the models they are; a possible rename waits for the complete listing."""
        if not listed:
            return []
        holders = self.models.holders([row.name for row, _ in listed])
        ids, new, taken = [], [], set()
        for row, digest in listed:
            named = holders.get(row.name, [])
            model = next((m for m in reversed(named) if not self.stable_keys or m["key"] == row.key), None)
            if model is None:
                new.append((row, digest))
                if any(m["state"] == ModelState.PRESENT for m in named):
                    taken.add(row.name)  # by another model, which may be listed under another name: wait and see
            else:
                self._observe(scan_id, model["id"], ModelRecord.from_row(row), model["last_observation_id"],
                              was=model["state"])
                ids.append(model["id"])
        return ids + self._new_names(scan_id, new, taken)

    def _refuse_empty_listing(self, *, resumed_from: str | None) -> None:
        """This run listed nothing: if the registry had models, an unmounted folder is likelier than a mass deletion.

        A resumed listing may rightly have nothing left after its cursor; then the registry
        still lists something from the start.
        """
        present = self.models.present_count()
        if self.allow_empty or not present:
            return
        if resumed_from is None or next(self._timed(self.adapter.pages(None)), None) is None:
            raise RegistryUnavailable(
                f"the registry listed no models, but {counted(present, 'was', 'were')} present at the last scan; an "
                "unmounted folder or an outage is likelier than that many deletions, so nothing was concluded. If "
                "every model really was removed, scan again with --allow-empty"
            )

    def _new_names(self, scan_id: int, listed: list[tuple[RecordRow, int]], taken: set[str]) -> list[int]:
        """Models the ledger has not seen under their names: new models (their ids are returned), or perhaps known
        ones renamed, or new ones under a name a present model of another identity holds (`taken`).

        Which it is is only known once the listing is complete (is the old
        name still there? where is the name's holder now?), so these wait for the resolution.
        """
        if not listed:
            return []
        known_keys = self.models.known_keys([row.key for row, _ in listed])
        self.scans.defer(scan_id, [(row.name, ModelRecord.from_row(row).to_json()) for row, _ in listed
                                   if row.key in known_keys or row.name in taken])
        return self.models.appear(scan_id, [(row, digest) for row, digest in listed
                                      if row.key not in known_keys and row.name not in taken])

    def _observe(
        self,
        scan_id: int,
        model_id: int,
        record: ModelRecord,
        prior_observation: int,
        *,
        was: str,
        source: str = "listing",
        renamed_from: str | None = None,
        prior: ModelRecord | None = None,
        reason: str | None = None,
    ) -> None:
        """Record a new observation of a known model and the events that explain the change."""
        prior = prior or self.ledger.load_record(prior_observation)
        row = record.row()
        digest = row_digest(row)
        if was == ModelState.PRESENT and renamed_from is None and comparable(prior, record) == record:
            # Nothing changed; the stored digest was computed otherwise (by an earlier weightkeeper).
            self.models.seen_unchanged(model_id, digest)
            return
        (observation_id,) = self.ledger.add_observations(scan_id, [(model_id, row, digest)], source=source)
        columns: dict[str, object] = {"digest": digest, "last_observation_id": observation_id, "last_seen": now_iso()}
        if record.name != prior.name:
            columns["name"] = record.name
        if record.key != prior.key:
            columns["key"] = record.key
        if record.visibility != prior.visibility:
            columns["visibility"] = record.visibility.value
        if was != ModelState.PRESENT:
            columns["state"] = ModelState.PRESENT.value
        self.models.update(model_id, columns)
        events = change_events(prior, record)
        if renamed_from is not None:
            events.insert(0, (EventKind.RENAMED, {"from": renamed_from, "to": record.name}))
        if reason is not None:  # what the registry said when asked directly (a 401 may also mean deleted)
            events = [(kind, {**detail, "reason": reason} if kind is EventKind.VISIBILITY_CHANGED else detail)
                      for kind, detail in events]
        # A model that went missing from the listing because it was hidden or renamed is explained, not restored.
        explained = any(kind in (EventKind.VISIBILITY_CHANGED, EventKind.RENAMED) for kind, _ in events)
        if was != ModelState.PRESENT and not (was == ModelState.SUSPECTED_MISSING and explained):
            events.insert(0, (EventKind.RESTORED, {"was": was, "via": source}))
        for kind, detail in events:
            self._event(kind, model_id, scan_id, observation_id, prior_observation, detail)

    def _event(self, kind: EventKind, model_id: int, scan_id: int, observation_id: int | None,
               prior_observation_id: int | None, detail: dict) -> None:
        self.ledger.add_events([NewEvent(kind, self.registry_id, model_id, scan_id, observation_id,
                                         prior_observation_id, detail)])

    # -- after a complete listing -----------------------------------------------------------

    def _resolve(self, scan_id: int) -> None:
        resumed = self.scans.listing_resumed(scan_id)
        # A model renamed, while the scan was interrupted, to a name before the cursor is in neither part of a
        # resumed listing. Unless the registry finds it anyway (`resumes_see_renames`), nothing absent from such a
        # listing is concluded: it stays suspected, to be looked up after the next listing from the start.
        wait = resumed and not getattr(self.adapter, "resumes_see_renames", False)
        reason = RESUMED_ABSENCE if wait else COMPLETE_ABSENCE
        listed = self.scans.listed(scan_id)
        self._resolve_renames(scan_id, listed, reason)
        absent = self._absent(listed)
        # A model the listing leaves out by design is looked up quietly: only the answer may say something.
        # That is a hidden one, or one known only through lookups (renamed out of a Hub author's scope, say).
        expected = [row["visibility"] in self.adapter.unlisted or row["source"] == "lookup" for row in absent]
        with self.ledger.transaction(registry=self.registry_id):
            self._mark_missing(scan_id, [row for row, quiet in zip(absent, expected) if not quiet], reason)
        if not wait:
            self._confirm_missing(scan_id, [row for row, quiet in zip(absent, expected) if quiet])
        self._finish(scan_id, "complete", None)

    def _resolve_renames(self, scan_id: int, listed: ListedModels, reason: str) -> None:
        with self.ledger.transaction(registry=self.registry_id):
            deferred = self.scans.deferred(scan_id)
            plans: list[tuple[str, ModelRecord, ModelRow | None]] = []
            for name, payload in deferred:
                record = ModelRecord.from_json(payload)
                # The old name must be absent from this complete listing: otherwise it is a copy.
                old = next((row for row in self.models.of_key(record.key) if row["id"] not in listed), None)
                if old:
                    listed.add([old["id"]])
                plans.append((name, record, old))
            plans = self._free_names(scan_id, plans, listed, reason)
            resolved = []
            for name, record, old in plans:
                if old:
                    self._observe(scan_id, old["id"], record, old["last_observation_id"], was=old["state"],
                                  renamed_from=old["name"])
                    model_id = old["id"]
                else:
                    row = record.row()
                    (model_id,) = self.models.appear(scan_id, [(row, row_digest(row))])
                listed.add([model_id])
                resolved.append(model_id)
                self.scans.resolved(scan_id, name)
            if resolved:  # kept as part 0, before the pages (numbered from 1), for a resumed resolution
                self.scans.keep_listed(scan_id, 0, json.dumps(resolved))

    def _free_names(self, scan_id: int, plans: list[tuple[str, ModelRecord, ModelRow | None]],
                    listed: ListedModels, reason: str) -> list[tuple[str, ModelRecord, ModelRow | None]]:
        """Let the deferred records (name, record, the model it is, if known) take their names: a model renamed
        among them leaves its old name, which another may take (two names swapped); a present model of another
        identity holding one, absent from the listing, is suspected missing (a repo deleted and another created
        under its name). Return the plans that can go ahead: a name a listed model holds cannot be taken."""
        renamed = {old["id"] for _, _, old in plans if old}
        going_ahead, suspects = [], {}
        for plan in plans:
            name, record, old = plan
            holder = self.models.present_holder(record.name)
            if holder is not None and holder["id"] not in renamed and holder["id"] in listed:
                self._problem(scan_id, record.name, "listed twice, as two models, in one listing (did it change "
                                                    "while it was read?); nothing concluded, the next scan looks again")
                self.scans.resolved(scan_id, name)
                continue
            if holder is not None and holder["id"] in renamed:
                self.models.free_name(holder["id"])
            elif holder is not None:
                suspects[holder["id"]] = holder
            going_ahead.append(plan)
        self._mark_missing(scan_id, list(suspects.values()), f"{reason}; its name now lists another model")
        return going_ahead

    def _absent(self, listed: ListedModels) -> list[ModelRow]:
        """The present models the complete listing did not show."""
        return self.models.with_last_source(listed.absent(self.models.present_ids()))

    def _mark_missing(self, scan_id: int, missing: list[ModelRow], reason: str) -> None:
        """Suspect each of `missing` (rows with `id` and `last_observation_id`), inside the caller's transaction."""
        # It was last seen by the registry's previous complete scan, which listed it.
        self.models.suspect([row["id"] for row in missing], self.scans.last_complete_start())
        for row in missing:
            self._event(EventKind.SUSPECTED_MISSING, row["id"], scan_id, row["last_observation_id"], None,
                        {"reason": reason})

    def _confirm_missing(self, scan_id: int, hidden: list[ModelRow]) -> None:
        """Ask the registry about each suspect, each withdrawn model and each hidden model its listing leaves
        out; lookups run outside transactions, answers are written in batches."""
        suspects = self.models.unresolved()
        suspects += [(row["id"], row["name"], row["last_observation_id"], row["state"]) for row in hidden]
        for start in range(0, len(suspects), LOOKUP_BATCH):
            if self.should_stop():
                raise ScanStopped
            batch = suspects[start : start + LOOKUP_BATCH]
            answers = [(suspect, self._lookup(suspect[1])) for suspect in batch]
            with self.ledger.transaction(registry=self.registry_id):
                for (model_id, name, prior_observation, was), answer in answers:
                    self._write_answer(scan_id, model_id, name, prior_observation, was, answer)

    def _lookup(self, name: str) -> LookupResult | RegistryUnavailable:
        started = time.perf_counter()
        try:
            answer = self.adapter.lookup(name)
        except RegistryUnavailable as exc:
            return exc
        finally:
            self.registry_seconds += time.perf_counter() - started
        # An answer under a name that does not show as itself (a redirect to one) says nothing the ledger takes.
        if isinstance(answer, Found) and isinstance(problem := screened(answer.record), RecordProblem):
            return RegistryUnavailable(problem.message)
        return answer

    def _write_answer(self, scan_id: int, model_id: int, name: str, prior_observation: int, was: str,
                      answer: LookupResult | RegistryUnavailable) -> None:
        if isinstance(answer, RegistryUnavailable):
            outcome = {ModelState.SUSPECTED_MISSING: "still suspected missing",
                       ModelState.WITHDRAWN: "still withdrawn"}.get(was, "nothing concluded")
            self._problem(scan_id, name, f"lookup failed, {outcome}: {answer}")
        elif isinstance(answer, Gone | Withdrawn):
            self._not_found(scan_id, model_id, name, prior_observation, was, answer)
        else:
            prior = self.ledger.load_record(prior_observation)
            record = answer.record if isinstance(answer, Found) else replace(prior, visibility=answer.visibility)
            if was == ModelState.PRESENT and comparable(prior, record) == record:
                return  # still hidden, as recorded
            if self.stable_keys and record.key != prior.key:
                # The name answers for another model now: this one is not found under it, and not in the listing.
                answer = cast(KeepsIdentities, self.adapter).name_taken(name, record)
                self._not_found(scan_id, model_id, name, prior_observation, was, answer)
                return
            renamed_from = None
            if record.name != name:  # the registry answered for the model under its new name (a redirect)
                holder = self.models.present_holder(record.name)
                if holder is not None:
                    self._problem(scan_id, name, f"a lookup answered as {record.name}, which the ledger holds "
                                                 "as another model; nothing concluded")
                    return
                renamed_from = name
            self._observe(scan_id, model_id, record, prior_observation, was=was, source="lookup",
                          renamed_from=renamed_from, prior=prior,
                          reason=answer.reason if isinstance(answer, Hidden) else None)

    def _not_found(self, scan_id: int, model_id: int, name: str, prior_observation: int, was: str,
                   answer: Gone | Withdrawn) -> None:
        """A lookup did not find the model: `deleted` when the registry says it is gone, `withdrawn` when its
        answer would be the same for a model hidden from us (nothing new for one already withdrawn, or
        recorded private: the answer a private model gets)."""
        gone = isinstance(answer, Gone)
        if not gone and (was == ModelState.WITHDRAWN or was == ModelState.PRESENT
                        and self.models.visibility(model_id) == Visibility.PRIVATE):
            return
        if was == ModelState.PRESENT:  # a model the listing leaves out: suspected and concluded at once
            self._event(EventKind.SUSPECTED_MISSING, model_id, scan_id, prior_observation, None,
                        {"reason": self._why_looked_up(prior_observation)})
        observation_id = self.ledger.add_gone_observation(model_id, scan_id, name, answer.reason)
        state = ModelState.DELETED if gone else ModelState.WITHDRAWN
        self.models.set_state(model_id, state)
        detail = {"reason": answer.reason}
        # Two names of one model (Ollama tags of one manifest): this name is gone, the model is not.
        survivor = self.models.other_name_of_key(model_id)
        if survivor is not None:
            detail["key_still_listed_as"] = survivor
        kind = EventKind.DELETED if gone else EventKind.WITHDRAWN
        self._event(kind, model_id, scan_id, observation_id, prior_observation, detail)

    def _why_looked_up(self, observation_id: int) -> str:
        """Why a model absent from the listing was looked up rather than suspected: what its last observation says."""
        visibility = self.models.observed_visibility(observation_id)
        why = (f"recorded as {visibility}, which this registry's listing leaves out" if visibility in self.adapter.unlisted
               else "last seen through a direct lookup, not in a listing")
        return f"absent from a complete listing, as expected: {why}; a direct lookup did not find it"

    def _problem(self, scan_id: int, name: str | None, message: str) -> None:
        self.scans.problem(scan_id, name, message)

    def _finish(self, scan_id: int, status: str, error: str | None) -> None:
        with self.ledger.transaction(registry=self.registry_id):
            self.scans.finish(scan_id, status, error)
