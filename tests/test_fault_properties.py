"""Random network faults over random registry histories, scanned through real HTTP into a real ledger.

From the issue: "A property test drives random fault sequences over random registry histories and
asserts: zero `deleted` events for models that exist, every real deletion found once the faults
stop, and no duplicated events after a scan is killed and resumed."

`FaultMachine` is a Hypothesis state machine over a fake registry serving real HTTP on 127.0.0.1,
the registry's real adapter, the real `Scanner` and a real SQLite `Ledger`.

- Its rules change the registry: add, remove, rename, copy, update.
- They queue faults on the listing or on the lookups that confirm a deletion: HTTP 500, 502,
  503 and 429 (with a short or an over-long Retry-After), timeouts, reset connections and
  truncated answers.
- They scan under those faults, and kill a scan mid-way and resume it. The kill is a
  `KeyboardInterrupt` from the adapter's wait callback, as SIGTERM raises it while an adapter
  sleeps before a retry.
- They scan once the faults have stopped.

After every scan:

- no `deleted` event names a model the registry still has: by key where keys are stable identities
  (the Hub's `_id`: a name may pass to a new repo), else by name. An Ollama key is a manifest digest, which changes with
  every update: `ollama cp ft:next ft:latest && ollama rm ft:next` leaves `ft:next` deleted by
  name while its digest lives on as `ft:latest`, by the engine's name-first rule;
- no (scan, model, kind) event appears twice;
- the event stream is a legal history (`test_scan_properties.replay`);
- a failed scan concluded nothing about absent models.

After every complete scan, the oracle below says, in the registry's terms, which model each
listed name must be: the same one, one renamed, or a new one. Each model gone from the registry
must be deleted, or still suspected with its failed lookup on record. After a scan without faults,
nothing may be left suspected.

The registry sits behind `FakeRegistry`: `OllamaFake` is the Ollama one, `HubFake` the Hugging Face one.
The Hub's runs its histories for each of the three callers the Hub answers differently: anonymous, a token
of another namespace, and a token of the owners' namespace. Its rules also make models private and public
again. What exists is not always what a caller sees: a model hidden from the caller, or gone while the Hub
tells this caller nothing conclusive, must end `withdrawn`, never `deleted`.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import ClassVar, Protocol

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from fake_hub import USER, FakeHub
from fake_ollama import FakeOllama
from http_fakes import Fault, ServedFake
from registry_fakes import MemoryCache
from test_scan_properties import SETTINGS as SCAN_SETTINGS, replay
from tools.registries.http import RetryPolicy, WaitReporter
from tools.registries.huggingface import HubRegistry
from tools.registries.ollama import OllamaRegistry
from weightkeeper.config import RegistryConfig
from weightkeeper.ledger import Ledger
from weightkeeper.registry import RegistryAdapter
from weightkeeper.scan import Scanner, ScanResult

# At most this many models at once, so a removed model's name is seldom taken again before a scan sees it gone.
MAX_MODELS = 5
# Small timeouts keep a run short; the server hangs longer than the client waits.
TIMEOUT, HANG = 0.2, 0.4
POLICY = RetryPolicy(attempts=3, first_backoff=0.0, max_wait=30.0)

FAULTS: dict[str, Callable[[str], Fault]] = {
    "500": lambda path: Fault.http(500, body=b'{"error":"internal server error"}', path_prefix=path),
    "502": lambda path: Fault.http(502, body=b"<html>502 Bad Gateway</html>", path_prefix=path),
    "503": lambda path: Fault.http(503, {"Retry-After": "0"}, path_prefix=path),
    "429": lambda path: Fault.http(429, {"Retry-After": "0"}, path_prefix=path),
    "429-too-long": lambda path: Fault.http(429, {"Retry-After": "3600"}, path_prefix=path),  # fails at once
    "timeout": lambda path: Fault.timeout(path_prefix=path),
    "reset": lambda path: Fault.reset(path_prefix=path),
    "truncated": lambda path: Fault.truncated(path_prefix=path),
}
# Faults after which the adapter waits and retries: the kill rule counts on one wait per fault.
RETRIED = ("503", "reset")

# Unshrunk like the scan engine's machines (each step is real HTTP), with shorter runs; the profile sets how many.
SETTINGS = settings(SCAN_SETTINGS, stateful_step_count=18)
# Three callers: half the histories each, as many in all as Ollama's and more.
HUB_SETTINGS = settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 2))


class FakeRegistry(Protocol):
    """A fake HTTP registry and its real adapter, as the fault machine drives them."""

    config: RegistryConfig
    names: tuple[str, ...]  # the model names the machine draws from
    fault_paths: Mapping[str, str]  # "listing" and "lookup": the path prefix of their requests
    stable_keys: bool  # a key names one model for good (the Hub's _id), not its content of the moment
    hides: bool  # whether models can be made private (and `set_private` does something)

    @property
    def faults(self) -> list[Fault]: ...  # the server's fault queue

    def reset(self) -> None: ...  # no models, no faults: a fresh registry for the next example

    def present(self) -> dict[str, str]: ...  # each model's name → the key its adapter records

    def visible(self) -> dict[str, str]: ...  # the models of `present` this caller's listing shows

    def unseen_state(self, name: str, key: str) -> str: ...  # what the ledger must conclude of a model not visible

    def set_private(self, name: str, private: bool) -> None: ...

    def add(self, name: str) -> None: ...

    def remove(self, name: str) -> None: ...

    def rename(self, old: str, new: str) -> None: ...

    def copy(self, source: str, destination: str) -> None: ...  # where copies share a key; else a new model

    def update(self, name: str) -> None: ...

    def adapter(self, on_wait: WaitReporter) -> AbstractContextManager[RegistryAdapter]: ...


class OllamaFake(ServedFake):
    """Ollama: keys are manifest digests, a rename is `ollama cp` then `ollama rm`, an update a new build."""

    names = ("llama3.1:8b", "llama3.1:8b-instruct-q4_K_M", "llama3.2:3b", "qwen2.5:0.5b", "gemma3:4b",
             "myorg/finetune:latest", "myorg/finetune:v2", "myorg/lora-sql:latest", "acme/chat:latest",
             "acme/chat:q8_0")
    fault_paths = {"listing": "/api/tags", "lookup": "/api/show"}
    stable_keys = False  # a manifest digest: content, which an update replaces
    hides = False

    def __init__(self) -> None:
        self.server = FakeOllama()
        self.server.server.hang_seconds = HANG
        self.config = RegistryConfig("ollama", "ollama", {"url": self.server.url})
        self.cache = MemoryCache()

    @property
    def faults(self) -> list[Fault]:
        return self.server.faults

    def reset(self) -> None:
        self.server.reset()
        self.cache = MemoryCache()  # kept across one example's scans, as the ledger's adapter cache is

    def present(self) -> dict[str, str]:
        return {name: tag.digest for name, tag in self.server.tags.items()}

    def visible(self) -> dict[str, str]:
        return self.present()

    def unseen_state(self, name: str, key: str) -> str:
        return "deleted"  # Ollama's 404 is an answer for every caller

    def set_private(self, name: str, private: bool) -> None:
        raise AssertionError("Ollama has no private models")

    def add(self, name: str) -> None:
        # Fine-tunes name their base; the rest have no parent, which the adapter confirms through /api/show.
        self.server.pull(name, parent_model=self.names[0] if name.startswith("myorg/") else "")

    def remove(self, name: str) -> None:
        self.server.remove(name)

    def rename(self, old: str, new: str) -> None:
        self.server.rename(old, new)

    def copy(self, source: str, destination: str) -> None:
        self.server.copy(source, destination)  # `ollama pull llama3` leaves llama3:latest and llama3:8b like this

    def update(self, name: str) -> None:
        self.server.retag(name)

    def adapter(self, on_wait: WaitReporter) -> AbstractContextManager[RegistryAdapter]:
        return closing(OllamaRegistry(self.server.url, on_wait=on_wait, timeout=TIMEOUT, policy=POLICY,
                                      cache=self.cache))


class HubFake(ServedFake):
    """The Hub as one of three callers sees it. `_id` keys are stable; a rename redirects; a copy is a new repo.
    The member's token reads acme's private repos (and, as every token is alice's, alice's); the outsider's
    reads another org's and alice's; zeta's repos are read by neither."""

    names = ("acme/alpha", "acme/beta", "acme/gamma", "acme/delta", "acme/epsilon", "alice/lora", "alice/chat",
             "zeta/tiny", "zeta/mid", "zeta/big")
    fault_paths = {"listing": "/api/models", "lookup": "/api/models/"}  # the listing's prefix meets lookups too
    stable_keys = True
    hides = True
    TOKENS = {"member": ("hf_wkMemberToken0123456789", frozenset({"acme"})),
              "outsider": ("hf_wkOutsiderToken012345678", frozenset({"other-lab"}))}

    def __init__(self, caller: str) -> None:
        self.token, orgs = self.TOKENS.get(caller, (None, None))
        self.reads = frozenset() if orgs is None else orgs | {USER}
        self.server = FakeHub(page_size=2, tokens={token: set(orgs) for token, orgs in self.TOKENS.values()})
        self.server.server.hang_seconds = HANG
        self.config = RegistryConfig(f"hub-{caller}", "hf", {"endpoint": self.server.url})
        self.cache = MemoryCache()

    @property
    def faults(self) -> list[Fault]:
        return self.server.server.faults

    def reset(self) -> None:
        self.server.repos.clear()
        self.server.redirects.clear()
        self.faults.clear()
        self.cache = MemoryCache()

    def present(self) -> dict[str, str]:
        return {name: repo.key for name, repo in self.server.repos.items()}

    def visible(self) -> dict[str, str]:
        return {name: repo.key for name, repo in self.server.repos.items()
                if not repo.private or name.split("/")[0] in self.reads}

    def unseen_state(self, name: str, key: str) -> str:
        # Only a 404 to a token that reads the owner's namespace says gone; a repo hidden from this caller exists,
        # under this name or another it was renamed to (perhaps where the token does not read).
        exists = any(repo.key == key for repo in self.server.repos.values())
        return "deleted" if not exists and name.split("/")[0] in self.reads else "withdrawn"

    def set_private(self, name: str, private: bool) -> None:
        self.server.update(name, private=private)

    def add(self, name: str) -> None:
        self.server.add(name)

    def remove(self, name: str) -> None:
        self.server.delete(name)

    def rename(self, old: str, new: str) -> None:
        self.server.rename(old, new)

    def copy(self, source: str, destination: str) -> None:
        self.server.add(destination, files=dict(self.server.repos[source].files))  # a duplicate: its own _id

    def update(self, name: str) -> None:
        self.server.commit(name)  # a push: a new sha

    def adapter(self, on_wait: WaitReporter) -> AbstractContextManager[RegistryAdapter]:
        return closing(HubRegistry(self.server.url, author=None, search=None, filter=None, files=None,
                                   token=self.token, cache=self.cache, on_wait=on_wait, policy=POLICY,
                                   timeout=TIMEOUT))


# -- the oracle -----------------------------------------------------------------------------------


def judge_identities(before: Iterable[sqlite3.Row], present: Mapping[str, str], now: Mapping[str, int],
                     stable_keys: bool) -> tuple[list[str], dict[str, int]]:
    """Whether each listed name is the ledger model it must be after a complete scan.

    `before` is the ledger's models before the scan, `present` the registry's {name: key}, and `now`
    the ledger's {name: model id} after it (the present model of each name). In the registry's words: a
    model is its name, or where keys are stable its name and key, and the ledger keeps a model it knows,
    whatever state it was in. The new names of one key are, as far as they go, that key's models that are
    not deleted and are not themselves listed: each one renamed, no model twice. Which of them takes
    which is the engine's choice among equals. Any further new name is a new model. Returns what is
    wrong, and {name: model id} of the renames.
    """
    def identity(name: str, key: str) -> tuple[str, str | None]:
        return name, key if stable_keys else None

    rows = list(before)
    known = {identity(row["name"], row["key"]): row["id"] for row in rows}
    listed = {identity(name, key) for name, key in present.items()}
    vanished: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        if row["state"] != "deleted" and identity(row["name"], row["key"]) not in listed:
            vanished[row["key"]].add(row["id"])
    new_names: dict[str, list[str]] = defaultdict(list)
    wrong: list[str] = []
    for name, key in present.items():
        model = known.get(identity(name, key))
        if model is None:
            new_names[key].append(name)
        elif now[name] != model:
            wrong.append(f"{name} was model {model}, the ledger now says {now[name]}")
    renames: dict[str, int] = {}
    for key, names in new_names.items():
        taken = {name: now[name] for name in names if now[name] in vanished[key]}
        if len(set(taken.values())) != len(taken) or len(taken) != min(len(names), len(vanished[key])):
            wrong.append(f"{sorted(names)} should be renames of {sorted(vanished[key])}, the ledger says {taken}")
        wrong += [f"{name} is a new model, the ledger took it for model {now[name]}"
                  for name in names if name not in taken and now[name] in known.values()]
        renames |= taken
    return wrong, renames


# -- the machine ----------------------------------------------------------------------------------


class FaultMachine(RuleBasedStateMachine):
    """Registry changes, faults and scans in random order; the ledger never says more than the registry did."""

    registry: ClassVar[FakeRegistry]  # one running fake for every example, reset by each
    base_dir: ClassVar[Path]

    def __init__(self) -> None:
        super().__init__()
        self.registry.reset()
        self.dir = Path(tempfile.mkdtemp(dir=self.base_dir))
        self.ledger = Ledger(self.dir / "ledger.sqlite3")
        self.conn = self.ledger.conn
        config = self.registry.config
        self.registry_id = self.ledger.registry_id(config.name, config.kind, config.location)
        self.kill_at: int | None = None  # the adapter's wait at which SIGTERM arrives
        self.waits = 0

    def teardown(self) -> None:
        try:
            self.clean_scan()  # the faults have stopped: every real deletion is found
        finally:
            self.ledger.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @initialize(data=st.data())
    def populate(self, data: st.DataObject) -> None:
        names = data.draw(st.lists(st.sampled_from(self.registry.names), min_size=2, max_size=4, unique=True),
                          label="models")
        for name in names:
            self.registry.add(name)
        self.clean_scan()

    # -- the registry changes

    def listed(self) -> list[str]:
        return sorted(self.registry.present())

    def free(self) -> list[str]:
        return [name for name in self.registry.names if name not in self.registry.present()]

    @precondition(lambda self: len(self.registry.present()) < MAX_MODELS)
    @rule(data=st.data())
    def add(self, data: st.DataObject) -> None:
        self.registry.add(data.draw(st.sampled_from(self.free()), label="add"))

    # Never the last model: an empty listing is refused as an outage, which test_scan_properties covers.
    @precondition(lambda self: len(self.registry.present()) >= 2)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        self.registry.remove(data.draw(st.sampled_from(self.listed()), label="remove"))

    @precondition(lambda self: self.registry.present() and self.free())
    @rule(data=st.data())
    def rename(self, data: st.DataObject) -> None:
        self.registry.rename(data.draw(st.sampled_from(self.listed()), label="rename"),
                             data.draw(st.sampled_from(self.free()), label="to"))

    @precondition(lambda self: self.registry.present() and len(self.registry.present()) < MAX_MODELS)
    @rule(data=st.data())
    def copy(self, data: st.DataObject) -> None:
        self.registry.copy(data.draw(st.sampled_from(self.listed()), label="copy"),
                           data.draw(st.sampled_from(self.free()), label="as"))

    @precondition(lambda self: self.registry.present())
    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        self.registry.update(data.draw(st.sampled_from(self.listed()), label="update"))

    @precondition(lambda self: self.registry.hides and self.registry.present())
    @rule(data=st.data(), private=st.booleans())
    def set_private(self, data: st.DataObject, private: bool) -> None:
        self.registry.set_private(data.draw(st.sampled_from(self.listed()), label="private" if private else "public"),
                                  private)

    # -- faults and scans

    @rule(where=st.sampled_from(["listing", "lookup"]),
          kinds=st.lists(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=2), outage=st.booleans())
    def queue_faults(self, where: str, kinds: list[str], outage: bool) -> None:
        """Faults for the next requests of one kind; in an outage each lasts as many tries as the adapter makes.
        Those a scan leaves over hit the scans after it."""
        tries = POLICY.attempts if outage else 1
        self.registry.faults.extend(FAULTS[kind](self.registry.fault_paths[where]) for kind in kinds
                                    for _ in range(tries))

    @rule(data=st.data(), where=st.sampled_from(["listing", "lookup"]),
          kinds=st.lists(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=2), outage=st.booleans(),
          removing=st.booleans())
    def scan_under_faults(self, data: st.DataObject, where: str, kinds: list[str], outage: bool,
                          removing: bool) -> None:
        """A scan meeting the faults queued so far and these; perhaps a model removed just before, so that
        a lookup meets them."""
        if removing and len(self.registry.present()) >= 2:
            self.remove(data)
        self.queue_faults(where, kinds, outage)
        before = self.models()
        result = self.run_scan()
        event(f"scan under faults: {result.status}{', lookups failed' if result.problems else ''}")
        if result.ok:
            self.check_complete(before, [result.scan_id])

    @rule(data=st.data(), where=st.sampled_from(["listing", "lookup"]), at=st.integers(min_value=1, max_value=2))
    def killed_and_resumed_scan(self, data: st.DataObject, where: str, at: int) -> None:
        """SIGTERM while the adapter waits to retry its `at`-th fault; the next scan resumes, faults over."""
        if where == "lookup" and len(self.registry.present()) >= 2:  # a deletion to confirm, so a lookup to kill
            self.remove(data)
        before = self.models()
        self.registry.faults.clear()
        # Fewer faults than attempts: without the kill, the request would succeed.
        self.registry.faults.extend(FAULTS[RETRIED[i % len(RETRIED)]](self.registry.fault_paths[where])
                                    for i in range(at))
        killed = self.run_scan(kill_at=at)
        phase = self.conn.execute("SELECT phase FROM scans WHERE id = ?", (killed.scan_id,)).fetchone()[0]
        event(f"killed scan: {killed.status} while {phase}")
        self.registry.faults.clear()
        resumed = self.run_scan()
        assert resumed.ok, resumed.error
        if killed.status == "interrupted":
            assert resumed.resumed and resumed.scan_id == killed.scan_id, "the killed scan was not resumed"
        else:
            assert killed.ok, killed.error  # no wait came (nothing to look up): it ran to the end
        self.check_complete(before, [killed.scan_id, resumed.scan_id])

    @rule()
    def clean_scan(self) -> None:
        """No faults: the ledger tells the registry exactly, every removed model deleted."""
        self.registry.faults.clear()
        before = self.models()
        result = self.run_scan()
        assert result.ok, result.error
        self.check_complete(before, [result.scan_id])
        visible = self.registry.visible()
        # Where keys are stable, a model is not the one visible under its name if their keys differ.
        unseen = [row for row in self.models() if row["name"] not in visible
                  or self.registry.stable_keys and visible[row["name"]] != row["key"]]
        assert [(row["name"], row["state"]) for row in unseen] == [
            (row["name"], self.registry.unseen_state(row["name"], row["key"])) for row in unseen
        ], "a model gone from this caller's view is not what the registry's answers let it conclude"
        assert set(replay(self.conn, self.registry_id)) == set(visible)

    # -- scanning and checking

    def models(self) -> list[sqlite3.Row]:
        """The ledger's models, those of each name that are not present first (a name is the present one's)."""
        return self.conn.execute("SELECT id, name, key, state FROM models WHERE registry_id = ?"
                                 " ORDER BY state = 'present', id", (self.registry_id,)).fetchall()

    def on_wait(self, seconds: float, why: str) -> None:
        self.waits += 1
        if self.kill_at is not None and self.waits >= self.kill_at:
            self.kill_at = None
            raise KeyboardInterrupt(f"SIGTERM while waiting {seconds:.1f} s after: {why}")

    def run_scan(self, *, kill_at: int | None = None) -> ScanResult:
        """One scan (a kill is recorded as an interrupted scan, as `weightkeeper scan` records it), then the
        checks that hold whatever happened."""
        last_event = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        self.waits, self.kill_at = 0, kill_at
        with self.registry.adapter(self.on_wait) as adapter:
            # A caller may come to see nothing (its last model renamed where it cannot read): not an outage then.
            scanner = Scanner(self.ledger, self.registry.config, adapter, allow_empty=not self.registry.visible())
            try:
                result = scanner.run()
            except KeyboardInterrupt:
                scan_id = self.conn.execute("SELECT MAX(id) FROM scans WHERE registry_id = ?",
                                            (self.registry_id,)).fetchone()[0]
                result = scanner.result(scan_id)
                assert result.status == "interrupted", result.status
            finally:
                self.kill_at = None
        self.check_always(last_event, result)
        return result

    def check_always(self, last_event: int, result: ScanResult) -> None:
        present = self.registry.present()
        new = self.conn.execute(
            "SELECT e.kind, o.name AS observed, m.key FROM events e JOIN models m ON m.id = e.model_id"
            " LEFT JOIN observations o ON o.id = e.observation_id WHERE e.id > ? ORDER BY e.id", (last_event,)
        ).fetchall()
        deleted = [(row["observed"], row["key"]) for row in new if row["kind"] == "deleted"]
        # Where keys are stable, the key is the model: a deleted repo's name may name a new one now.
        wrongly = [(name, key) for name, key in deleted
                   if (key in present.values() if self.registry.stable_keys else name in present)]
        assert not wrongly, f"deleted, yet in the registry: {wrongly}"
        duplicated = self.conn.execute(
            "SELECT scan_id, model_id, kind, COUNT(*) FROM events GROUP BY scan_id, model_id, kind HAVING COUNT(*) > 1"
        ).fetchall()
        assert not duplicated, f"(scan, model, kind) events recorded twice: {[tuple(row) for row in duplicated]}"
        replay(self.conn, self.registry_id)  # a legal history: deleted only after suspected, and so on
        phase = self.conn.execute("SELECT phase FROM scans WHERE id = ?", (result.scan_id,)).fetchone()[0]
        if result.status == "failed" or phase == "listing":
            concluded = [row["kind"] for row in new if row["kind"] in ("suspected_missing", "withdrawn", "deleted")]
            assert not concluded, f"an unfinished listing concluded {concluded}: {result.error}"

    def check_complete(self, before: list[sqlite3.Row], scan_ids: list[int]) -> None:
        """After a complete scan of the registry as it is: each listed model is the one the oracle names, with
        the registry's key; each model gone from the caller's view is what the registry's answers let it conclude
        (deleted or withdrawn), or suspected, or still withdrawn, with a failed lookup."""
        present = self.registry.visible()
        rows = {row["name"]: row for row in self.models()}
        listed = {name: (row["state"], row["key"]) for name, row in rows.items() if name in present}
        assert listed == {name: ("present", key) for name, key in present.items()}
        wrong, renames = judge_identities(before, present, {name: row["id"] for name, row in rows.items()},
                                          self.registry.stable_keys)
        assert not wrong, "; ".join(wrong)
        marks = ", ".join("?" * len(scan_ids))
        for name, model_id in renames.items():
            renamed = self.conn.execute(
                f"SELECT 1 FROM events WHERE kind = 'renamed' AND model_id = ? AND scan_id IN ({marks})"
                " AND json_extract(detail, '$.to') = ?", (model_id, *scan_ids, name)).fetchone()
            assert renamed, f"model {model_id} renamed to {name} without a `renamed` event"
        failed_lookups = {row[0] for row in self.conn.execute(
            f"SELECT model_name FROM problems WHERE scan_id IN ({marks}) AND message LIKE 'lookup failed%'",
            scan_ids)}
        for name, row in rows.items():
            if name not in present:
                assert row["state"] == self.registry.unseen_state(name, row["key"]) or (
                    row["state"] in ("suspected_missing", "withdrawn") and name in failed_lookups), (
                    f"{name} is gone from the caller's view but {row['state']} in the ledger")


@contextmanager
def replaying(caller: str, tmp_path: Path, *names: str) -> Iterator[tuple[HubFake, FaultMachine]]:
    """The fault machine on the Hub as `caller` sees it, with `names` added, to replay an example it found step by
    step (a state machine takes no @example); its teardown, a clean scan and its checks, ends it."""
    with HubFake(caller) as registry:
        FaultMachine.registry, FaultMachine.base_dir = registry, tmp_path
        machine = FaultMachine()
        for name in names:
            registry.add(name)
        yield registry, machine
        machine.teardown()


@pytest.mark.parametrize("caller", ["anonymous", "outsider", "member"])
def test_a_repo_renamed_onto_the_name_of_a_deleted_one_is_renamed(tmp_path: Path, caller: str) -> None:
    """An example the machine found (thorough profile, 25 steps; a state machine takes no @example, so it is
    replayed here): acme/alpha renamed to acme/beta after acme/beta was deleted. The engine matched the name
    first, took the listed repo for the deleted one, and left acme/alpha suspected for good, its lookup
    answering as a model the ledger held."""
    with replaying(caller, tmp_path, "acme/alpha", "acme/beta", "acme/epsilon") as (registry, machine):
        machine.clean_scan()
        registry.remove("acme/beta")
        machine.clean_scan()
        registry.rename("acme/alpha", "acme/beta")
        machine.clean_scan()
        assert machine.conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'renamed'").fetchone()[0] == 1


def test_a_private_repo_renamed_where_the_token_cannot_read_is_withdrawn_never_deleted(tmp_path: Path) -> None:
    """An example the machine found: a private acme repo renamed into zeta, whose private repos the member's token
    does not read. The old name redirects there and the Hub answers 404, which said "deleted" because the token
    reads acme's repos; it is zeta's that count."""
    with replaying("member", tmp_path, "acme/delta", "acme/beta") as (registry, machine):
        registry.set_private("acme/beta", True)
        machine.clean_scan()
        registry.rename("acme/beta", "acme/epsilon")
        registry.rename("acme/epsilon", "zeta/tiny")
        machine.clean_scan()
        state, = machine.conn.execute("SELECT state FROM models WHERE name = 'acme/beta'").fetchone()
        assert state == "withdrawn"


@pytest.mark.parametrize("caller", ["anonymous", "outsider", "member"])
def test_a_repo_deleted_and_created_again_under_its_name_is_two_models(tmp_path: Path, caller: str) -> None:
    with replaying(caller, tmp_path, "acme/alpha", "acme/beta") as (registry, machine):
        machine.clean_scan()
        registry.remove("acme/beta")
        registry.add("acme/beta")
        machine.clean_scan()
        rows = machine.conn.execute("SELECT state FROM models WHERE name = 'acme/beta' ORDER BY id").fetchall()
        assert [row[0] for row in rows] == [registry.unseen_state("acme/beta", "a key no repo has"), "present"]


def test_a_repo_created_again_under_its_name_while_lookups_fail_leaves_the_old_one_suspected(tmp_path: Path) -> None:
    """An example the machine found (outsider, thorough profile): the old repo's lookup fails, so it stays suspected
    beside the new repo of its name, which has appeared; once lookups answer, the old one is concluded."""
    with replaying("outsider", tmp_path, "acme/alpha", "zeta/tiny") as (registry, machine):
        machine.clean_scan()
        registry.remove("zeta/tiny")
        registry.add("zeta/tiny")
        registry.faults.extend(FAULTS["500"](registry.fault_paths["lookup"]) for _ in range(POLICY.attempts))
        before = machine.models()
        result = machine.run_scan()
        machine.check_complete(before, [result.scan_id])
        states = machine.conn.execute("SELECT state FROM models WHERE name = 'zeta/tiny' ORDER BY id").fetchall()
        assert [row[0] for row in states] == ["suspected_missing", "present"]


@pytest.mark.slow
def test_faults_never_delete_what_exists_and_every_deletion_is_found_once_they_stop(tmp_path: Path) -> None:
    with OllamaFake() as registry:
        FaultMachine.registry, FaultMachine.base_dir = registry, tmp_path
        run_state_machine_as_test(FaultMachine, settings=SETTINGS)


@pytest.mark.slow
@pytest.mark.parametrize("caller", ["anonymous", "outsider", "member"])
def test_no_caller_of_the_hub_records_a_deletion_of_a_model_that_exists(tmp_path: Path, caller: str) -> None:
    with HubFake(caller) as registry:
        FaultMachine.registry, FaultMachine.base_dir = registry, tmp_path
        run_state_machine_as_test(FaultMachine, settings=HUB_SETTINGS)
