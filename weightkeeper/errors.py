"""Named errors whose messages say what was wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class WeightkeeperError(Exception):
    """Base class: every error weightkeeper raises on purpose."""


class ConfigError(WeightkeeperError):
    """The configuration file is malformed or names something invalid."""

    def __init__(self, path: Path, message: str, *, line: int | None = None, key: str | None = None) -> None:
        self.path, self.line, self.key = path, line, key
        where = f"{path}" + (f", line {line}" if line else "") + (f", key '{key}'" if key else "")
        super().__init__(f"{where}: {message}")


class UnknownRegistryError(WeightkeeperError):
    def __init__(self, name: str, known: list[str]) -> None:
        hint = f"known registries: {', '.join(known)}" if known else "no registry is configured yet"
        super().__init__(f"no registry named '{name}' ({hint}); add one with `weightkeeper registry add`")


class RegistryUnavailable(WeightkeeperError):
    """The registry could not be listed or asked right now; nothing may be concluded from silence."""


class LeaseHeld(WeightkeeperError):
    """Another process is scanning this registry right now."""


class LedgerError(WeightkeeperError):
    """The ledger database cannot be used as it is."""
