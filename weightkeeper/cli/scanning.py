"""Scanning configured registries from the command line (and the demo)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from weightkeeper import config
from weightkeeper.errors import UnknownRegistryError
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.store import LedgerDigestCache
from weightkeeper.scan import Scanner, ScanResult


def scan_registries(home: Path, names: list[str], *, log: Callable[[str], object] | None = print,
                    allow_empty: bool = False) -> list[ScanResult]:
    """One pass over each named registry (all when none are named); a failing registry never stops the others."""
    settings = config.load(home)
    for name in names:
        if name not in settings.registries:
            raise UnknownRegistryError(name, sorted(settings.registries))
    chosen = [settings.registries[name] for name in names] if names else list(settings.registries.values())
    if not chosen and log:
        log("no registries configured; add one with `weightkeeper registry add NAME --kind local --path DIR`")
    from tools.registries import open_registry

    results = []
    with Ledger(settings.ledger_path) as ledger:
        for registry in chosen:
            registry_id = ledger.registry_id(registry.name, registry.kind, registry.location)
            adapter = open_registry(registry, LedgerDigestCache(ledger, registry_id))
            result = Scanner(ledger, registry, adapter, allow_empty=allow_empty, settings=settings.scan).run()
            results.append(result)
            if log:
                log(describe(result))
    return results


def describe(result: ScanResult) -> str:
    events = ", ".join(f"{kind} {count}" for kind, count in result.events.items()) or "no changes"
    line = (f"{result.registry}: scan {result.scan_id} {result.status}{' (resumed)' if result.resumed else ''}"
            f" — {result.models_seen} models in {result.pages} pages; {events}")
    if result.problems:
        line += f"; {len(result.problems)} problems:" + "".join(
            f"\n  - {problem['model'] or '(registry)'}: {problem['message']}" for problem in result.problems
        )
    if result.error:
        line += f"\n  error: {result.error}"
    return line
