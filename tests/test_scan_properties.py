"""Property tests of the scan engine: the ledger's event stream always tells the registry's story.

Hypothesis drives random sequences of registry changes (models added, removed,
renamed, copied, changed, hidden, deprecated, brought back; page sizes so that
listings span several pages) and scans, on a real SQLite ledger. After every
scan an oracle written here (not the engine's code) replays the events joined
to their observations, and must reconstruct the registry exactly; the models
table must agree. A second machine makes the registry fail while listing or
looking up (`RegistryUnavailable`, an `OSError`, or `KeyboardInterrupt` as
SIGTERM raises it) or list nothing at all, and checks that an incomplete or
empty listing concludes nothing, that a scan resumed over an unchanged registry
is exact, and that once the faults stop a clean scan restores the exact state.
The explicit tests at the end pin, in minimal form, the counterexamples found.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from registry_fakes import MemoryRegistry
from weightkeeper.config import ScanSettings
from weightkeeper.domain import Card, FileEntry, Lineage, ModelRecord, Visibility
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.ledger import Ledger
from weightkeeper.scan import Scanner, ScanResult

# A small name pool, so names are reused: removed names come back, renames land on old names.
NAMES = tuple(f"{org}/m{i}" for org in ("alpha", "beta") for i in range(5))
LICENSES = ("apache-2.0", "mit", "cc-by-4.0")
BASES = (None, "meta/llama-3", "mistral/7b")
SHUTDOWN_DATES = ("2026-01-31", "2026-06-30")

# Events that carry the model as it was observed (a found observation); they set the replayed state.
SETTING_EVENTS = {"appeared", "restored", "updated", "visibility_changed", "renamed", "deprecation_announced"}
GONE = ("suspected_missing", "withdrawn", "deleted")  # the states a `restored` model may come back from

# What a registry adapter may raise mid-scan: its own "cannot answer", a network or file error, and
# KeyboardInterrupt (what SIGTERM and Ctrl-C raise in `weightkeeper scan`).
FAULTS = (RegistryUnavailable, ConnectionError, KeyboardInterrupt)

# How many histories, how long, and whether reproducible: the profile (tests/conftest.py). No shrinking, which
# on a failure can take minutes of SQLite scans; a failure prints the unshrunk steps (re-enable Phase.shrink
# locally to minimise).
SETTINGS = settings(
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def make_record(name: str, key: str, *, rev: int = 0, visibility: Visibility = Visibility.PUBLIC,
                license: str = "mit", base: str | None = None) -> ModelRecord:
    """A model as a registry lists it. Bookkeeping fields (downloads, likes, last_modified) stay fixed:
    their changes are recorded as observations without an event, by design."""
    return ModelRecord(
        name=name,
        key=key,
        revision=f"rev{rev}",
        created_at="2025-01-01T00:00:00Z",
        visibility=visibility,
        downloads=10,
        likes=2,
        lineage=(Lineage(base, "finetune"),) if base else (),
        card=Card(digest=f"card:{license}:{base}", license=license),
        files=(FileEntry("README.md", 40, f"readme:{license}:{base}"),
               FileEntry("model.safetensors", 1000 + rev, f"{key}:weights:{rev}")),
    )


def content_change(record: ModelRecord, how: str) -> ModelRecord:
    if how == "revision":
        rev = int(record.revision.removeprefix("rev")) + 1
        return replace(record, revision=f"rev{rev}", files=(
            record.files[0], FileEntry("model.safetensors", 1000 + rev, f"{record.key}:weights:{rev}")))
    if how == "license":
        license = LICENSES[(LICENSES.index(record.card.license) + 1) % len(LICENSES)]
        base = record.lineage[0].base_model if record.lineage else None
        return replace(record, card=Card(digest=f"card:{license}:{base}", license=license),
                       files=(FileEntry("README.md", 40, f"readme:{license}:{base}"), record.files[1]))
    assert how == "lineage"
    base = record.lineage[0].base_model if record.lineage else None
    base = BASES[(BASES.index(base) + 1) % len(BASES)]
    return replace(record, lineage=(Lineage(base, "finetune"),) if base else ())


# -- the oracle -------------------------------------------------------------------------------


def replay(conn: sqlite3.Connection, registry_id: int) -> dict[str, tuple[str, object]]:
    """Replay the registry's events (joined to their observations) into {name: (visibility, digest)}.

    Also checks that each model's events form a legal life: appeared first; suspected_missing only
    of a present model; withdrawn only of a suspected one; deleted only of a suspected or withdrawn one
    (so a deletion is found once); restored only of a suspected, withdrawn or deleted one; withdrawn and
    deleted backed by a lookup that did not find the model; every event's observation belongs to its model;
    a model still listed whose shutdown date is known had that date announced, were it already set when
    the model appeared.
    """
    state: dict[int, str] = {}
    seen: dict[int, tuple[str, str, object]] = {}
    shutdown: dict[int, str | None] = {}
    announced: dict[int, str | None] = {}
    rows = conn.execute(
        "SELECT e.id, e.kind, e.model_id, o.model_id AS observed_model, o.found, o.name, o.visibility, o.digest,"
        " o.shutdown_date"
        " FROM events e LEFT JOIN observations o ON o.id = e.observation_id WHERE e.registry_id = ? ORDER BY e.id",
        (registry_id,),
    ).fetchall()
    for row in rows:
        event, model, kind = row["id"], row["model_id"], row["kind"]
        assert row["observed_model"] == model, f"event {event} ({kind}) points at another model's observation"
        if kind == "appeared":
            assert model not in state, f"event {event}: model {model} appeared twice"
        else:
            assert model in state, f"event {event}: {kind} of model {model} before it appeared"
        if kind in SETTING_EVENTS:
            assert row["found"] == 1, f"event {event} ({kind}) points at a 'gone' observation"
            if kind == "restored":
                assert state[model] in GONE, f"event {event}: restored a present model"
            elif state.get(model) in ("withdrawn", "deleted"):
                raise AssertionError(f"event {event}: {kind} of {state[model]} model {model} without `restored`")
            state[model] = "present"
            seen[model] = (row["name"], row["visibility"], row["digest"])
            shutdown[model] = row["shutdown_date"]
            if kind == "deprecation_announced":
                announced[model] = row["shutdown_date"]
        elif kind == "suspected_missing":
            assert state[model] == "present", f"event {event}: suspected_missing of a {state[model]} model"
            state[model] = "suspected_missing"
        elif kind in ("withdrawn", "deleted"):
            allowed = ("suspected_missing",) if kind == "withdrawn" else ("suspected_missing", "withdrawn")
            assert state[model] in allowed, f"event {event}: {kind} of a {state[model]} model"
            assert row["found"] == 0, f"event {event}: {kind} not backed by a lookup that did not find it"
            state[model] = kind
        else:
            raise AssertionError(f"event {event}: unexpected kind {kind}")
    current: dict[str, tuple[str, object]] = {}
    holders: dict[str, int] = {}
    for model, status in state.items():
        if status not in ("withdrawn", "deleted"):  # suspected_missing removes nothing
            assert shutdown[model] is None or announced.get(model) == shutdown[model], (
                f"model {model}'s shutdown on {shutdown[model]} was never announced")
            name, visibility, digest = seen[model]
            if name in current:
                # Where keys are identities, a model still suspected may share its name with the one that took it
                # (deleted and created again, the lookup of the old one failed): the name is the present model's.
                other = holders[name]
                assert "suspected_missing" in (status, state[other]) and "present" in (status, state[other]), (
                    f"two models replay to the name {name}")
                if status == "suspected_missing":
                    continue
            current[name], holders[name] = (visibility, digest), model
    return current


# -- the machines -------------------------------------------------------------------------------


class ScanMachine(RuleBasedStateMachine):
    """A registry changing at random between clean scans; after each scan the ledger tells it exactly."""

    base_dir: Path

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(dir=self.base_dir))
        self.ledger = Ledger(self.dir / "ledger.sqlite3")
        self.conn = self.ledger.conn
        self.registry = MemoryRegistry(page_size=3)
        self.scan_settings = ScanSettings()
        self.config = self.registry.config()
        self.registry_id = self.ledger.registry_id(self.config.name, self.config.kind, self.config.location)
        self.removed: dict[str, ModelRecord] = {}
        self.keys = itertools.count()

    def teardown(self) -> None:
        self.ledger.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @initialize(data=st.data(), count=st.integers(min_value=3, max_value=len(NAMES) - 2))
    def populate(self, data, count):
        """Start from a registry of several models, already scanned once."""
        for _ in range(count):
            self.change_add(data)
        self.scan()

    # -- registry changes

    def mutated(self) -> None:
        """Hook: the registry changed."""

    def free_names(self) -> list[str]:
        return [name for name in NAMES if name not in self.registry.models]

    def draw_listed(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.registry.models)), label="model")

    # Each change is a method `change_<kind>(data)` that returns False when it does not apply; the rules
    # below make one change, or a day's worth at once (so one scan meets renames, deletions and updates).

    def change_add(self, data: st.DataObject) -> bool:
        if len(self.registry.models) == len(NAMES):
            return False
        name = data.draw(st.sampled_from(self.free_names()), label="new name")
        self.registry.models[name] = replace(make_record(
            name, f"key{next(self.keys)}", visibility=data.draw(st.sampled_from(Visibility), label="visibility"),
            license=data.draw(st.sampled_from(LICENSES), label="license"),
            base=data.draw(st.sampled_from(BASES), label="base")),
            shutdown_date=data.draw(st.sampled_from((None, *SHUTDOWN_DATES)), label="shutdown date"))
        return True

    def change_remove(self, data: st.DataObject) -> bool:
        """Remove one model (never the last: an empty listing is refused as an outage, see the faulty machine)."""
        if len(self.registry.models) < 2:
            return False
        name = self.draw_listed(data)
        self.removed[name] = self.registry.models.pop(name)
        return True

    def change_rename(self, data: st.DataObject) -> bool:
        """Same key, new name (the old name is gone)."""
        if not self.registry.models or len(self.registry.models) == len(NAMES):
            return False
        old = self.draw_listed(data)
        new = data.draw(st.sampled_from(self.free_names()), label="renamed to")
        self.registry.models[new] = replace(self.registry.models.pop(old), name=new)
        return True

    def change_copy(self, data: st.DataObject) -> bool:
        """A second name with the same key and content (a copy is no rename: the original stays)."""
        if not self.registry.models or len(self.registry.models) == len(NAMES):
            return False
        original = self.draw_listed(data)
        new = data.draw(st.sampled_from(self.free_names()), label="copied to")
        self.registry.models[new] = replace(self.registry.models[original], name=new)
        return True

    def change_content(self, data: st.DataObject) -> bool:
        if not self.registry.models:
            return False
        name = self.draw_listed(data)
        how = data.draw(st.sampled_from(["revision", "license", "lineage"]), label="how")
        self.registry.models[name] = content_change(self.registry.models[name], how)
        return True

    def change_visibility(self, data: st.DataObject) -> bool:
        if not self.registry.models:
            return False
        name = self.draw_listed(data)
        record = self.registry.models[name]
        visibility = data.draw(st.sampled_from([v for v in Visibility if v != record.visibility]), label="to")
        self.registry.models[name] = replace(record, visibility=visibility)
        return True

    def change_bring_back(self, data: st.DataObject) -> bool:
        """A removed model comes back under its old name, as it was or changed."""
        names = sorted(name for name in self.removed if name not in self.registry.models)
        if not names:
            return False
        name = data.draw(st.sampled_from(names), label="brought back")
        record = self.removed.pop(name)
        changed = data.draw(st.booleans(), label="changed")
        self.registry.models[name] = content_change(record, "revision") if changed else record
        return True

    def change_deprecate(self, data: st.DataObject) -> bool:
        """A shutdown date is announced, moved or called off, perhaps naming a successor."""
        if not self.registry.models:
            return False
        name = self.draw_listed(data)
        record = self.registry.models[name]
        date = data.draw(st.sampled_from([d for d in (None, *SHUTDOWN_DATES) if d != record.shutdown_date]),
                         label="date")
        successor = data.draw(st.sampled_from((None, *NAMES[:2])), label="successor")
        self.registry.models[name] = replace(record, shutdown_date=date, successor=successor)
        return True

    CHANGES = ("add", "remove", "rename", "copy", "content", "visibility", "bring_back", "deprecate")

    @rule(data=st.data(), kind=st.sampled_from(CHANGES))
    def change(self, data, kind):
        if getattr(self, f"change_{kind}")(data):
            self.mutated()

    @rule(data=st.data(), kinds=st.lists(st.sampled_from(CHANGES), min_size=2, max_size=6))
    def changes(self, data, kinds):
        for kind in kinds:
            if getattr(self, f"change_{kind}")(data):
                self.mutated()

    @rule(size=st.integers(min_value=1, max_value=4))
    def set_page_size(self, size):
        self.registry.page_size = size

    @rule(records=st.sampled_from([1, 5, 10_000]))
    def set_commit_records(self, records):
        """Commit every page, every few pages, or once for the whole listing (no kill lands between pages here)."""
        self.scan_settings = ScanSettings(commit_records=records, commit_seconds=3600)

    @rule()
    def scan(self):
        result, new = self.run_scan()
        assert result.status == "complete", result.error
        assert not result.resumed
        self.check_suspicions(new)
        self.check_exact()

    # -- scanning and checking

    def last_event_id(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]

    def run_scan(self, *, allow_empty: bool = False) -> tuple[ScanResult, list[sqlite3.Row]]:
        """One scan; checks what must hold whatever happened; returns the result and its new events."""
        before = self.last_event_id()
        scanner = Scanner(self.ledger, self.config, self.registry, allow_empty=allow_empty,
                          settings=self.scan_settings)
        try:
            result = scanner.run()
        except KeyboardInterrupt:  # as SIGTERM raises it: the scan is recorded interrupted, then re-raises
            scan_id = self.conn.execute("SELECT MAX(id) FROM scans WHERE registry_id = ?",
                                        (self.registry_id,)).fetchone()[0]
            result = scanner.result(scan_id)
            assert result.status == "interrupted"
        new = self.conn.execute(
            "SELECT e.kind, e.model_id, o.name FROM events e LEFT JOIN observations o ON o.id = e.observation_id"
            " WHERE e.id > ? ORDER BY e.id",
            (before,),
        ).fetchall()
        deleted = {event["name"] for event in new if event["kind"] == "deleted"}
        wrongly = sorted(deleted & set(self.registry.models))
        assert not wrongly, f"deleted, yet listed: {wrongly}"
        replay(self.conn, self.registry_id)  # the event stream stays a legal history whatever happened
        return result, new

    def check_suspicions(self, new: list[sqlite3.Row]) -> None:
        """A complete listing of one registry state suspects only models whose name it lacks."""
        suspected = {event["name"] for event in new if event["kind"] == "suspected_missing"}
        wrongly = sorted(suspected & set(self.registry.models))
        assert not wrongly, f"suspected missing, yet listed: {wrongly}"

    def expected(self) -> dict[str, tuple[str, object]]:
        return {name: (record.visibility.value, record.digest()) for name, record in self.registry.models.items()}

    def check_exact(self) -> None:
        expected = self.expected()
        assert replay(self.conn, self.registry_id) == expected
        rows = self.conn.execute(
            "SELECT name, state, visibility, digest FROM models WHERE registry_id = ?", (self.registry_id,)
        ).fetchall()
        present = {row["name"]: (row["visibility"], row["digest"]) for row in rows if row["state"] == "present"}
        assert present == expected, "the models table disagrees with the registry"
        gone = {row["name"]: row["state"] for row in rows if row["name"] not in expected}
        assert set(gone.values()) <= {"deleted"}, f"models absent from the registry but not deleted: {gone}"
        unfinished = self.conn.execute("SELECT COUNT(*) FROM scans WHERE phase != 'done'").fetchone()[0]
        assert unfinished == 0


class FaultyScanMachine(ScanMachine):
    """The same, with the registry failing while listing or looking up, or listing nothing at all."""

    def __init__(self) -> None:
        super().__init__()
        self.unfinished = False  # a scan failed mid-listing and will be resumed
        self.stale = False  # the registry changed while that scan was unfinished

    def mutated(self) -> None:
        if self.unfinished:
            self.stale = True

    @precondition(lambda self: self.registry.models)
    @rule()
    def remove_all(self):
        """The registry lists nothing (every model removed, or an outage that looks like it)."""
        self.removed.update(self.registry.models)
        self.registry.models.clear()
        self.mutated()

    def faulty_scan(self, *, fail_page: int | None = None, fail_in: str = "pages",
                    failing_lookups: frozenset[str] = frozenset(), fault: type[BaseException] = RegistryUnavailable,
                    allow_empty: bool = False) -> ScanResult:
        """One scan with the given faults; checks what it may and may not conclude, and when it must be exact."""
        self.registry.fail_page, self.registry.fail_in, self.registry.fault = fail_page, fail_in, fault
        self.registry.fail_lookup = failing_lookups.__contains__
        listing_faults, lookup_faults = self.registry.listing_faults, self.registry.lookup_faults
        present = {row[0] for row in self.conn.execute(
            "SELECT name FROM models WHERE registry_id = ? AND state = 'present'", (self.registry_id,))}
        resuming = self.conn.execute(
            "SELECT phase FROM scans WHERE registry_id = ? AND phase != 'done'", (self.registry_id,)).fetchone()
        lists = resuming is None or resuming[0] == "listing"  # a resumed resolution lists nothing
        try:
            result, new = self.run_scan(allow_empty=allow_empty)
        finally:
            self.registry.fail_page, self.registry.fail_lookup = None, None
            self.registry.fault = RegistryUnavailable
        kinds = [event["kind"] for event in new]
        deleted = {event["name"] for event in new if event["kind"] == "deleted"}
        assert not deleted & failing_lookups, "a model whose lookup failed was deleted"
        listing_failed = self.registry.listing_faults > listing_faults
        failed_lookups = self.registry.lookup_faults - lookup_faults
        unfinished_status = "interrupted" if fault is KeyboardInterrupt else "failed"
        if listing_failed:
            # An incomplete listing concludes nothing about absent models.
            assert result.status == unfinished_status, result.error
            assert "suspected_missing" not in kinds and "deleted" not in kinds, (
                f"an incomplete listing concluded something about absent models: {kinds}")
            self.unfinished = True
            return result
        if lists and not self.registry.models and present and not allow_empty:
            # An empty listing of a registry that had models reads as an outage (an unmounted folder), not
            # as mass deletion, whether the scan is fresh or resumes one that had listed some pages before.
            assert "suspected_missing" not in kinds and not deleted & present, (
                f"an empty listing concluded that present models are missing: {kinds}, deleted {sorted(deleted)}")
            if result.status == "failed" and "--allow-empty" in (result.error or ""):
                self.unfinished = True
                return result
        if failed_lookups and fault is not RegistryUnavailable:
            # A lookup broke off the resolution: the scan stays unfinished and resumes its resolution.
            assert result.status == unfinished_status, result.error
            self.unfinished = True
            return result
        assert result.status == "complete", result.error
        if not self.stale:
            self.check_suspicions(new)
        if failed_lookups:
            # Each failed lookup leaves its model suspected missing, with a problem saying so.
            suspects = {row[0] for row in self.conn.execute(
                "SELECT name FROM models WHERE registry_id = ? AND state = 'suspected_missing'", (self.registry_id,))}
            problems = {row[0] for row in self.conn.execute(
                "SELECT model_name FROM problems WHERE scan_id = ? AND message LIKE 'lookup failed%'",
                (result.scan_id,))}
            assert problems and problems <= suspects & failing_lookups
        elif self.conn.execute("SELECT listing_resumed FROM scans WHERE id = ?", (result.scan_id,)).fetchone()[0]:
            # A listing resumed after its cursor concludes nothing about what it lacks (a model renamed behind the
            # cursor meanwhile would look deleted): each stays suspected, for the next scan, from the start, to end.
            present = {row[0] for row in self.conn.execute(
                "SELECT name FROM models WHERE registry_id = ? AND state = 'present'", (self.registry_id,))}
            assert present <= set(self.registry.models), "a resumed listing left a model it lacks present"
            assert "deleted" not in kinds and "withdrawn" not in kinds, f"a resumed listing concluded {kinds}"
        elif not self.stale:
            # A complete listing of one registry state and every lookup answered: the ledger is exact.
            self.check_exact()
        self.unfinished = self.stale = False
        return result

    @rule(data=st.data(), where=st.sampled_from(["pages", "records"]), fault=st.sampled_from(FAULTS))
    def scan_with_listing_fault(self, data, where, fault):
        # Mostly the second page, so that a page is committed before the fault and the scan resumes after it.
        page = data.draw(st.one_of(st.just(1), st.integers(min_value=0, max_value=4)), label="failing page")
        self.faulty_scan(fail_page=page, fail_in=where, fault=fault)

    @rule(data=st.data(), fault=st.sampled_from(FAULTS))
    def scan_with_lookup_faults(self, data, fault):
        failing = data.draw(st.one_of(st.just(set(NAMES)), st.sets(st.sampled_from(NAMES), min_size=1)),
                            label="failing lookups")
        self.faulty_scan(failing_lookups=frozenset(failing), fault=fault)

    @rule(allow_empty=st.booleans())
    def scan(self, allow_empty=False):
        """A clean scan. After it resumed a stale listing, the next scan is a fresh one and must be exact."""
        was_stale = self.stale
        result = self.faulty_scan(allow_empty=allow_empty)
        if was_stale and result.status == "complete":
            assert result.resumed
            result = self.faulty_scan(allow_empty=allow_empty)
            assert not result.resumed

    def teardown(self) -> None:
        try:
            # The faults have stopped: at most two clean scans (one may resume a stale listing) bring
            # the ledger to the exact state, every real deletion found once.
            for _ in range(2):
                result, _ = self.run_scan(allow_empty=True)
                assert result.status == "complete", result.error
                if not result.resumed:
                    break
            self.check_exact()
        finally:
            super().teardown()


@pytest.mark.slow
def test_replayed_events_reconstruct_the_registry(tmp_path: Path) -> None:
    ScanMachine.base_dir = tmp_path
    run_state_machine_as_test(ScanMachine, settings=SETTINGS)


@pytest.mark.slow
def test_registry_faults_conclude_nothing_and_clean_scan_recovers(tmp_path: Path) -> None:
    FaultyScanMachine.base_dir = tmp_path
    run_state_machine_as_test(FaultyScanMachine, settings=SETTINGS)


# -- counterexamples the machines found, pinned in minimal form ------------------------------------


def scan_events(ledger: Ledger, registry: MemoryRegistry, **options: bool) -> tuple[ScanResult, list[tuple]]:
    """Run one scan (an interruption is what SIGTERM does: recorded, then raised) and return its new events."""
    before = ledger.conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
    scanner = Scanner(ledger, registry.config(), registry, **options)
    try:
        result = scanner.run()
    except KeyboardInterrupt:
        result = scanner.result(ledger.conn.execute("SELECT MAX(id) FROM scans").fetchone()[0])
    new = [tuple(row) for row in ledger.conn.execute(
        "SELECT e.kind, m.name FROM events e JOIN models m ON m.id = e.model_id WHERE e.id > ? ORDER BY e.id",
        (before,))]
    return result, new


@pytest.mark.parametrize("fault", [KeyboardInterrupt, ConnectionError])
@pytest.mark.parametrize("change", ["rename", "copy"])
def test_a_resumed_resolution_does_not_suspect_models_resolved_before_the_break(tmp_path: Path, fault, change):
    """A scan broken off during its lookups resumes its resolution. The models its first attempt had resolved
    from the deferred names (a rename, or a copy that appeared) were listed: resuming must not suspect them."""
    registry = MemoryRegistry(models={name: make_record(name, f"key-{name}") for name in ("a/x", "a/gone", "a/keep")})
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        scan_events(ledger, registry)
        if change == "rename":
            registry.models["a/y"] = replace(registry.models.pop("a/x"), name="a/y")
        else:
            registry.models["a/y"] = replace(registry.models["a/x"], name="a/y")
        del registry.models["a/gone"]  # so the resolution has a lookup to make
        registry.fail_lookup, registry.fault = (lambda name: True), fault
        broken, _ = scan_events(ledger, registry)
        assert broken.status == ("interrupted" if fault is KeyboardInterrupt else "failed")
        registry.fail_lookup = None
        resumed, new = scan_events(ledger, registry)
        assert resumed.status == "complete" and resumed.resumed
        assert ("suspected_missing", "a/y") not in new, f"the resumed resolution suspected a/y: {new}"
        assert ("restored", "a/y") not in new
        events = [row for row in ledger.conn.execute(
            "SELECT e.kind, m.name FROM events e JOIN models m ON m.id = e.model_id WHERE e.scan_id = ?"
            " ORDER BY e.id", (resumed.scan_id,))]
        expected = {("renamed", "a/y")} if change == "rename" else {("appeared", "a/y")}
        assert sorted(map(tuple, events)) == sorted(expected | {("suspected_missing", "a/gone"),
                                                                ("deleted", "a/gone")})


def test_a_resumed_listing_that_finds_the_registry_empty_concludes_nothing(tmp_path: Path):
    """A scan breaks off after some pages; when it resumes the registry lists nothing (an unmounted folder).
    That empty listing must be refused like a fresh scan's (`--allow-empty`), not read as mass deletion."""
    models = {f"a/m{i}": make_record(f"a/m{i}", f"key{i}") for i in range(6)}
    registry = MemoryRegistry(models=dict(models), page_size=2)
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        scan_events(ledger, registry)
        registry.fail_page = 1  # the first page is committed, the second fails
        broken, _ = scan_events(ledger, registry)
        assert broken.status == "failed" and broken.pages == 1
        registry.fail_page = None
        registry.models.clear()  # the folder is not mounted: the registry lists nothing
        resumed, new = scan_events(ledger, registry)
        assert [kind for kind, _ in new if kind in ("suspected_missing", "deleted")] == [], (
            f"an empty listing concluded that models are missing: {new}")
        assert resumed.status == "failed" and "--allow-empty" in (resumed.error or "")
        registry.models.update(models)  # mounted again
        recovered, new = scan_events(ledger, registry)
        assert recovered.status == "complete" and new == []


@pytest.mark.parametrize("before, after", [
    ({"shutdown_date": "2026-06-30"}, {}),  # the shutdown is called off
    ({"shutdown_date": "2026-06-30", "successor": "org/next"}, {"successor": "org/next"}),
    ({}, {"successor": "org/next"}),  # a successor named without a shutdown date
], ids=["withdrawn", "withdrawn-successor-kept", "successor-only"])
def test_a_withdrawn_deprecation_or_a_bare_successor_is_an_event(tmp_path: Path, before, after):
    """Only usage counters and the key change silently (BOOKKEEPING_FIELDS). A deprecation that is called off,
    or a successor named without a date, is a change the ledger records as a new observation: an event must
    tell it, or replaying the events (and `weightkeeper ledger`) misses it."""
    registry = MemoryRegistry(models={"a/m": replace(make_record("a/m", "key"), **before)})
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        scan_events(ledger, registry)
        registry.models["a/m"] = replace(make_record("a/m", "key"), **after)
        result, new = scan_events(ledger, registry)
        assert result.status == "complete"
        registry_id = ledger.conn.execute("SELECT id FROM registries").fetchone()[0]
        observed = ledger.conn.execute("SELECT COUNT(*) FROM observations WHERE scan_id = ?",
                                       (result.scan_id,)).fetchone()[0]
        assert observed == 1, "the change was recorded as an observation"
        assert new, "... but no event tells it"
        current = registry.models["a/m"]
        assert replay(ledger.conn, registry_id) == {"a/m": (current.visibility.value, current.digest())}
