"""Where weightkeeper keeps its config, ledger and everything else, and whether a command may use it."""

from __future__ import annotations

import os
from pathlib import Path

from weightkeeper.errors import WeightkeeperError

HOME_ENV = "WEIGHTKEEPER_HOME"
CONFIG_NAME = "weightkeeper.toml"
LEDGER_NAME = "ledger.sqlite3"
MEMORY_NAME = "memory"  # the embedded Chroma store
ARCHIVE_NAME = "archive"  # the archive: its OCFL storage root, and staging beside it
# What a read-only home still answers, named in the refusal of a command that writes.
READING_COMMANDS = "`ledger`, `stats`, `review list/show`, `registry list` and `archive list/show/verify`"


class HomeError(WeightkeeperError):
    """The home is not a folder this command can use."""


def is_url(location: str) -> bool:
    """Whether a store location is a PostgreSQL URL rather than a SQLite file's path."""
    return location.startswith(("postgresql://", "postgres://"))


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--home` wins, then $WEIGHTKEEPER_HOME, then the platform's user data directory."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().resolve()
    from platformdirs import user_data_path

    return user_data_path("weightkeeper", appauthor=False)


def created_home(home: Path) -> Path:
    """The home `init` and `demo` work in, created (with its parents) when it does not exist yet."""
    _not_under_a_file(home)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise HomeError(f"cannot create the home {home}: permission denied; give --home a folder you can "
                        "write") from None
    return writable_home(home)


def existing_home(home: Path) -> Path:
    """The home of any command but `init` and `demo`: it must exist, so a typo never starts an empty ledger."""
    _not_under_a_file(home)
    if not home.is_dir():
        raise HomeError(f"no weightkeeper home at {home}: the folder does not exist (a typo in --home or "
                        f"${HOME_ENV}?); `weightkeeper init --home {home}` creates one")
    return home


def writable_home(home: Path) -> Path:
    """An existing home a command may record in."""
    if not os.access(home, os.W_OK | os.X_OK) or not all(
            os.access(path, os.W_OK) for path in (home / CONFIG_NAME, home / LEDGER_NAME) if path.exists()):
        raise HomeError(f"the home {home} is read-only for you: this command records in it; run it as the "
                        f"home's owner or on a copy ({READING_COMMANDS} read it as it is)")
    return home


def _not_under_a_file(home: Path) -> None:
    for path in (home, *home.parents):
        if path.exists():
            if not path.is_dir():
                raise HomeError(f"{path} is a file, not a folder: give --home (or ${HOME_ENV}) a folder; "
                                "`weightkeeper init --home DIR` creates one")
            return
