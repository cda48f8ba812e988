"""The workers' job queue in PostgreSQL: procrastinate's tables (they are procrastinate's, not ours; only their
schema is applied here, once per database)."""

from __future__ import annotations

# Any constant of ours: the advisory lock that makes workers starting together apply the schema once.
SCHEMA_LOCK = 0x77_6B_6A_6F_62_73  # "wkjobs"


def apply_schema(url: str, schema: str) -> bool:
    """Apply procrastinate's `schema` to the database at `url` unless its tables are there; whether it was applied.
    Two workers starting at once take turns under an advisory lock, so the second finds the tables."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            if conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is not None:
                return False
            conn.execute(schema.encode())  # bytes: psycopg sends it as it is, several statements at once
            return True
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
