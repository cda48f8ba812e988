"""`weightkeeper store migrate`: a home's SQLite ledger copied into PostgreSQL, and the copy verified.

The copy is `weightkeeper.ledger.copying`'s; this prints what each table holds on both sides and says what to do
next. The SQLite file is only read: until the home names the new store (`[store] url`), nothing changes for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from weightkeeper import config
from weightkeeper.errors import WeightkeeperError
from weightkeeper.ledger import Ledger
from weightkeeper.home import is_url
from weightkeeper.ledger.database import shown_url
from weightkeeper.words import counted


def store_migrate(home: Path, url: str) -> bool:
    """Copy the home's SQLite ledger into the empty PostgreSQL database at `url`; print a summary; return whether
    every table's rows and digest are the same on both sides."""
    from weightkeeper.ledger.copying import copy_ledger

    if not is_url(url):
        raise WeightkeeperError(f"--to {url!r} is not a PostgreSQL URL; give postgresql://user@host[:port]/database")
    source = config.load(home).ledger_path
    if not source.is_file():
        raise WeightkeeperError(f"there is no SQLite ledger at {source} to copy ([ledger] path of {home})")
    print(f"copying {source} into {shown_url(url)}", file=sys.stderr)
    with Ledger(source, read_only=True) as ledger:
        tables = copy_ledger(ledger, url, progress=lambda table, rows: print(
            f"  {table}: {counted(rows, 'row')}", file=sys.stderr))
    for table in tables:
        mark = "ok" if table.same else "MISMATCH"
        print(f"{table.table:<20} {table.rows:>12,} {table.copied_rows:>12,}  {table.copied_digest[:16]}  {mark}")
    import asyncio

    from weightkeeper.ledger.checkpoints import copy_checkpoints

    checkpoints, copied = asyncio.run(copy_checkpoints(home, url))
    print(f"{'checkpoints':<20} {checkpoints:>12,} {copied:>12,}  {'':16}  {'ok' if checkpoints == copied else 'MISMATCH'}")
    wrong = [table.table for table in tables if not table.same] + (["checkpoints"] if checkpoints != copied else [])
    if wrong:
        print(f"weightkeeper: error: the copy differs from {source} in {', '.join(wrong)}; the SQLite ledger is "
              "unchanged and still the home's: drop the database and try again", file=sys.stderr)
        return False
    print(f"copied and verified {counted(sum(table.rows for table in tables), 'row')} in "
          f"{counted(len(tables), 'table')}; {source} is unchanged. To use the copy, set `url = "
          f"\"{shown_url(url)}\"` under [store] in {config.config_path(home)} (its password in the variable "
          "`password_env` names), or $WEIGHTKEEPER_DATABASE_URL")
    return True
