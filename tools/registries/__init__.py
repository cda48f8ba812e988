"""Registry adapters, one class per kind, all keeping `weightkeeper.registry.RegistryAdapter`."""

from __future__ import annotations

from pathlib import Path

from weightkeeper.config import RegistryConfig
from weightkeeper.registry import DigestCache, RegistryAdapter


def open_registry(config: RegistryConfig, digests: DigestCache) -> RegistryAdapter:
    """The adapter for a configured registry; each kind's module is imported only when used."""
    if config.kind == "local":
        from tools.registries.local import LocalFolderRegistry

        return LocalFolderRegistry(Path(config.settings["path"]), digests)
    raise ValueError(f"registry kind {config.kind!r} has no adapter")
