"""Crash tests: real `weightkeeper scan` processes over a real local folder registry, killed with SIGKILL.

A scan commits page by page, so a scan killed at any moment and run again must leave the
ledger as if it had never been killed: every model appeared once, every change recorded
once, nothing lost, nothing repeated, every scan finally complete, the database intact.
Kills land at random moments (a seeded delay) and at chosen ones (after some pages were
committed, or once the listing is complete), read from the ledger while the scan runs.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import psycopg

from weightkeeper import config
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.database import Connection, placeholders

# On each backend: the scans' ledger is the home's SQLite file, or the test's PostgreSQL database.
pytestmark = [pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL"),
              pytest.mark.usefixtures("on_each_store")]

REPO = Path(__file__).resolve().parents[1]
ORGS = 6
MODELS = 300  # the local registry pages 50 folders at a time: 6 pages, each committed alone (see make_home)
WEIGHT_BYTES = 64 * 1024
KILLS = 5  # killed runs before each run to completion
TIMEOUT = 60.0
SHUTDOWN = "2027-06-30"  # announced in the cards of some models before the first scan


# -- the registry --------------------------------------------------------------------------------


def write_model(root: Path, name: str, rng: random.Random, *, visibility: str | None = None,
                shutdown_date: str | None = None) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "name": name}), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(rng.randbytes(WEIGHT_BYTES))
    write_card(folder, visibility=visibility, shutdown_date=shutdown_date)


def write_card(folder: Path, *, visibility: str | None = None, shutdown_date: str | None = None) -> None:
    front = "license: apache-2.0\nbase_model: meta-llama/Llama-3.1-8B\ndatasets:\n- tatsu-lab/alpaca\n"
    if visibility:
        front += f"visibility: {visibility}\n"
    if shutdown_date:
        front += f"shutdown_date: '{shutdown_date}'\n"
    (folder / "README.md").write_text(f"---\n{front}---\n# {folder.name}\n\nA fine-tuned model.\n", encoding="utf-8")


def model_names(root: Path) -> set[str]:
    return {f"{org.name}/{model.name}" for org in root.iterdir() for model in org.iterdir()}


def make_home(tmp_path: Path, root: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "weightkeeper.toml").write_text(
        # Committing every page lets kills land between pages.
        f'[ledger]\npath = "ledger.sqlite3"\n\n[scan]\ncommit_records = 1\n\n[registries.local]\nkind = "local"\npath = {json.dumps(str(root))}\n',
        encoding="utf-8",
    )
    return home


# -- running and killing scans -------------------------------------------------------------------


def scan_command(home: Path) -> list[str]:
    return [sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), "scan"]


def read(ledger: Path, sql: str, params: tuple = ()) -> tuple | None:
    """One row from the ledger (the file `ledger`, or the PostgreSQL database of $WEIGHTKEEPER_DATABASE_URL)
    while a scan may be writing it; None when it cannot be read yet."""
    if url := os.environ.get("WEIGHTKEEPER_DATABASE_URL"):
        import psycopg

        try:
            return _reader(url).execute(placeholders(sql) if params else sql, params or None).fetchone()
        except psycopg.Error:
            return None
    if not ledger.exists():
        return None
    try:
        with closing(sqlite3.connect(f"file:{ledger}?mode=rw", uri=True, timeout=0.2)) as conn:
            return conn.execute(sql, params).fetchone()
    except sqlite3.Error:
        return None


@functools.cache
def _reader(url: str) -> psycopg.Connection:
    """One connection per database for the polls (a connection is a server process: one per poll would be
    hundreds a second)."""
    import psycopg

    return psycopg.connect(url, autocommit=True)


def scan_to_completion(home: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(scan_command(home), cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"scan failed:\n{done.stdout}\n{done.stderr}"
    return done


def killed_scan(home: Path, rng: random.Random, how: str) -> str:
    """Start a scan and SIGKILL it: after a random delay (`delay`), once it committed a random number of pages
    more (`pages`), or once its listing is complete (`resolving`). Return where it was when it died."""
    ledger = home / "ledger.sqlite3"
    unfinished = read(ledger, "SELECT id, pages FROM scans WHERE phase != 'done' ORDER BY id DESC LIMIT 1")
    last = read(ledger, "SELECT COALESCE(MAX(id), 0) FROM scans")
    scan_id, pages_before = unfinished if unfinished else (None, 0)
    newest = last[0] if last else 0
    wanted_pages = rng.randint(1, 3)
    delay = rng.uniform(0.0, 0.8)
    jitter = rng.uniform(0.0, 0.02)
    process = subprocess.Popen(scan_command(home), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = time.monotonic()
        while process.poll() is None and time.monotonic() - started < TIMEOUT:
            if how == "delay":
                if time.monotonic() - started >= delay:
                    break
            else:
                row = read(ledger, "SELECT phase, pages FROM scans WHERE id = ?", (scan_id,)) if scan_id else read(
                    ledger, "SELECT phase, pages FROM scans WHERE id > ? ORDER BY id DESC LIMIT 1", (newest,))
                if row and (row[0] != "listing" or how == "pages" and row[1] >= pages_before + wanted_pages):
                    time.sleep(jitter if how == "pages" else 0)
                    break
            time.sleep(0.001)
    finally:
        process.send_signal(signal.SIGKILL)  # a no-op when it has already exited
        process.wait(timeout=TIMEOUT)
    if process.returncode != -signal.SIGKILL:
        return "finished"
    row = read(ledger, "SELECT status, phase FROM scans ORDER BY id DESC LIMIT 1")
    if row is None or row[0] != "running":
        return "before the scan"
    return row[1]  # listing or resolving


def kill_and_finish(home: Path, rng: random.Random) -> Counter:
    """Several killed scans (each resuming the last), then one run to completion; where the kills landed.

    The first kill comes between pages, the last once the listing is complete (a resumed resolution
    is killed at once again), the others at random. A listing resumed after a kill only suspects what it
    lacks (a folder renamed behind its cursor would look deleted): then one more scan, from the start,
    concludes."""
    middle = [rng.choice(["delay", "pages"]) for _ in range(KILLS - 2)]
    landed = Counter(killed_scan(home, rng, how) for how in ["pages", *middle, "resolving"])
    scan_to_completion(home)
    (resumed,) = read(home / "ledger.sqlite3", "SELECT listing_resumed FROM scans ORDER BY id DESC LIMIT 1")
    if resumed:
        scan_to_completion(home)
        assert read(home / "ledger.sqlite3", "SELECT listing_resumed FROM scans ORDER BY id DESC LIMIT 1") == (0,)
    return landed


# -- reading the ledger ----------------------------------------------------------------------------


@contextmanager
def connect(home: Path) -> Iterator[Connection]:
    with Ledger(config.load(home).store) as ledger:
        yield ledger.conn


def check_sound(conn: Connection) -> None:
    """Whatever happened: the database is intact, every scan finished, no scan repeated anything."""
    if conn.dialect == "sqlite":  # PostgreSQL checks its pages and references itself
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    unfinished = conn.execute("SELECT id, status, phase FROM scans WHERE status != 'complete' OR phase != 'done'")
    assert [tuple(row) for row in unfinished] == []
    repeated = conn.execute(
        "SELECT scan_id, model_id, kind, COUNT(*) FROM events GROUP BY scan_id, model_id, kind HAVING COUNT(*) > 1"
    ).fetchall()
    assert [tuple(row) for row in repeated] == [], "a scan recorded the same event twice"
    observed_twice = conn.execute(
        "SELECT scan_id, model_id, COUNT(*) FROM observations GROUP BY scan_id, model_id HAVING COUNT(*) > 1"
    ).fetchall()
    assert [tuple(row) for row in observed_twice] == [], "a scan observed the same model twice"


def events_by_model(conn: Connection, after: int) -> dict[str, list[str]]:
    """Event kinds after event id `after`, by the model's current name."""
    found: dict[str, list[str]] = defaultdict(list)
    for name, kind in conn.execute(
        "SELECT m.name, e.kind FROM events e JOIN models m ON m.id = e.model_id WHERE e.id > ? ORDER BY e.id",
        (after,),
    ):
        found[name].append(kind)
    return found


# -- the tests ---------------------------------------------------------------------------------------


@pytest.mark.slow
# Two histories on SQLite, one on PostgreSQL (whose polls and processes cost more): each backend's kills land
# mid-listing and once the listing is complete.
@pytest.mark.parametrize(("store", "seed"), [("sqlite", 1), ("sqlite", 2), ("postgres", 1)], indirect=["store"])
def test_killed_scans_record_every_model_and_change_exactly_once(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / "registry"
    names = sorted(f"org-{i % ORGS}/model-{i:03d}" for i in range(MODELS))
    deprecated = set(names[::10])
    for name in names:
        write_model(root, name, rng, shutdown_date=SHUTDOWN if name in deprecated else None)
    home = make_home(tmp_path, root)

    # First scans: every model appears exactly once, and each announced shutdown is recorded once,
    # however often the scan was killed.
    landed = kill_and_finish(home, rng)
    assert landed["listing"] >= 1, f"no kill landed mid-listing: {dict(landed)}"
    with connect(home) as conn:
        check_sound(conn)
        kinds = events_by_model(conn, 0)
        assert set(kinds) == set(names), "models lost or invented"
        assert {name: k for name, k in kinds.items() if k != ["appeared"]} == dict.fromkeys(
            deprecated, ["appeared", "deprecation_announced"])
        states = dict(conn.execute("SELECT name, state FROM models").fetchall())
        assert states == dict.fromkeys(names, "present")
        assert conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == MODELS
        after = conn.execute("SELECT MAX(id) FROM events").fetchone()[0]

    # A day of changes, then killed scans again.
    chosen = rng.sample(names, 40)
    deleted, changed, hidden = set(chosen[:15]), set(chosen[15:23]), set(chosen[23:25])
    old_name = chosen[25]
    new_name = f"org-{(int(old_name[4]) + 3) % ORGS}/renamed-model"  # lands on another page
    added = {f"org-{i % ORGS}/new-model-{i}" for i in range(5)}
    for name in deleted:
        shutil.rmtree(root / name)
    for name in changed:
        config = root / name / "config.json"
        config.write_text(config.read_text(encoding="utf-8")[:-1] + ', "torch_dtype": "bfloat16"}', encoding="utf-8")
    for name in hidden:
        write_card(root / name, visibility="private", shutdown_date=SHUTDOWN if name in deprecated else None)
    os.rename(root / old_name, root / new_name)
    for name in added:
        write_model(root, name, rng)
    untouched = set(names) - deleted - changed - hidden - {old_name}
    assert model_names(root) == untouched | changed | hidden | added | {new_name}

    landed_again = kill_and_finish(home, rng)
    with connect(home) as conn:
        check_sound(conn)
        kinds = events_by_model(conn, after)
        expected = {
            **{name: ["suspected_missing", "deleted"] for name in deleted},
            **{name: ["updated"] for name in changed},
            **{name: ["visibility_changed"] for name in hidden},
            **{name: ["appeared"] for name in added},
            new_name: ["renamed"],
        }
        assert dict(kinds) == expected, f"kills landed: {dict(landed_again)}"
        renamed = conn.execute("SELECT e.detail FROM events e WHERE e.kind = 'renamed'").fetchone()
        assert json.loads(renamed["detail"]) == {"from": old_name, "to": new_name}
        states = dict(conn.execute("SELECT name, state FROM models").fetchall())
        assert states == {**dict.fromkeys(untouched | changed | hidden | added | {new_name}, "present"),
                          **dict.fromkeys(deleted, "deleted")}
        private = {row[0] for row in conn.execute("SELECT name FROM models WHERE visibility = 'private'")}
        assert private == hidden


def test_a_killed_scan_resumed_while_the_registry_is_unmounted_deletes_nothing(tmp_path: Path) -> None:
    """A scan is killed after some pages (a reboot); when it resumes, the registry folder is an empty mount
    point. Like a fresh scan's empty listing, that must be refused, not read as mass deletion."""
    rng = random.Random(11)
    root = tmp_path / "registry"
    names = sorted(f"org-{i % 3}/model-{i:03d}" for i in range(150))
    for name in names:
        write_model(root, name, rng)
    home = make_home(tmp_path, root)
    scan_to_completion(home)
    ledger = home / "ledger.sqlite3"

    # A rescan killed after its first page and before its last.
    for _ in range(10):
        process = subprocess.Popen(scan_command(home), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        try:
            while process.poll() is None and time.monotonic() - started < TIMEOUT:
                row = read(ledger, "SELECT phase, pages FROM scans WHERE id > 1 ORDER BY id DESC LIMIT 1")
                if row and row[0] == "listing" and row[1] >= 1:
                    break
                time.sleep(0.001)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=TIMEOUT)
        row = read(ledger, "SELECT status, phase, pages FROM scans ORDER BY id DESC LIMIT 1")
        if row and row[0] == "running" and row[1] == "listing" and 1 <= row[2] < 3:
            break
    else:
        pytest.fail("could not kill a scan between its pages")

    unmounted = tmp_path / "unmounted"
    os.rename(root, unmounted)
    root.mkdir()  # the empty mount point
    events_before = read(ledger, "SELECT COUNT(*) FROM events")[0]
    resumed = subprocess.run(scan_command(home), cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    with connect(home) as conn:
        concluded = [tuple(row) for row in conn.execute(
            "SELECT e.kind, m.name FROM events e JOIN models m ON m.id = e.model_id WHERE e.id > ?"
            " AND e.kind IN ('suspected_missing', 'deleted') ORDER BY e.id", (events_before,))]
    assert concluded == [], f"an empty listing deleted {sum(k == 'deleted' for k, _ in concluded)} models"
    assert resumed.returncode == 1 and "--allow-empty" in resumed.stdout, resumed.stdout + resumed.stderr

    root.rmdir()
    os.rename(unmounted, root)  # mounted again
    scan_to_completion(home)
    with connect(home) as conn:
        check_sound(conn)
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == events_before
        assert dict(conn.execute("SELECT name, state FROM models").fetchall()) == dict.fromkeys(names, "present")
