"""Reading the ledger back: event history and statistics, and the rows the agents, the CLI and the console read.

Every query outside the scan engine and the review queue lives here, named by what it answers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from weightkeeper.domain import EventKind
from weightkeeper.errors import UnknownRegistryError, WeightkeeperError
from weightkeeper.ledger.database import NO_LIMIT, json_member
from weightkeeper.ledger.store import Ledger


def require_registry(ledger: Ledger, name: str, configured: Iterable[str]) -> None:
    """Refuse a registry name neither the ledger nor the config knows: a typo must not read as "nothing happened"."""
    known = {row[0] for row in ledger.conn.execute("SELECT name FROM registries")} | set(configured)
    if name not in known:
        raise UnknownRegistryError(name, sorted(known))


def require_model(ledger: Ledger, name: str) -> None:
    """Refuse a model name the ledger never recorded, under any name the model had."""
    if ledger.conn.execute("SELECT 1 FROM observations WHERE name = ? UNION ALL SELECT 1 FROM models WHERE name = ?"
                           " LIMIT 1", (name, name)).fetchone() is None:
        raise WeightkeeperError(f"the ledger knows no model named '{name}' (names are as the registry lists them, "
                                "e.g. owner/model); `weightkeeper ledger` shows the models it recorded")


@dataclass(frozen=True, slots=True)
class EventFilter:
    kinds: tuple[str, ...] = ()
    registry: str | None = None
    model: str | None = None
    since: str | None = None
    scan_id: int | None = None


def events(ledger: Ledger, where: EventFilter = EventFilter()) -> list[dict[str, Any]]:
    """Events oldest first, each with the model's name as it was at that event."""
    clauses, params = [], []
    if where.kinds:
        clauses.append(f"e.kind IN ({','.join('?' * len(where.kinds))})")
        params.extend(where.kinds)
    if where.registry:
        clauses.append("r.name = ?")
        params.append(where.registry)
    if where.model:
        # Every name a model ever had finds its whole history, renames included.
        clauses.append("e.model_id IN (SELECT model_id FROM observations WHERE name = ?)")
        params.append(where.model)
    if where.since:
        clauses.append("e.at >= ?")
        params.append(where.since)
    if where.scan_id is not None:
        clauses.append("e.scan_id = ?")
        params.append(where.scan_id)
    rows = ledger.conn.execute(
        "SELECT e.id, e.at, e.kind, r.name AS registry, COALESCE(o.name, m.name) AS model, e.scan_id,"
        " e.observation_id, e.prior_observation_id, e.detail, o.visibility"
        " FROM events e JOIN registries r ON r.id = e.registry_id"
        " LEFT JOIN models m ON m.id = e.model_id LEFT JOIN observations o ON o.id = e.observation_id"
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + " ORDER BY e.id",
        params,
    )
    return [
        {
            "id": row["id"],
            "at": row["at"],
            "event": row["kind"],
            "registry": row["registry"],
            "model": row["model"],
            "scan": row["scan_id"],
            "observation": row["observation_id"],
            "prior_observation": row["prior_observation_id"],
            "detail": json.loads(row["detail"]),
        }
        for row in rows
    ]


def kinds_after(ledger: Ledger, seen: int) -> list[tuple[str, str]]:
    """(kind, the model's name at the event) of the ledger's events after its first `seen`, in the order recorded."""
    return [(row["kind"], row["model"]) for row in ledger.conn.execute(
        "SELECT e.kind, COALESCE(o.name, m.name) AS model FROM events e LEFT JOIN models m ON m.id = e.model_id"
        " LEFT JOIN observations o ON o.id = e.observation_id ORDER BY e.id LIMIT ? OFFSET ?", (NO_LIMIT, seen))]


def stats(ledger: Ledger, *, registry: str | None = None, top: int = 10) -> dict[str, Any]:
    """How many models persist, were deleted or withdrawn (deleted or hidden, the registry does not tell this
    watcher which), were archived; events per ISO week; lineages most affected."""
    scope, params = ("WHERE r.name = ?", [registry]) if registry else ("", [])
    conn = ledger.conn
    models = conn.execute(
        "SELECT COUNT(*) AS tracked,"
        " COUNT(CASE WHEN m.state = 'present' THEN 1 END) AS persist,"
        " COUNT(CASE WHEN m.state = 'suspected_missing' THEN 1 END) AS suspected_missing,"
        " COUNT(CASE WHEN m.state = 'deleted' THEN 1 END) AS deleted,"
        " COUNT(CASE WHEN m.state = 'deleted' AND a.model_id IS NULL THEN 1 END) AS deleted_unarchived,"
        " COUNT(CASE WHEN m.state = 'withdrawn' THEN 1 END) AS withdrawn,"
        " COUNT(CASE WHEN a.model_id IS NOT NULL THEN 1 END) AS archived,"
        " COUNT(CASE WHEN m.state = 'present' AND m.visibility != 'public' THEN 1 END) AS hidden"
        " FROM models m JOIN registries r ON r.id = m.registry_id"
        f" LEFT JOIN (SELECT DISTINCT model_id FROM events WHERE kind = '{EventKind.ARCHIVE_VERIFIED}') a"
        f" ON a.model_id = m.id {scope}",
        params,
    ).fetchone()
    weekly: dict[str, dict[str, int]] = {}
    for day, kind, count in conn.execute(
        "SELECT substr(e.at, 1, 10) AS day, e.kind, COUNT(*) FROM events e"
        f" JOIN registries r ON r.id = e.registry_id {scope} GROUP BY day, e.kind ORDER BY day",
        params,
    ):
        year, week, _ = date.fromisoformat(day).isocalendar()
        counts = weekly.setdefault(f"{year}-W{week:02d}", {})
        counts[kind] = counts.get(kind, 0) + count
    lineages = conn.execute(
        "SELECT l.base_model, COUNT(DISTINCT m.id) AS affected,"
        " COUNT(DISTINCT CASE WHEN m.state = 'deleted' THEN m.id END) AS deleted,"
        " COUNT(DISTINCT CASE WHEN m.state = 'withdrawn' THEN m.id END) AS withdrawn"
        " FROM models m JOIN registries r ON r.id = m.registry_id"
        " JOIN observation_lineage l ON l.observation_id = m.last_observation_id"
        " WHERE (m.state != 'present' OR m.visibility != 'public' OR EXISTS"
        f"  (SELECT 1 FROM events e WHERE e.model_id = m.id AND e.kind = '{EventKind.DEPRECATION_ANNOUNCED}'))"
        + (" AND r.name = ?" if registry else "")
        + " GROUP BY l.base_model ORDER BY affected DESC, deleted DESC, l.base_model LIMIT ?",
        [*params, top],
    ).fetchall()
    return {
        "models": dict(models),
        "weeks": weekly,
        "top_lineages": [dict(row) for row in lineages],
    }


def latest_unproposed_events(ledger: Ledger, kinds: Iterable[str], *, model: str | None = None) -> list[sqlite3.Row]:
    """Per model, its latest event of `kinds` when no proposal was drafted for that event yet (neither as a
    review's own event nor as one it covers): id, registry, model_id, model (its name at the event), kind."""
    marks = ", ".join("?" * len(kinds := tuple(kinds)))
    return ledger.conn.execute(
        "SELECT e.id, g.name AS registry, m.id AS model_id, COALESCE(o.name, m.name) AS model, e.kind"
        " FROM events e JOIN models m ON m.id = e.model_id JOIN registries g ON g.id = e.registry_id"
        " LEFT JOIN observations o ON o.id = e.observation_id AND o.found = 1"
        f" WHERE e.id IN (SELECT MAX(id) FROM events WHERE kind IN ({marks}) GROUP BY model_id)"
        " AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.event_id = e.id)"
        " AND NOT EXISTS (SELECT 1 FROM review_members x WHERE x.event_id = e.id)"
        + (" AND (m.name = ? OR o.name = ?)" if model else "") + " ORDER BY e.id",
        (*kinds, *((model, model) if model else ())),
    ).fetchall()


def event_context(ledger: Ledger, event_id: int) -> sqlite3.Row | None:
    """An event with its registry and its model as they are now, the model named as it was at the event."""
    return ledger.conn.execute(
        "SELECT e.id, e.at, e.kind, e.model_id, e.detail, r.name AS registry, r.kind AS registry_kind,"
        " r.location, COALESCE(o.name, m.name) AS model, m.name AS current_name, m.key, m.state, m.first_seen,"
        " m.last_seen, m.last_observation_id"
        " FROM events e JOIN registries r ON r.id = e.registry_id"
        " LEFT JOIN models m ON m.id = e.model_id LEFT JOIN observations o ON o.id = e.observation_id"
        " WHERE e.id = ?",
        (event_id,),
    ).fetchone()


def observed_at(ledger: Ledger, observation_id: int) -> str:
    return ledger.conn.execute("SELECT observed_at FROM observations WHERE id = ?", (observation_id,)).fetchone()[0]


def dependents(ledger: Ledger, model_id: int) -> list[sqlite3.Row]:
    """Models (of any registry) whose latest found observation names this model, under any name it had, as a base
    model: id, name, observation_id, by name."""
    return ledger.conn.execute(
        "SELECT DISTINCT m.id, m.name, o.id AS observation_id FROM observation_lineage l"
        " JOIN observations o ON o.id = l.observation_id JOIN models m ON m.id = o.model_id"
        " WHERE l.base_model IN (SELECT name FROM observations WHERE model_id = ?)"
        " AND m.last_observation_id = o.id AND m.id != ? ORDER BY m.name, m.id",
        (model_id, model_id),
    ).fetchall()


def usage_history(ledger: Ledger, model_id: int) -> list[sqlite3.Row]:
    """The model's found observations oldest first: id, observed_at, downloads, likes."""
    return ledger.conn.execute(
        "SELECT id, observed_at, downloads, likes FROM observations WHERE model_id = ? AND found = 1 ORDER BY id",
        (model_id,),
    ).fetchall()


def latest_events(ledger: Ledger, model_id: int, limit: int) -> tuple[int, list[sqlite3.Row]]:
    """How many events the model has, and its latest `limit` (id, kind, at) oldest first."""
    total = ledger.conn.execute("SELECT COUNT(*) FROM events WHERE model_id = ?", (model_id,)).fetchone()[0]
    rows = ledger.conn.execute("SELECT id, kind, at FROM events WHERE model_id = ? ORDER BY id DESC LIMIT ?",
                               (model_id, limit)).fetchall()
    return total, rows[::-1]


def model_keys(ledger: Ledger) -> list[str]:
    """Every model's stable key (a Hub `_id`, a folder's path): words a letter must never show its reader."""
    return [row[0] for row in ledger.conn.execute("SELECT key FROM models")]


def archived_model(ledger: Ledger, object_id: str) -> tuple[int, int] | None:
    """(registry id, model id) of the model an archive object holds: the one its verified archiving was recorded
    on, whatever the model is called now and whichever model holds its old name."""
    object_of = json_member(ledger.dialect, "detail", "object_id")
    row = ledger.conn.execute(
        f"SELECT registry_id, model_id FROM events WHERE kind = ? AND {object_of} = ? ORDER BY id DESC LIMIT 1",
        (EventKind.ARCHIVE_VERIFIED.value, object_id)).fetchone()
    return (row[0], row[1]) if row else None


def scan_unfinished(ledger: Ledger, registry: str) -> bool:
    """Whether the registry has a scan that did not finish (its next scan resumes it)."""
    return ledger.conn.execute(
        "SELECT 1 FROM scans s JOIN registries r ON r.id = s.registry_id WHERE r.name = ? AND s.phase != 'done'",
        (registry,),
    ).fetchone() is not None


def last_scan(ledger: Ledger, registry: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The registry's latest scan (its row) and that scan's problems' messages; (None, []) before its first."""
    scan = ledger.conn.execute(
        "SELECT s.* FROM scans s JOIN registries r ON r.id = s.registry_id WHERE r.name = ?"
        " ORDER BY s.id DESC LIMIT 1", (registry,)).fetchone()
    if scan is None:
        return None, []
    return dict(scan), [row["message"] for row in ledger.conn.execute(
        "SELECT message FROM problems WHERE scan_id = ? ORDER BY id", (scan["id"],))]


def registry_names(ledger: Ledger) -> list[str]:
    """The registries the ledger recorded, by name."""
    return [row["name"] for row in ledger.conn.execute("SELECT name FROM registries ORDER BY name")]


def fixity_checks(ledger: Ledger) -> dict[str, tuple[str, str]]:
    """Per archived object id, its latest fixity check: (event kind, at)."""
    return {json.loads(row["detail"])["object_id"]: (row["kind"], row["at"]) for row in ledger.conn.execute(
        "SELECT kind, at, detail FROM events WHERE kind IN (?, ?) ORDER BY id",
        (EventKind.FIXITY_OK, EventKind.FIXITY_FAILED))}


ROW_TABLES = {"model": "models", "observation": "observations", "event": "events"}


def ledger_row(ledger: Ledger, noun: str, row_id: int, columns: Sequence[str]) -> dict[str, Any] | None:
    """`columns` of the model, observation or event `row_id` (as a source names it: `observation 812`), or None."""
    if noun not in ROW_TABLES or not all(column.isidentifier() for column in columns):
        raise ValueError(f"no ledger rows of {noun!r} with columns {list(columns)}")
    row = ledger.conn.execute(f"SELECT {', '.join(columns)} FROM {ROW_TABLES[noun]} WHERE id = ?", (row_id,)).fetchone()
    return dict(row) if row is not None else None
