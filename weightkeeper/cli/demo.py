"""`weightkeeper demo`: the whole loop on a built-in registry, with no setup."""

from __future__ import annotations

import tempfile
from pathlib import Path

from weightkeeper import config
from weightkeeper.cli.render import print_events, print_stats
from weightkeeper.cli.reviewing import propose
from weightkeeper.cli.scanning import describe, scan_registries
from weightkeeper.demo_models import DemoChange, apply_demo_changes, write_demo_registry
from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.queries import EventFilter, events, stats

REGISTRY_NAME = "demo"


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
    with Ledger(settings.ledger_path) as ledger:
        documented = events(ledger, EventFilter(scan_id=second))
        _heading("What the ledger documented in the second scan")
        print_events(documented, "table")
        missed = [change for change in changes if not _is_documented(change, documented)]
        _heading("Statistics")
        print_stats(stats(ledger))
    _heading("Day 2: drafting preservation proposals (offline drafter; nothing is sent without approval)")
    queued = propose(home, model=None, limit=None, log=lambda line: print(f"  {line}"))
    print()
    if missed:
        for change in missed:
            print(f"NOT DOCUMENTED: {change.kind} {change.model_id}")
        return 1
    if not queued:
        print("NO PROPOSAL was drafted for the deletions and deprecation the ledger documented")
        return 1
    print(f"All {len(changes)} changes were documented; no model still present was reported deleted "
          f"(first scan {first}, second scan {second}). {queued} proposals wait in the review queue.")
    print(f"The demo home is kept at {home}; explore it with:\n"
          f"  weightkeeper --home {home} ledger --kind deleted,renamed,visibility_changed\n"
          f"  weightkeeper --home {home} stats\n"
          f"  weightkeeper --home {home} review list\n"
          f"  weightkeeper --home {home} review show ID      # then, on a terminal: review approve ID")
    return 0


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
