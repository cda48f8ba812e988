"""Registry adapters, one module per kind, each declaring its `RegistryKind` (`weightkeeper.registry`).

Importing this package registers the built-in kinds, in this order; each module is light to import (the
libraries an adapter talks through are imported when it is built).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from weightkeeper.config import RegistryConfig
from weightkeeper.domain import ModelRecord
from weightkeeper.registry import AdapterCache, DigestCache, Opening, RegistryAdapter, WaitReporter, registry_kind

# Imported for the kinds they register, in the order `registry add --kind` and messages list them.
from tools.registries import local, huggingface, openai_finetunes, mlflow_models, ollama  # noqa: F401, I001


def open_registry(config: RegistryConfig, *, digests: DigestCache, cache: AdapterCache,
                  on_wait: WaitReporter | None = None, environ: Mapping[str, str] = os.environ) -> RegistryAdapter:
    """The adapter for a configured registry, built by its kind; the token is read from the environment now."""
    kind = registry_kind(config.kind)
    if kind is None:
        raise ValueError(f"registry kind {config.kind!r} has no adapter")
    return kind.adapter(config, Opening(digests, cache, on_wait, config.token(environ)))


def pinned_revision(kind: str, record: ModelRecord) -> str | None:
    """What an archive of `record` pins, the same when planned (`agents/documenter.py`) and when run: its
    kind's `pin`, by default the registry's revision or a local folder's file digests
    (`ModelRecord.pinned_revision`). None when nothing pins it."""
    spec = registry_kind(kind)
    return spec.pin(record) if spec is not None and spec.pin is not None else record.pinned_revision()
