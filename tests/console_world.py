"""Homes for the review console's tests: the demo's registry scanned before and after its changes, proposed for,
with a reviewer whose key is in the test's keys folder. Built at a fixed time, so letters, hashes and ages are
the same on every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine

import tools.registries  # noqa: F401  (registers the registry kinds the demo home's config names)
from tui.data import Desk
from weightkeeper import config
from weightkeeper.cli.reviewing import propose
from weightkeeper.cli.scanning import scan_registries
from weightkeeper.demo_models import apply_demo_changes, write_demo_registry
from weightkeeper.ledger import Ledger
from weightkeeper.signing import enroll

BUILT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SEEN = BUILT + timedelta(hours=5)  # the console's "now": every proposal is 5 hours old


def demo_home(home: Path, *, reviewer: str = "ada", keys: Path | None = None) -> Path:
    """The demo's proposals, pending, and `reviewer` the ledger's first reviewer, their key in `keys` (default
    the keys folder of the environment)."""
    with time_machine.travel(BUILT, tick=False):
        root = home / "demo-registry"
        config.write_default(home)
        config.add_registry(home, config.RegistryConfig("demo", "local", {"path": str(root)}))
        write_demo_registry(root)
        scan_registries(home, ["demo"], log=None)
        apply_demo_changes(root)
        scan_registries(home, ["demo"], log=None)
        with Ledger(config.load(home).store) as ledger:
            enroll(ledger, home, reviewer, directory=keys)
        propose(home, model=None, limit=None, log=lambda line: None)
    return home


def desk(home: Path, reviewer: str = "ada") -> Desk:
    return Desk(home, reviewer, now=lambda: SEEN)


def crowd(home: Path, count: int) -> None:
    """`count` more pending proposals, copies of review 1 at varied priorities: an inbox of that size."""
    with Ledger(config.load(home).store) as ledger:
        queue_copies(ledger, count)


def queue_copies(ledger: Ledger, count: int) -> None:
    """Queue `count` copies of review 1, pending, at varied priorities, in one statement (on either backend)."""
    with ledger.transaction() as conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO reviews (thread_id, interrupt_id, registry_id, model_id, event_id, recipient, priority,"
            " status, draft, evidence, findings, created_at, updated_at)"
            " SELECT 'crowd:' || i, 'crowd', registry_id, model_id, event_id, recipient, (i * 7919 % 1000) / 100.0,"
            " 'pending', draft, evidence, findings, created_at, updated_at FROM reviews, n WHERE id = 1", (count,))
