"""Where weightkeeper keeps its config, ledger and everything else."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "WEIGHTKEEPER_HOME"
CONFIG_NAME = "weightkeeper.toml"
LEDGER_NAME = "ledger.sqlite3"
MEMORY_NAME = "memory"  # the embedded Chroma store
ARCHIVE_NAME = "archive"  # the archive: its OCFL storage root, and staging beside it


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--home` wins, then $WEIGHTKEEPER_HOME, then the platform's user data directory."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().resolve()
    from platformdirs import user_data_path

    return user_data_path("weightkeeper", appauthor=False)
