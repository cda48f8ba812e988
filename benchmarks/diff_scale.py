"""Diff a 1,000,000-model listing with 1% churn into ledger events, and print the figures.

Target (issue 2): the diff of the rescan with churn in <= 10 s wall and <= 1 GB peak RSS
on a 2-core machine; (issue 19) on a PostgreSQL ledger, within 2x of the SQLite figure on the
same machine.

    python benchmarks/diff_scale.py [--models 1000000] [--churn 0.01] [--repeat 3] [--baseline PATH]
                                    [--store sqlite,postgres]

`--store` names the ledgers measured, in turn: `sqlite` (a file), `postgres` (a database on a
throwaway PostgreSQL server in a temporary folder, tests/postgres_server.py, durable as a
production server is); with both, the PostgreSQL median is also given as a multiple of SQLite's.
Each measured scan runs in a fresh subprocess so its peak RSS is its own. The first
scan of the previous listing (into an empty ledger) is the setup and is printed too; each
measured scan diffs into a copy of that ledger (a file copy; a database made from it as a
template). `--baseline PATH` keeps the SQLite setup ledger and reuses it on the next run.

A scan's wall time splits in two (`ScanResult.seconds`): "registry" is the adapter
producing the listing (here: building a million synthetic records) and digesting
each record; "ledger" is the diff proper: comparing the listing with the ledger in
SQL and writing observations and events. Both are printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from postgres_server import PostgresServer  # noqa: E402
from weightkeeper.config import RegistryConfig
from weightkeeper.domain import FileEntry, Found, Gone, Lineage, LookupResult, ModelRecord, Page
from weightkeeper.ledger import Ledger
from weightkeeper.registry import Registry
from weightkeeper.scan import Scanner

BASES = ("meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-v0.3", "Qwen/Qwen2.5-7B-Instruct",
         "google/gemma-2-9b-it", "microsoft/Phi-3-mini-4k-instruct")
PAGE_SIZE = 1000


class SyntheticRegistry(Registry):
    """`models` models; with `churn`, a deterministic `churn` fraction is deleted, added or changed (a third each)."""

    kind = "synthetic"
    unlisted: frozenset = frozenset()

    def __init__(self, models: int, churn: float) -> None:
        self.models, self.churn = models, churn
        self.step = round(1 / churn) if churn else 0

    def _fate(self, i: int) -> str:
        if not self.step or i % self.step:
            return "same"
        return ("deleted", "added", "changed")[(i // self.step) % 3]

    def _record(self, i: int, changed: bool = False) -> ModelRecord:
        return ModelRecord(
            name=f"org-{i % 997}/model-{i:07d}",
            key=f"id{i:09d}",
            revision=f"{(i * 2654435761 + changed) % (1 << 64):016x}",
            last_modified="2026-11-01T00:00:00Z",
            downloads=i % 5000,
            likes=i % 97,
            lineage=(Lineage(BASES[i % len(BASES)], "finetune"),),
            files=(FileEntry("model.safetensors", 1_000_000 + i, None),),
        )

    def pages(self, cursor: str | None) -> Iterator[Page]:
        start = int(cursor) if cursor else 0
        total = self.models + (self.models // self.step if self.step else 0)
        for first in range(start, total, PAGE_SIZE):
            yield Page(tuple(range(first, min(first + PAGE_SIZE, total))), cursor=str(first + PAGE_SIZE))

    def records(self, page: Page) -> list[ModelRecord]:
        out = []
        for i in page.items:
            if i >= self.models:  # models added by the churn
                if self._fate((i - self.models) * self.step) == "added":
                    out.append(self._record(i))
                continue
            fate = self._fate(i)
            if fate != "deleted":
                out.append(self._record(i, changed=fate == "changed"))
        return out

    def lookup(self, name: str) -> LookupResult:
        i = int(name.rsplit("-", 1)[1])
        if i < self.models and self._fate(i) == "deleted":
            return Gone("synthetic: deleted")
        return Found(self._record(i))


def scan_once(ledger_at: str, models: int, churn: float) -> dict:
    """One scan of the synthetic registry into the ledger at `ledger_at` (a SQLite path or a PostgreSQL URL)."""
    registry = RegistryConfig("synthetic", "local", {"path": "synthetic"})
    with Ledger(ledger_at) as ledger:
        start = time.perf_counter()
        result = Scanner(ledger, registry, SyntheticRegistry(models, churn)).run()
        wall = time.perf_counter() - start
    return {"wall_s": wall, "diff_s": result.seconds["ledger"], "listing_s": result.seconds["registry"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "status": result.status, "events": result.events, "models_seen": result.models_seen}


def _in_subprocess(ledger_at: str, models: int, churn: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", ledger_at, str(models), str(churn)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


class SqliteLedgers:
    """The setup ledger in a file (`baseline`, kept when given), and each run's a copy of it."""

    name = "SQLite"

    def __init__(self, work: Path, baseline: Path | None) -> None:
        self.work, self.setup = work, str(baseline or work / "baseline.sqlite3")

    def made(self) -> bool:
        return Path(self.setup).exists()

    def copy(self, run: int) -> str:
        copy = self.work / f"run{run}.sqlite3"
        shutil.copy(self.setup, copy)
        return str(copy)

    def done(self, copy: str) -> None:
        Path(copy).unlink()


class PostgresLedgers:
    """The setup ledger in a database of a throwaway server, and each run's a database made from it as a template."""

    name = "PostgreSQL"

    def __init__(self) -> None:
        # A folder of its own: under root the server runs as `postgres`, who cannot enter an owner-only one.
        self.server = PostgresServer(Path(tempfile.mkdtemp(prefix="wk-diff-scale-pg-")), durable=True)
        self.server.start()
        self.setup = self.server.create_database("baseline")

    def made(self) -> bool:
        return False

    def copy(self, run: int) -> str:
        return self.server.create_database(f"run{run}", template="baseline")

    def done(self, copy: str) -> None:
        import psycopg

        with psycopg.connect(self.server.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{copy.rsplit("/", 1)[1]}"')

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.server.root, ignore_errors=True)


def measure(ledgers: SqliteLedgers | PostgresLedgers, models: int, churn: float, repeat: int
            ) -> tuple[float, float]:
    """Print the setup and each run on `ledgers`; the median diff and the median whole rescan."""
    if ledgers.made():
        print(f"{ledgers.name} setup: reusing {ledgers.setup}")
    else:
        setup = _in_subprocess(ledgers.setup, models, 0.0)
        print(f"{ledgers.name} setup: first scan of {models:,} models into an empty ledger: {setup['wall_s']:.1f} s, "
              f"peak RSS {setup['peak_rss_mb']:.0f} MB, events {setup['events']}", flush=True)
    walls, diffs, rss = [], [], []
    for run in range(repeat):
        copy = ledgers.copy(run)
        measured = _in_subprocess(copy, models, churn)
        walls.append(measured["wall_s"])
        diffs.append(measured["diff_s"])
        rss.append(measured["peak_rss_mb"])
        print(f"{ledgers.name} run {run + 1}: rescan with {churn:.0%} churn: {measured['wall_s']:.2f} s "
              f"(diff {measured['diff_s']:.2f} s, listing {measured['listing_s']:.2f} s), "
              f"peak RSS {measured['peak_rss_mb']:.0f} MB, events {measured['events']}", flush=True)
        ledgers.done(copy)
    print(f"{ledgers.name}: median diff {statistics.median(diffs):.2f} s (target <= 10 s); median whole rescan "
          f"{statistics.median(walls):.2f} s; max peak RSS {max(rss):.0f} MB (target <= 1024 MB)", flush=True)
    return statistics.median(diffs), statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1_000_000)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="keep the SQLite setup ledger here and reuse it when present")
    parser.add_argument("--store", default="sqlite", help="the ledgers measured, comma-separated: sqlite, postgres")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        ledger_at, models, churn = args.worker
        print(json.dumps(scan_once(ledger_at, int(models), float(churn))))
        return
    stores = args.store.split(",")
    if unknown := set(stores) - {"sqlite", "postgres"}:
        parser.error(f"--store takes sqlite and postgres, not {', '.join(sorted(unknown))}")

    work = Path(tempfile.mkdtemp(prefix="wk-diff-scale-"))
    medians: dict[str, tuple[float, float]] = {}
    try:
        for store in stores:
            if store == "sqlite":
                medians[store] = measure(SqliteLedgers(work, args.baseline), args.models, args.churn, args.repeat)
                continue
            ledgers = PostgresLedgers()
            try:
                medians[store] = measure(ledgers, args.models, args.churn, args.repeat)
            finally:
                ledgers.stop()
        if len(medians) == 2:
            (diff, wall), (sqlite_diff, sqlite_wall) = medians["postgres"], medians["sqlite"]
            # The split differs between the two: the slower the writer, the more of the listing its child has
            # read ahead, so the whole rescan is compared too.
            print(f"PostgreSQL's median diff is {diff / sqlite_diff:.2f}x SQLite's (target <= 2x); its whole rescan "
                  f"{wall / sqlite_wall:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
