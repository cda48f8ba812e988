"""Registry adapters, one class per kind, all keeping `weightkeeper.registry.RegistryAdapter`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from weightkeeper.config import RegistryConfig
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import AdapterCache, DigestCache, RegistryAdapter

if TYPE_CHECKING:  # the HTTP module (httpx) is imported by the adapters that need it
    from tools.registries.http import WaitReporter


def registry_token(config: RegistryConfig, environ: Mapping[str, str] = os.environ) -> str | None:
    """The token from the environment variable the config names; None when it names none."""
    if config.token_env is None:
        return None
    token = environ.get(config.token_env)
    if not token:
        raise RegistryUnavailable(
            f"registry '{config.name}' reads its token from ${config.token_env}, which is not set; "
            f"export {config.token_env}=... or remove token_env from its table in weightkeeper.toml"
        )
    return token


def open_registry(config: RegistryConfig, *, digests: DigestCache, cache: AdapterCache,
                  on_wait: WaitReporter | None = None, environ: Mapping[str, str] = os.environ) -> RegistryAdapter:
    """The adapter for a configured registry; each kind's module is imported only when used."""
    token = registry_token(config, environ)
    if config.kind == "local":
        from tools.registries.local import LocalFolderRegistry

        return LocalFolderRegistry(Path(config.settings["path"]), digests)
    if config.kind == "hf":
        from tools.registries.huggingface import HubRegistry

        return HubRegistry(config.setting("endpoint"), author=config.setting("author"),
                           search=config.setting("search"), filter=config.setting("filter"),
                           files=config.setting("files"), token=token, cache=cache, on_wait=on_wait)
    if config.kind == "openai":
        from tools.registries.openai_finetunes import OpenAIRegistry

        return OpenAIRegistry(config.setting("base_url"), api_key=token,
                              deprecations=config.setting("deprecations"), on_wait=on_wait)
    if config.kind == "mlflow":
        from tools.registries.mlflow_models import MLflowRegistry

        return MLflowRegistry(config.setting("url"), token=token, on_wait=on_wait)
    if config.kind == "ollama":
        from tools.registries.ollama import OllamaRegistry

        return OllamaRegistry(config.setting("url"), on_wait=on_wait, cache=cache)
    raise ValueError(f"registry kind {config.kind!r} has no adapter")
