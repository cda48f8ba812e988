"""A registry's models as the ledger keeps them: one row per model (its name, key, state, visibility, the digest
of its last observed record), the observations that justified each row, and the events derived in bulk when
models first appear.

The scan engine (`weightkeeper.scan`) decides what a listing means; these are the reads and writes it needs,
named. Nothing here opens a transaction: the engine commits a batch's models with its bookkeeping.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

from weightkeeper.domain import FIRST_SEEN, EventKind, ModelState, RecordRow, canonical_json
from weightkeeper.ledger.database import Row
from weightkeeper.ledger.store import Ledger, now_iso

ModelRow = sqlite3.Row | Row  # columns as each query names them; by name or by position
IDS_PER_QUERY = 100

# Where the dialects differ, both versions. The items of a JSON array parameter as rows `j` (`j.value`), joined
# with what follows (on SQLite, CROSS JOIN keeps this order: probe the index once per item, never scan the models):
_JOINED_ITEMS = {"sqlite": "json_each(?) j CROSS JOIN",
                 "postgres": "jsonb_array_elements_text(CAST(? AS jsonb)) j(value) JOIN"}
# Of listed (name, digest) pairs, the ids of the present models matching one and the positions of those matching
# none, both as JSON arrays (one probe of the name index per pair, aggregated in SQL).
_UNCHANGED = {
    "sqlite": "SELECT json_group_array(m.id) FILTER (WHERE m.id IS NOT NULL),"
              " json_group_array(j.key) FILTER (WHERE m.id IS NULL)"
              " FROM json_each(?) j LEFT JOIN models m ON m.registry_id = ?"
              " AND m.name = json_extract(j.value, '$[0]') AND m.state = 'present'"
              " AND m.digest = json_extract(j.value, '$[1]')",
    "postgres": "SELECT COALESCE(json_agg(m.id) FILTER (WHERE m.id IS NOT NULL), '[]')::text,"
                " COALESCE(json_agg(j.position - 1) FILTER (WHERE m.id IS NULL), '[]')::text"
                " FROM jsonb_array_elements(CAST(? AS jsonb)) WITH ORDINALITY j(value, position)"
                " LEFT JOIN models m ON m.registry_id = ? AND m.name = j.value ->> 0 AND m.state = 'present'"
                " AND m.digest = CAST(j.value ->> 1 AS bigint)",
}
# A JSON object of an event's detail made in SQL, and JSON's true in it.
_JSON_OBJECT = {"sqlite": ("json_object", "json('true')"), "postgres": ("json_build_object", "true")}


def json_array(items: list) -> str:
    """Names, keys or (name, digest) pairs as JSON text for `json_each`, by orjson: a first scan sends each
    listed model three times (its name and digest, its name, its key)."""
    return canonical_json(items).decode()


def json_extend(array: str, more: list[int]) -> str:
    """The JSON array text `array` with `more` appended, without parsing what it holds."""
    if not more:
        return array
    return f"{array[:-1]}{',' if array != '[]' else ''}{','.join(map(str, more))}]"


class ModelStore:
    """The models of one registry of the ledger."""

    def __init__(self, ledger: Ledger, registry_id: int) -> None:
        self.ledger, self.conn, self.registry_id = ledger, ledger.conn, registry_id

    # -- what the listing is compared with

    def present_digests(self) -> frozenset[int]:
        """The record digests of the present models: a listed record with one of them is unchanged."""
        return frozenset(digest for (digest,) in self.conn.execute(
            "SELECT digest FROM models WHERE registry_id = ? AND state = 'present'", (self.registry_id,)))

    def present_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM models WHERE registry_id = ? AND state = 'present'",
                                 (self.registry_id,)).fetchone()[0]

    def unchanged(self, listed: list[tuple[str, int]]) -> tuple[str, list[int]]:
        """Of the listed (name, digest) pairs, the ids of the present models of that name with that digest (as a
        JSON array) and the positions of the pairs that matched none. One probe of the name index per pair,
        aggregated in SQL."""
        matched, unmatched = self.conn.execute(_UNCHANGED[self.conn.dialect],
                                               (json_array(listed), self.registry_id)).fetchone()
        return matched, json.loads(unmatched)

    def holders(self, names: list[str]) -> dict[str, list[ModelRow]]:
        """Every model that holds or held each name (name, id, key, state, last_observation_id), present ones last."""
        holders: dict[str, list[ModelRow]] = {}
        for model in self.conn.execute(
            f"SELECT m.name, m.id, m.key, m.state, m.last_observation_id FROM {_JOINED_ITEMS[self.conn.dialect]}"
            " models m ON m.registry_id = ? AND m.name = j.value ORDER BY m.state = 'present', m.id",
            (json_array(names), self.registry_id),
        ):
            holders.setdefault(model["name"], []).append(model)
        return holders

    def latest_of_name(self, name: str) -> int | None:
        """The model a name stands for: the present one, else the newest that held it."""
        row = self.conn.execute(
            "SELECT id FROM models WHERE registry_id = ? AND name = ? ORDER BY state = 'present' DESC, id DESC",
            (self.registry_id, name),
        ).fetchone()
        return row and row["id"]

    def present_holder(self, name: str) -> ModelRow | None:
        """The present model of a name (id, last_observation_id)."""
        return self.conn.execute(
            "SELECT id, last_observation_id FROM models WHERE registry_id = ? AND name = ? AND state = 'present'",
            (self.registry_id, name)).fetchone()

    def known_keys(self, keys: list[str]) -> set[str]:
        """Which of `keys` a model not deleted has."""
        return {key for (key,) in self.conn.execute(
            f"SELECT DISTINCT m.key FROM {_JOINED_ITEMS[self.conn.dialect]} models m"
            " ON m.registry_id = ? AND m.key = j.value AND m.state != 'deleted'",
            (json_array(keys), self.registry_id),
        )}

    def of_key(self, key: str) -> list[ModelRow]:
        """The models not deleted with this key (id, name, state, last_observation_id), present ones first."""
        return self.conn.execute(
            "SELECT id, name, state, last_observation_id FROM models WHERE registry_id = ? AND key = ?"
            # A model listed last time before one long suspected: both may share the key (two tags).
            " AND state != 'deleted' ORDER BY state = 'present' DESC, id",
            (self.registry_id, key),
        ).fetchall()

    def present_ids(self) -> Iterator[int]:
        present = self.conn.cursor()
        present.row_factory = None  # plain tuples: a row per present model
        present.execute("SELECT id FROM models WHERE registry_id = ? AND state = 'present'", (self.registry_id,))
        return (model_id for (model_id,) in present)

    def with_last_source(self, model_ids: list[int]) -> list[ModelRow]:
        """Models (id, name, last_observation_id, state, visibility) with the source of their last observation."""
        rows = []
        for start in range(0, len(model_ids), IDS_PER_QUERY):
            ids = model_ids[start : start + IDS_PER_QUERY]
            rows += self.conn.execute(
                "SELECT m.id, m.name, m.last_observation_id, m.state, m.visibility, o.source FROM models m"
                f" JOIN observations o ON o.id = m.last_observation_id WHERE m.id IN ({', '.join('?' * len(ids))})"
                " ORDER BY m.id", ids,
            ).fetchall()
        return rows

    def unresolved(self) -> list[tuple[int, str, int, str]]:
        """(id, name, last_observation_id, state) of the suspected missing, then the withdrawn models."""
        # The state is written into the query, or SQLite cannot use its partial index (which it is told to).
        return [tuple(row) for state, index in (("suspected_missing", "models_suspected"),
                                                ("withdrawn", "models_withdrawn"))
                for row in self.conn.execute(
                    f"SELECT id, name, last_observation_id, state FROM models"
                    f"{f' INDEXED BY {index}' if self.conn.dialect == 'sqlite' else ''}"
                    f" WHERE registry_id = ? AND state = '{state}' ORDER BY id", (self.registry_id,))]

    def visibility(self, model_id: int) -> str:
        return self.conn.execute("SELECT visibility FROM models WHERE id = ?", (model_id,)).fetchone()[0]

    def other_name_of_key(self, model_id: int) -> str | None:
        """A present model's name with the same key as this one (two Ollama tags of one manifest)."""
        row = self.conn.execute(
            "SELECT other.name FROM models gone JOIN models other ON other.registry_id = gone.registry_id"
            " AND other.key = gone.key AND other.id != gone.id AND other.state = 'present'"
            " WHERE gone.id = ? ORDER BY other.id LIMIT 1", (model_id,)).fetchone()
        return row and row[0]

    # -- what the scan writes

    def appear(self, scan_id: int, new: list[tuple[RecordRow, int]]) -> list[int]:
        """Record new models (record row, digest), in bulk: a first scan meets every model of the registry here.

        Their `appeared` events are derived from their observations in one SQL statement rather than
        built one by one in Python; so are the `deprecation_announced` of those listed with a shutdown
        date, marked `first_seen`: the announcement was made before the ledger saw the model, not when.
        """
        if not new:
            return []
        now = now_iso()
        first_model, first = self.ledger.reserve_ids("models", len(new)), self.ledger.reserve_ids("observations", len(new))
        last = first + len(new) - 1
        model_ids = list(range(first_model, first_model + len(new)))
        self.conn.executemany(
            "INSERT INTO models (id, registry_id, name, key, state, visibility, digest, last_observation_id, first_seen,"
            " last_seen) VALUES (?, ?, ?, ?, 'present', ?, ?, ?, ?, ?)",
            [(model_id, self.registry_id, row.name, row.key, row.visibility, digest, first + i, now, now)
             for i, (model_id, (row, digest)) in enumerate(zip(model_ids, new))],
        )
        self.ledger.add_observations(
            scan_id, [(model_id, row, digest) for model_id, (row, digest) in zip(model_ids, new)], first_id=first)
        json_object, true = _JSON_OBJECT[self.conn.dialect]
        self.conn.execute(
            "INSERT INTO events (at, kind, registry_id, model_id, scan_id, observation_id, detail)"
            " SELECT observed_at, ?, ?, model_id, scan_id, id, CASE WHEN shutdown_date IS NULL"
            f" THEN {json_object}('visibility', visibility)"
            f" ELSE {json_object}('shutdown_date', shutdown_date, 'visibility', visibility) END"
            " FROM observations WHERE id BETWEEN ? AND ? ORDER BY id ON CONFLICT DO NOTHING",
            (EventKind.APPEARED.value, self.registry_id, first, last))
        self.conn.execute(
            "INSERT INTO events (at, kind, registry_id, model_id, scan_id, observation_id, detail)"
            f" SELECT observed_at, ?, ?, model_id, scan_id, id, {json_object}('{FIRST_SEEN}', {true},"
            " 'shutdown_date', shutdown_date, 'successor', successor)"
            " FROM observations WHERE id BETWEEN ? AND ? AND shutdown_date IS NOT NULL ORDER BY id"
            " ON CONFLICT DO NOTHING",
            (EventKind.DEPRECATION_ANNOUNCED.value, self.registry_id, first, last))
        return model_ids

    def seen_unchanged(self, model_id: int, digest: int) -> None:
        """Seen again as recorded; the digest is stored anew (an earlier weightkeeper computed it otherwise)."""
        self.conn.execute("UPDATE models SET digest = ?, last_seen = ? WHERE id = ?", (digest, now_iso(), model_id))

    def update(self, model_id: int, columns: dict[str, object]) -> None:
        """Set only the columns that change: an indexed column in the SET list costs a write to its index."""
        self.conn.execute(f"UPDATE models SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                          (*columns.values(), model_id))

    def set_state(self, model_id: int, state: ModelState) -> None:
        self.conn.execute("UPDATE models SET state = ? WHERE id = ?", (state.value, model_id))

    def free_name(self, model_id: int) -> None:
        """Move a renamed model off its old name, so that another can take it before it takes its new one."""
        # A name no registry lists (PostgreSQL's text holds no NUL, so not "\0").
        self.conn.execute("UPDATE models SET name = ? WHERE id = ?", (f"\x01renaming {model_id}", model_id))

    def suspect(self, model_ids: list[int], last_seen: str | None) -> None:
        """Mark models suspected missing, last seen at `last_seen` (never before their first sighting)."""
        self.conn.executemany(
            "UPDATE models SET state = 'suspected_missing', last_seen = CASE WHEN first_seen > COALESCE(?, last_seen)"
            " THEN first_seen ELSE COALESCE(?, last_seen) END WHERE id = ?",
            [(last_seen, last_seen, model_id) for model_id in model_ids],
        )

    def observed_visibility(self, observation_id: int) -> str:
        return self.conn.execute("SELECT visibility FROM observations WHERE id = ?", (observation_id,)).fetchone()[0]
