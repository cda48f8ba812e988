"""Scanning configured registries from the command line, `watch` and the demo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from weightkeeper import config
from weightkeeper.cli.progress import ScanDisplay, display_for
from weightkeeper.errors import LeaseHeld, RegistryUnavailable, UnknownRegistryError, WeightkeeperError
from weightkeeper.ledger import Ledger
from weightkeeper.ledger.store import LedgerAdapterCache, LedgerDigestCache
from weightkeeper.registry import RegistryAdapter
from weightkeeper.scan import Scanner, ScanResult
from weightkeeper.words import counted


def scan_registries(home: Path, names: list[str], *, log: Callable[[str], object] | None = print,
                    allow_empty: bool = False, should_stop: Callable[[], bool] = lambda: False,
                    display: ScanDisplay | None = None) -> list[ScanResult]:
    """One pass over each named registry (all when none are named); a failing registry never stops the others."""
    settings = config.load(home)
    chosen = chosen_registries(settings, names)
    display = display or display_for(log)
    results = []
    with Ledger(settings.store) as ledger:
        for registry in chosen:
            if should_stop():
                break
            result = scan_one(ledger, registry, settings.scan, allow_empty=allow_empty, should_stop=should_stop,
                              display=display)
            results.append(result)
            if log:
                log(describe(result))
    return results


def chosen_registries(settings: config.Config, names: list[str]) -> list[config.RegistryConfig]:
    """The registries the names cover (all when none are given), as they are scanned: a registry split into
    shards (the Hub's `authors`) is its shards, and a shard may be named alone (`hub/acme`). Refuses a name the
    config does not hold, and refuses to watch nothing: a scheduled scan of no registry would report success
    forever."""
    scanned = settings.scanned()
    for name in names:
        if name not in settings.registries and name not in scanned:
            raise UnknownRegistryError(name, sorted({*settings.registries, *scanned}))
    if not settings.registries:
        raise WeightkeeperError(f"no registries configured in {settings.path}: there is nothing to scan; add one "
                                "with `weightkeeper registry add NAME --kind local --path DIR`")
    if not names:
        return list(scanned.values())
    return [shard for name in names
            for shard in (settings.registries[name].shards() if name in settings.registries else [scanned[name]])]


def scan_one(ledger: Ledger, registry: config.RegistryConfig, settings: config.ScanSettings, *,
             allow_empty: bool = False, should_stop: Callable[[], bool] = lambda: False,
             display: ScanDisplay | None = None) -> ScanResult:
    """Scan one registry under its lease: never two scans of a registry at once, whichever process runs them."""
    registry_id = ledger.registry_id(registry.name, registry.kind, registry.location)
    try:
        with ledger.scan_lease(registry_id, registry.name):
            with open_adapter(ledger, registry, on_wait=display.wait if display else None) as adapter:
                if display:
                    display.start(registry.name)
                try:
                    return Scanner(ledger, registry, adapter, allow_empty=allow_empty, settings=settings,
                                   should_stop=should_stop, progress=display.progress if display else None).run()
                finally:
                    if display:
                        display.stop()
    except LeaseHeld as exc:
        return ScanResult(registry.name, None, "skipped", False, error=str(exc))
    except RegistryUnavailable as exc:
        return ScanResult(registry.name, None, "failed", False, error=str(exc))


def open_adapter(ledger: Ledger, registry: config.RegistryConfig, *,
                 on_wait: Callable[[float, str], object] | None = None) -> RegistryAdapter:
    """The registry's adapter, with the caches the ledger keeps for it."""
    from tools.registries import open_registry

    registry_id = ledger.registry_id(registry.name, registry.kind, registry.location)
    return open_registry(registry, digests=LedgerDigestCache(ledger, registry_id),
                         cache=LedgerAdapterCache(ledger, registry_id), on_wait=on_wait)


def check_registry(registry: config.RegistryConfig) -> str:
    """What `registry check` and `registry add` verify: the registry (each of its shards) answers and accepts its
    credentials. Raises RegistryUnavailable with the reason. Nothing is recorded: a registry that is refused
    leaves no trace."""
    from tools.registries import open_registry

    verified = []
    for shard in registry.shards():
        with open_registry(shard, digests=_Uncached(), cache=_Uncached()) as adapter:
            verified.append(adapter.check())
    return "; ".join(verified)


class _Uncached:
    """The caches of an adapter that only checks: it remembers nothing."""

    def get(self, *key: object) -> None:
        return None

    def put(self, *entry: object) -> None:
        return None


def describe(result: ScanResult) -> str:
    if result.scan_id is None:
        return f"{result.registry}: not scanned ({result.status})\n  {result.error}"
    events = ", ".join(f"{kind} {count}" for kind, count in result.events.items()) or "no changes"
    line = (f"{result.registry}: scan {result.scan_id} {result.status}{' (resumed)' if result.resumed else ''}"
            f" — {counted(result.models_seen, 'model')} in {counted(result.pages, 'page')}; {events}")
    if result.problems:
        line += f"; {counted(len(result.problems), 'problem')}:" + "".join(
            f"\n  - {problem['model'] or '(registry)'}: {problem['message']}" for problem in result.problems
        )
    if result.error:
        line += f"\n  error: {result.error}"
    return line
