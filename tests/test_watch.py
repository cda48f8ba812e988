"""`weightkeeper watch` as a user runs it (a subprocess on a short schedule), and the scan lease under it."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from test_scan_crash import read, write_model
from weightkeeper.errors import LeaseHeld
from weightkeeper.ledger import Ledger

REPO = Path(__file__).resolve().parents[1]
MODELS = 600  # 12 pages of 50, each committed alone: a scan long enough to be stopped mid-listing
TIMEOUT = 60.0


def make_home(tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(7)
    root, home = tmp_path / "registry", tmp_path / "home"
    for i in range(MODELS):
        write_model(root, f"org-{i % 6}/model-{i:03d}", rng)
    home.mkdir()
    (home / "weightkeeper.toml").write_text(
        '[ledger]\npath = "ledger.sqlite3"\n\n[scan]\ncommit_records = 1\n\n'
        f'[registries.local]\nkind = "local"\npath = {json.dumps(str(root))}\nschedule = "* * * * * */2"\n',
        encoding="utf-8",
    )
    return home, home / "ledger.sqlite3"


def start_watch(home: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), "watch",
                             "--jitter", "0.2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(ledger: Path, sql: str, until: float = TIMEOUT) -> tuple:
    started = time.monotonic()
    while time.monotonic() - started < until:
        row = read(ledger, sql)
        if row and all(value for value in row):
            return row
        time.sleep(0.002)
    raise AssertionError(f"timed out waiting for: {sql}")


def stop(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, f"exit {process.returncode}\n{out}\n{err}"
    return out, err


@pytest.mark.slow
def test_watch_scans_on_schedule_stops_after_the_current_page_on_sigterm_and_resumes(tmp_path: Path) -> None:
    home, ledger = make_home(tmp_path)
    first = start_watch(home)
    wait_for(ledger, "SELECT pages >= 2 FROM scans WHERE id = 1 AND phase = 'listing'")
    out, _ = stop(first)
    assert "watch stopped" in out and "interrupted" in out
    with closing(sqlite3.connect(ledger)) as conn:
        status, phase, pages, error = conn.execute("SELECT status, phase, pages, error FROM scans WHERE id = 1").fetchone()
        assert (status, phase) == ("interrupted", "listing") and 2 <= pages < MODELS // 50
        assert "stopped on request" in error
        recorded = conn.execute("SELECT COUNT(*) FROM models").fetchone()[0]
        assert recorded == pages * 50, "each committed page, and nothing of a page half done"
        assert conn.execute("SELECT COUNT(*) FROM scan_leases").fetchone()[0] == 0, "the lease was released"

    second = start_watch(home)  # the unfinished scan is due at once, and resumes
    wait_for(ledger, "SELECT status = 'complete' FROM scans WHERE id = 1")
    wait_for(ledger, "SELECT COUNT(*) >= 2 FROM scans WHERE status = 'complete'")  # then the schedule goes on
    out, _ = stop(second)
    with closing(sqlite3.connect(ledger)) as conn:
        assert conn.execute("SELECT attempts FROM scans WHERE id = 1").fetchone()[0] == 2
        appeared = conn.execute("SELECT model_id, COUNT(*) FROM events WHERE kind = 'appeared' GROUP BY model_id")
        counts = [count for _, count in appeared]
        assert len(counts) == MODELS and set(counts) == {1}, "every model appeared exactly once"
        assert conn.execute("SELECT COUNT(*) FROM events WHERE kind != 'appeared'").fetchone()[0] == 0
    assert "(resumed)" in out


def test_a_scan_lease_keeps_a_second_process_out_until_released_or_lapsed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as first, Ledger(path) as second:
        registry_id = first.registry_id("lab", "local", "/srv")
        with first.scan_lease(registry_id, "lab"):
            with pytest.raises(LeaseHeld, match="registry 'lab' is being scanned by .*:\\d+ \\(host:pid\\)"):
                with second.scan_lease(registry_id, "lab"):
                    pass
        with second.scan_lease(registry_id, "lab", ttl=0.2):
            pass  # released by the first: free
        # A holder that died without releasing: its lease lapses after its ttl.
        second.conn.execute("INSERT INTO scan_leases VALUES (?, 'gone-host:1:ab', ?)", (registry_id, time.time() + 0.3))
        with pytest.raises(LeaseHeld):
            with first.scan_lease(registry_id, "lab"):
                pass
        time.sleep(0.4)
        with first.scan_lease(registry_id, "lab"):
            holder = first.conn.execute("SELECT holder FROM scan_leases").fetchone()[0]
            assert holder != "gone-host:1:ab"


def test_the_lease_of_a_killed_process_on_this_host_is_taken_at_once(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        registry_id = ledger.registry_id("lab", "local", "/srv")
        ledger.conn.execute("INSERT INTO scan_leases VALUES (?, ?, ?)",
                            (registry_id, f"{socket.gethostname()}:{dead.stdout.strip()}:ab", time.time() + 60))
        with ledger.scan_lease(registry_id, "lab"):
            assert ledger.conn.execute("SELECT holder FROM scan_leases").fetchone()[0].split(":")[1] == str(os.getpid())


def test_a_manual_scan_while_another_process_holds_the_lease_is_skipped_not_run(tmp_path: Path) -> None:
    home, ledger_path = make_home(tmp_path)
    with Ledger(ledger_path) as ledger:
        registry_id = ledger.registry_id("local", "local", str(tmp_path / "registry"))
        with ledger.scan_lease(registry_id, "local"):
            skipped = subprocess.run([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), "scan",
                                      "--json"], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
        (result,) = json.loads(skipped.stdout)
        assert skipped.returncode == 1 and result["status"] == "skipped" and "being scanned by" in result["error"]
        assert ledger.conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0] == 0


@pytest.mark.slow
def test_watch_verifies_the_archive_on_its_schedule(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    subprocess.run([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), "demo"], cwd=REPO,
                   check=True, capture_output=True)  # leaves one archived, verified model
    config = home / "weightkeeper.toml"
    config.write_text(config.read_text().replace('verify_schedule = "30 3 * * 0"', 'verify_schedule = "* * * * * */1"'))
    ledger = home / "ledger.sqlite3"
    before = read(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'fixity_ok'")[0]
    watching = start_watch(home)
    wait_for(ledger, f"SELECT COUNT(*) >= {before + 2} FROM events WHERE kind = 'fixity_ok'")
    out, _ = stop(watching)
    assert "(archive): next verification" in out and "1 object verified, all intact" in out
