"""`weightkeeper demo`: the whole loop on a built-in registry, with no setup."""

from __future__ import annotations

import tempfile
from pathlib import Path

from weightkeeper import config
from weightkeeper.cli.render import action_line, print_events, print_stats
from weightkeeper.cli.reviewing import propose
from weightkeeper.cli.scanning import describe, scan_registries
from weightkeeper.demo_models import DemoChange, apply_demo_changes, write_demo_registry
from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.queries import EventFilter, events, stats
from weightkeeper.review import ReviewQueue
from weightkeeper.words import counted

REGISTRY_NAME = "demo"
DEMO_REVIEWER = "demo script, on your behalf"


def run_demo(home: Path | None) -> int:
    """Returns 0 when every change made to the registry was documented in the ledger, else 1."""
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="weightkeeper-demo-"))
    elif config.config_path(home).exists():
        raise WeightkeeperError(f"{home} already has a weightkeeper.toml; the demo needs a new or empty --home")
    registry_root = home / "demo-registry"
    config.write_default(home)
    config.add_registry(home, config.RegistryConfig(REGISTRY_NAME, "local", {"path": str(registry_root)}))
    models = write_demo_registry(registry_root)

    _heading(f"Day 1: a local registry of {len(models)} fine-tuned models at {registry_root}")
    first = _scan(home)
    _heading("Day 2: the registry changes")
    changes = apply_demo_changes(registry_root)
    for change in changes:
        print(f"  {change.kind:<22} {change.model_id}: {change.detail}")
    _heading("Day 2: scanning again")
    second = _scan(home)

    settings = config.load(home)
    with Ledger(settings.store) as ledger:
        documented = events(ledger, EventFilter(scan_id=second))
        _heading("What the ledger documented in the second scan")
        print_events(documented, "table")
        missed = [change for change in changes if not _is_documented(change, documented)]
        _heading("Statistics")
        print_stats(stats(ledger))
    _heading("Day 2: drafting preservation proposals (offline drafter; nothing is sent without approval)")
    queued = propose(home, model=None, limit=None, log=lambda line: print(f"  {line}"))
    keys = Path(tempfile.mkdtemp(prefix="weightkeeper-demo-keys-"))  # beside, never inside, the home
    archived = _archive_one(home, keys)
    print()
    if missed:
        for change in missed:
            print(f"NOT DOCUMENTED: {change.kind} {change.model_id}")
        return 1
    if not queued:
        print("NO PROPOSAL was drafted for the deletions and deprecation the ledger documented")
        return 1
    if archived is None:
        print("NOTHING WAS ARCHIVED: the demo's approved archive action did not verify")
        return 1
    print(f"All {len(changes)} changes were documented; no model still present was reported deleted "
          f"(first scan {first}, second scan {second}). {queued} proposals were drafted for review; "
          f"{archived} was archived and verified.")
    print(f"The demo home is kept at {home}; explore it with:\n"
          f"  weightkeeper --home {home} ledger --kind deleted,renamed,visibility_changed\n"
          f"  weightkeeper --home {home} stats\n"
          f"  weightkeeper --home {home} review list\n"
          f"  weightkeeper --home {home} review show ID      # then, on a terminal: review approve ID\n"
          f"  weightkeeper --home {home} archive list        # then: archive show ID, archive verify --all\n"
          f"Nothing outside these folders was written; when done, remove them:\n  rm -r {home} {keys}")
    return 0


def _archive_one(home: Path, keys: Path) -> str | None:
    """Approve the first planned archive action as the demo's scripted reviewer, run it and verify the
    object; returns its object id, or None when it did not verify."""
    from agents.executor import execute
    from weightkeeper.cli.archiving import verify_archive
    from weightkeeper.deciding import HumanReviewer
    from weightkeeper.signing import enroll

    settings = config.load(home)
    with Ledger(settings.store) as ledger:
        queue = ReviewQueue(ledger)
        review, index = next((review, index) for review in queue.list("pending")
                             for index, action in enumerate(review.draft.actions) if action.kind == "archive")
        action = review.draft.actions[index]
        _heading(f"Day 3: the demo approves archiving {action.target} ON YOUR BEHALF (a scripted reviewer, only in "
                 "this demo's own home; anywhere else an approval is typed by a person on a terminal)")
        # The demo's own reviewer: its key and witness in a folder of its own beside (never inside) the home.
        reviewer = HumanReviewer(enroll(ledger, home, DEMO_REVIEWER, directory=keys), "demo")
        reviewer.approve(queue, review.id, version=review.version, payload_sha256s={index: review.payload_sha256(index)})
        for done in execute(ledger, home, review.id, settings=settings.proposals, witness=reviewer.signer.witness):
            print(f"  {action_line(done)}")
    reports = verify_archive(settings, None, sample=None)
    for report in reports:
        print(f"  verified {report.object_id}: {counted(report.checked_files, 'file')}, "
              f"{counted(report.checked_bytes, 'byte')}, "
              + ("intact" if report.ok else "FIXITY FAILED"))
    return reports[0].object_id if reports and all(report.ok for report in reports) else None


def _scan(home: Path) -> int:
    (result,) = scan_registries(home, [REGISTRY_NAME], log=None)
    print(describe(result))
    if not result.ok:
        raise WeightkeeperError(f"the demo scan failed: {result.error}")
    return result.scan_id


def _is_documented(change: DemoChange, documented: list[dict]) -> bool:
    wanted = change.new_model_id if change.kind == "renamed" else change.model_id
    return any(row["event"] == change.kind and row["model"] == wanted for row in documented)


def _heading(text: str) -> None:
    print(f"\n== {text}")
