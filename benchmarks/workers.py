"""Scan a 400,000-model fake Hub in 8 author shards with 1, 2 and 4 `weightkeeper worker` processes on one PostgreSQL.

Target (issue 19): 4 workers at least 3x faster than 1. (The issue's other figure, the PostgreSQL ledger's diff
of 1,000,000 models within 2x of SQLite's, is `benchmarks/diff_scale.py --store sqlite,postgres`.)

    python benchmarks/workers.py [--models 400000] [--shards 8] [--page-delay 0.05] [--workers 1,2,4] [--repeat 1]

The fake Hub (evals/fakes/hub.py) runs in its own process: each listing page takes `--page-delay` seconds, as a
real registry's round trip does, and its pages are built before the clock starts, so that serving one costs the
Hub a dictionary look-up and the benchmark measures weightkeeper. Its pages are as large as the Hub adapter asks
for (`PAGE_SIZE` in tools/registries/huggingface.py). PostgreSQL (tests/postgres_server.py) runs in a temporary
folder, durable as a production server is.

For each worker count: a fresh database (the ledger's schema and the job queue's made first, as the first worker
would), that many `weightkeeper worker` processes, started and waiting on a home without the Hub; then the clock
starts, the Hub is added to the home's config, the scans of every shard are planned once (the planner's
`plan_now`, which its minute tick runs), and the clock runs until every shard's scan is complete in the ledger,
which must then hold every model. Then the rescans, timed the same way: every shard queued again, as the planner
queues it when its schedule comes round, over the unchanged Hub (a team's periodic scan, where the first scans
write four rows per model and the rescans write almost nothing). The workers are separate processes with a concurrency
of 1 each, as a team runs them across machines: `--concurrency N` in one process would run its scans' ledger
writes under one interpreter lock. The CPU seconds each part spent during the run are printed beside the wall
time (workers with their read-ahead children, PostgreSQL's server processes, the fake Hub): on a machine of few
cores they say where the time went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from postgres_server import PostgresServer  # noqa: E402
from tools.registries.huggingface import PAGE_SIZE  # noqa: E402

BASES = ("meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-v0.3", "Qwen/Qwen2.5-7B-Instruct",
         "google/gemma-2-9b-it")
RELATIONS = ("finetune", "adapter", "quantized", "merge")
TIMEOUT = 1800.0  # seconds a run may take before it is called stuck
POLL = 0.1


def authors(shards: int) -> list[str]:
    return [f"org-{shard}" for shard in range(shards)]


def serve(models: int, shards: int, page_delay: float) -> None:
    """The fake Hub of `models` models spread over the shards' authors, its pages built; prints its URL, then serves
    until terminated."""
    from evals.fakes.hub import FakeHub
    from tools.registries.huggingface import HubRegistry

    hub = FakeHub(page_size=PAGE_SIZE, page_delay=page_delay, built_pages=True)
    names = authors(shards)
    # Cards and tags shared between models of a lineage: 400,000 models fit in a few hundred MB.
    cards = [{"base_model": base, "license": "apache-2.0", "datasets": ["tatsu-lab/alpaca"]} for base in BASES]
    tags = [["transformers", "safetensors", "text-generation", f"base_model:{relation}:{base}", f"base_model:{base}",
             "license:apache-2.0", "region:us"] for base, relation in zip(BASES, RELATIONS)]
    no_files: dict[str, bytes] = {}
    for i in range(models):
        hub.add(f"{names[i % shards]}/model-{i:07d}", files=no_files, downloads=i % 5000, likes=i % 97,
                tags=tags[i % len(BASES)], card_data=cards[i % len(BASES)])
    with hub:
        for author in names:  # the first page of an author's listing builds all of them
            with HubRegistry(hub.url, author=author, search=None, filter=None, files=None, token=None,
                             cache=None) as registry:
                next(iter(registry.pages(None)))
        print(f"ready {hub.url}", flush=True)
        threading.Event().wait()  # until terminated


def write_home(home: Path, store: str, hub: str | None = None, shards: int = 0) -> None:
    """The home's config: its store, and the Hub at URL `hub` in `shards` author shards (none without `hub`)."""
    home.mkdir(parents=True, exist_ok=True)
    # A yearly schedule: the shards' first scans are due once, and planned by the benchmark.
    registry = (f'[registries.hub]\nkind = "hf"\nendpoint = "{hub}"\nauthors = {json.dumps(authors(shards))}\n'
                'schedule = "0 0 1 1 *"\n') if hub else ""
    (home / "weightkeeper.toml").write_text(f'[store]\nurl = "{store}"\n\n{registry}', encoding="utf-8")


def prepare(store: str) -> None:
    """The ledger's schema and the job queue's, made before the workers start, as the first of them would."""
    from procrastinate.schema import SchemaManager

    from weightkeeper.ledger import Ledger
    from weightkeeper.ledger.jobs import apply_schema

    Ledger(store).close()
    apply_schema(store, SchemaManager.get_schema())


async def plan(home: Path) -> str:
    from weightkeeper.cli.workers import Workers

    workers = Workers(home)
    async with workers.app.open_async():
        return await workers.plan_now()


async def queue_rescans(home: Path, registries: list[str]) -> int:
    """Queue a scan of each shard, as the planner does when its schedule comes round; returns how many."""
    from weightkeeper.cli.workers import Workers

    workers = Workers(home)
    async with workers.app.open_async():
        return sum([await workers.defer_scan(name) for name in registries])


def start_worker(home: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), "worker"],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(done: Callable[[], bool], what: str, logs: list[Path], workers: list[subprocess.Popen]) -> None:
    """Poll `done()` until true; a worker that exits, or TIMEOUT, fails the run with the workers' logs."""
    started = time.monotonic()
    while not done():
        if any(worker.poll() is not None for worker in workers) or time.monotonic() - started > TIMEOUT:
            tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
            raise RuntimeError(f"not {what}: a worker exited or the run timed out\n{tails}")
        time.sleep(POLL)


def cpu_seconds(pid: int) -> float:
    """The CPU a process and its children (those it reaped, and those alive: PostgreSQL's backends) spent so far."""
    import psutil

    process = psutil.Process(pid)
    times = process.cpu_times()
    alive = 0.0
    for child in process.children(recursive=True):
        try:
            alive += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:  # reaped meanwhile: counted in its parent's from the next reading on
            pass
    return times.user + times.system + times.children_user + times.children_system + alive


@dataclass
class Phase:
    wall_s: float
    cpu_s: dict[str, float]


@dataclass
class Run:
    workers: int
    phases: dict[str, Phase]  # PHASES: the first scans of every shard, then their rescans
    scans_by_worker: list[int]


PHASES = ("first scan", "rescan")


def one_run(server: PostgresServer, hub: subprocess.Popen, hub_url: str, work: Path, count: int, models: int,
            shards: int, label: str) -> Run:
    from weightkeeper.ledger import Ledger
    from weightkeeper.ledger.queries import last_scan, stats

    store = server.create_database(f"workers_{label}")
    home = work / f"home-{label}"
    # The workers start on a home without the Hub: it is added, as a team adds a registry, once they all wait.
    write_home(home, store)
    prepare(store)
    logs = [work / f"worker-{label}-{index}.log" for index in range(count)]
    workers = [start_worker(home, log) for log in logs]
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    phases: dict[str, Phase] = {}
    try:
        # Started, and the planner's run at their start done (it found no registry): the benchmark plans alone.
        wait_until(lambda: all(" started (concurrency" in log.read_text() for log in logs)
                   and any(": planned 0 scan(s)" in log.read_text() for log in logs), "started", logs, workers)
        parts = {"workers": [worker.pid for worker in workers], "postgres": [postmaster], "hub": [hub.pid]}
        shard_names = [f"hub/{author}" for author in authors(shards)]
        with Ledger(store) as ledger:
            def scans() -> list[dict | None]:
                found = [last_scan(ledger, name)[0] for name in shard_names]
                failed = [scan for scan in found if scan is not None and scan["status"] == "failed"]
                if failed:
                    raise RuntimeError(f"a scan failed: {failed}")
                return found

            def timed(phase: str, queue: Callable[[], None]) -> None:
                """Queue the phase's scans, then time them until every shard's latest scan is a new, complete one."""
                before = [scan["id"] if scan else 0 for scan in scans()]
                cpu = {part: sum(map(cpu_seconds, pids)) for part, pids in parts.items()}
                started = time.perf_counter()
                queue()
                wait_until(lambda: all(scan is not None and scan["id"] > old and scan["status"] == "complete"
                                       for scan, old in zip(scans(), before)), f"every shard's {phase} complete",
                           logs, workers)
                phases[phase] = Phase(time.perf_counter() - started,
                                      {part: sum(map(cpu_seconds, pids)) - cpu[part] for part, pids in parts.items()})
                seen = sum(scan["models_seen"] for scan in scans())
                present = stats(ledger)["models"]["persist"]
                if seen != models or present != models:
                    raise RuntimeError(f"the {phase}s saw {seen:,} models and the ledger holds {present:,} present; "
                                       f"the Hub has {models:,}")

            def first() -> None:
                write_home(home, store, hub_url, shards)
                planned = asyncio.run(plan(home))
                if f"planned {shards} scan(s)" not in planned:  # a worker's planner ran at that moment (each minute)
                    raise RuntimeError(f"the benchmark's planner did not plan every shard ({planned}): run it again")

            def again() -> None:
                if asyncio.run(queue_rescans(home, shard_names)) != shards:
                    raise RuntimeError("a shard's scan was still queued: the rescans were not all queued")

            timed(PHASES[0], first)
            timed(PHASES[1], again)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    return Run(count, phases, [log.read_text().count("registry='hub/") for log in logs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=400_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--page-delay", type=float, default=0.05, help="seconds each listing page takes")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each worker count (medians printed)")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), int(args.serve[1]), float(args.serve[2]))
        return

    counts = [int(count) for count in args.workers.split(",")]
    pages = sum(-(-len(range(shard, args.models, args.shards)) // PAGE_SIZE) for shard in range(args.shards))
    print(f"{args.models:,} models in {args.shards} shards, pages of {PAGE_SIZE} (the Hub adapter's) taking "
          f"{args.page_delay * 1000:.0f} ms each: {pages} pages, {pages * args.page_delay:.1f} s of round trips "
          f"in all; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    work = Path(tempfile.mkdtemp(prefix="wk-bench-workers-"))
    # A folder of its own: under root the server runs as `postgres`, who cannot enter the owner-only `work`.
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="wk-bench-workers-pg-")), durable=True)
    hub: subprocess.Popen | None = None
    try:
        server.start()
        built = time.perf_counter()
        hub = subprocess.Popen([sys.executable, __file__, "--serve", str(args.models), str(args.shards),
                                str(args.page_delay)], stdout=subprocess.PIPE, text=True, cwd=REPO)
        ready = hub.stdout.readline().split()  # type: ignore[union-attr]
        if ready[:1] != ["ready"]:
            raise RuntimeError("the fake Hub did not start")
        print(f"fake Hub built and its pages serialised in {time.perf_counter() - built:.1f} s", flush=True)
        walls: dict[tuple[str, int], list[float]] = {(phase, count): [] for phase in PHASES for count in counts}
        for run in range(args.repeat):
            for count in counts:
                done = one_run(server, hub, ready[1], work, count, args.models, args.shards, f"{count}_{run}")
                for phase, figures in done.phases.items():
                    walls[phase, count].append(figures.wall_s)
                    cpu = ", ".join(f"{part} {seconds:.1f}" for part, seconds in figures.cpu_s.items())
                    print(f"run {run + 1}, {count} worker(s), {phase}: {figures.wall_s:.2f} s, "
                          f"{args.models / figures.wall_s:,.0f} models/s; CPU s: {cpu}", flush=True)
                print(f"run {run + 1}, {count} worker(s): shards scanned per worker {done.scans_by_worker}; "
                      f"load average {os.getloadavg()[0]:.2f}", flush=True)
        for phase in PHASES:
            one = statistics.median(walls[phase, counts[0]])
            for count in counts:
                wall = statistics.median(walls[phase, count])
                print(f"{phase}, {count} worker(s): median {wall:.2f} s, {args.models / wall:,.0f} models/s, "
                      f"{one / wall:.2f}x against {counts[0]}" + (" (target >= 3x)" if count == 4 else ""))
        print(f"load average at the end: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    finally:
        if hub is not None:
            hub.terminate()
            hub.wait()
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
