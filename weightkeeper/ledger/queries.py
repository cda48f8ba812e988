"""Reading the ledger back: event history and statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from collections.abc import Iterable

from weightkeeper.domain import EventKind
from weightkeeper.errors import UnknownRegistryError, WeightkeeperError
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
        " LEFT JOIN observations o ON o.id = e.observation_id ORDER BY e.id LIMIT -1 OFFSET ?", (seen,))]


def stats(ledger: Ledger, *, registry: str | None = None, top: int = 10) -> dict[str, Any]:
    """How many models persist, were deleted or withdrawn (deleted or hidden, the registry does not tell this
    watcher which), were archived; events per ISO week; lineages most affected."""
    scope, params = ("WHERE r.name = ?", [registry]) if registry else ("", [])
    conn = ledger.conn
    models = conn.execute(
        "SELECT COUNT(*) AS tracked,"
        " COALESCE(SUM(m.state = 'present'), 0) AS persist,"
        " COALESCE(SUM(m.state = 'suspected_missing'), 0) AS suspected_missing,"
        " COALESCE(SUM(m.state = 'deleted'), 0) AS deleted,"
        " COALESCE(SUM(m.state = 'deleted' AND a.model_id IS NULL), 0) AS deleted_unarchived,"
        " COALESCE(SUM(m.state = 'withdrawn'), 0) AS withdrawn,"
        " COALESCE(SUM(a.model_id IS NOT NULL), 0) AS archived,"
        " COALESCE(SUM(m.state = 'present' AND m.visibility != 'public'), 0) AS hidden"
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
