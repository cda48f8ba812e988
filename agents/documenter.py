"""The documenter: what the ledger can say about the model behind one event, as citable evidence.

It reads the ledger only (never a registry), so every item can be checked against the rows
named in its `source`. Registry text (names, cards, reasons) is untrusted: a card may hold
"ignore previous instructions" aimed at the advocate. Such values go into `facts` verbatim,
and into a `statement` only as one backticked, single-line, truncated quote, never as prose.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from urllib.parse import quote as quote_url
from typing import Any

from tools.registries import pinned_revision
from weightkeeper.domain import FIRST_SEEN, ModelRecord
from weightkeeper.errors import LedgerError
from weightkeeper.ledger import Ledger, queries
from weightkeeper.proposals import Dossier, Evidence, EvidenceItem
from weightkeeper.words import counted

QUOTE_CHARS = 120
MAX_DEPENDENTS = 20
MAX_TIMELINE = 30
MAX_DATASETS = 20
# A model's state as a sentence says it; `withdrawn` never reads as deleted.
STATE_WORDS = {
    "present": "present",
    "suspected_missing": "suspected missing",
    "withdrawn": "no longer public (deleted or made private: the registry does not tell us which)",
    "deleted": "deleted",
}


def build_evidence(ledger: Ledger, event_id: int, related: Sequence[tuple[int, float]] = ()) -> Evidence:
    """Everything a proposal about `event_id` may cite, numbered E1, E2, … in a fixed order of kinds
    (identity, event, related, lineage_up, lineage_down, usage, card, files, timeline, dates), and what
    the ledger cannot say. `related` are the (event id, similarity) of near-duplicate models of the same
    owner that the proposal covers too (agents/coordinator.py `group_near_duplicates`)."""
    event = _event_row(ledger, event_id)
    # A gone lookup never moves `last_observation_id`: it is always the latest found observation.
    latest = event["last_observation_id"]
    record = ledger.load_record(latest)
    found = _Collector()
    read_at = queries.observed_at(ledger, latest)
    _identity(found, event, pinned_revision(event["registry_kind"], record), latest, read_at)
    _trigger(found, event)
    if event["state"] == "withdrawn":
        found.unknown("whether it was deleted or made private")
    for member_event, similarity in related:
        _related(found, _event_row(ledger, member_event), similarity)
    _lineage_up(found, event["model"], record, latest)
    _lineage_down(found, ledger, event["model_id"], event["model"])
    _usage(found, ledger, event["model_id"])
    _card(found, record, latest)
    _files(found, record, latest)
    _timeline(found, ledger, event["model_id"], event["model"])
    _dates(found, record, latest)
    return Evidence(
        registry=event["registry"],
        registry_kind=event["registry_kind"],
        model=event["model"],
        model_id=event["model_id"],
        event_id=event["id"],
        event_kind=event["kind"],
        items=tuple(found.items),
        unknowns=tuple(found.unknowns),
    )


def build_dossier(ledger: Ledger, recipient: str, events: Sequence[int],
                  related: Mapping[int, Sequence[tuple[int, float]]] | None = None, *, cooldown: str = "") -> Dossier:
    """The evidence of every event a proposal to `recipient` covers, in the order given (the lead first), with the
    public precedents a letter may cite; `related` maps an event to the near-duplicates grouped under it."""
    import prompts

    models = [build_evidence(ledger, event_id, (related or {}).get(event_id, ())) for event_id in events]
    return Dossier.of(recipient, models, prompts.precedents(), cooldown)


def impact(evidence: Evidence) -> dict[str, float]:
    """The figures the coordinator ranks events by. `days_to_shutdown` is left out when no shutdown
    date is known or the registry's date cannot be read as one."""
    usage = {item.facts["metric"]: item.facts["latest"] for item in evidence.items if item.kind == "usage"}
    dependents = next(item.facts["count"] for item in evidence.items if item.kind == "lineage_down")
    figures = {"downloads": float(usage.get("downloads", 0)), "likes": float(usage.get("likes", 0)),
               "dependents": float(dependents)}
    shutdown = next((item.facts["shutdown_date"] for item in evidence.items
                     if item.kind == "dates" and item.facts["shutdown_date"]), None)
    if shutdown is not None:
        at = next(item.facts["at"] for item in evidence.items if item.kind == "event")
        try:
            figures["days_to_shutdown"] = float((date.fromisoformat(shutdown[:10]) - date.fromisoformat(at[:10])).days)
        except ValueError:
            pass  # registry text that is no date: the ranking does without it
    return figures


class _Collector:
    """Items in the order they are found, each given the next id, and the unknowns met on the way."""

    def __init__(self) -> None:
        self.items: list[EvidenceItem] = []
        self.unknowns: list[str] = []

    def add(self, kind: str, statement: str, facts: dict[str, Any], source: str) -> None:
        self.items.append(EvidenceItem(f"E{len(self.items) + 1}", kind, statement, facts, source))

    def unknown(self, what: str) -> None:
        self.unknowns.append(what)


def quote(value: Any) -> str:
    """Registry text as a statement may show it: one line, no backticks, at most 120 characters, in backticks,
    so a reader (or a model) sees a quoted value and never an instruction."""
    text = " ".join(_plain(value).replace("`", "").split())
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 1] + "…"
    return f"`{text}`"


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_plain(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item) for item in value)
    return json.dumps(value)


def _quoted_list(values: list[str], shown: int) -> str:
    listed = ", ".join(quote(value) for value in values[:shown])
    return listed + (f" and {len(values) - shown:,} more" if len(values) > shown else "")


def _span(noun: str, ids: Iterable[int]) -> str:
    """`observation 5` or `observations 3–812`: where in the ledger a reader finds the rows."""
    ordered = sorted(ids)
    if len(ordered) == 1:
        return f"{noun} {ordered[0]}"
    return f"{noun}s {ordered[0]}–{ordered[-1]}"


def size_words(total: int) -> str:
    """A byte count as people say it: `16.0 GB`, `4.2 kB`, `512 bytes` (decimal units, as registries show them)."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if total >= scale:
            return f"{total / scale:.1f} {unit}"
    return counted(total, "byte")


def model_page(registry_kind: str, location: str, model: str) -> str | None:
    """The model's public page, for registries that have one (the Hub: its endpoint, from the registry's
    location `ENDPOINT/api/models?…`, and the repo id)."""
    if registry_kind != "hf" or "/api/models" not in location:
        return None
    return f"{location.split('/api/models')[0].rstrip('/')}/{quote_url(model, safe='/')}"


def _day(timestamp: str) -> str:
    return timestamp[:10]


def _event_row(ledger: Ledger, event_id: int) -> sqlite3.Row:
    row = queries.event_context(ledger, event_id)
    if row is None:
        raise LedgerError(f"no event {event_id} in the ledger; `weightkeeper events` lists the recorded ones")
    if row["model_id"] is None:
        raise LedgerError(f"event {event_id} ({row['kind']}) concerns no model, so there is no model to document")
    return row


def _identity(found: _Collector, event: sqlite3.Row, revision: str | None, observation_id: int, read_at: str) -> None:
    """Who the model is; with the revision its latest observation pins and that observation's id, which an archive
    action names (`agents/advocate.py`), also for registries that list no files (MLflow, OpenAI)."""
    renamed = f", now named {quote(event['current_name'])}," if event["current_name"] != event["model"] else ""
    found.add(
        "identity",
        f"{quote(event['model'])}{renamed} (key {quote(event['key'])}) in the {event['registry_kind']} registry "
        f"{quote(event['registry'])} was first seen {event['first_seen']}, last seen {event['last_seen']}, "
        f"and is now {STATE_WORDS.get(event['state'], event['state'])}.",
        {"registry": event["registry"], "registry_kind": event["registry_kind"], "model": event["model"],
         "current_name": event["current_name"], "key": event["key"], "first_seen": event["first_seen"],
         "last_seen": event["last_seen"], "state": event["state"], "revision": revision,
         "observation": observation_id, "read_at": read_at,
         "page": model_page(event["registry_kind"], event["location"], event["model"])},
        f"model {event['model_id']}",
    )


def _trigger(found: _Collector, event: sqlite3.Row) -> None:
    detail = json.loads(event["detail"])
    said = "; ".join(f"{key.replace('_', ' ')} {quote(value)}" for key, value in detail.items()
                     if value is not None and key != FIRST_SEEN)
    statement = (f"Event {event['id']} ({event['kind']}) was recorded for {quote(event['model'])} at {event['at']}"
                 + (f": {said}." if said else "."))
    if detail.get(FIRST_SEEN):  # recorded when the ledger first saw the model, not when the registry announced it
        statement += " The shutdown was already announced when the ledger first saw this model."
        found.unknown("when the shutdown was announced, which was before the ledger first saw the model")
    found.add(
        "event",
        statement,
        {"event_id": event["id"], "kind": event["kind"], "at": event["at"], "detail": detail},
        f"event {event['id']}",
    )


def _related(found: _Collector, event: sqlite3.Row, similarity: float) -> None:
    found.add(
        "related",
        f"{quote(event['model'])}, of the same owner, had event {event['id']} ({event['kind']}) at {event['at']}; "
        "its name, base models and card read nearly the same as this model's, so this proposal covers it too.",
        {"model": event["model"], "event_id": event["id"], "kind": event["kind"], "at": event["at"],
         "similarity": similarity},
        f"event {event['id']}",
    )


def _lineage_up(found: _Collector, name: str, record: ModelRecord, observation_id: int) -> None:
    if not record.lineage:
        found.unknown("the base models it was built from (the registry names none)")
    for base in record.lineage:
        relation = f"relation {quote(base.relation)}" if base.relation else "relation not given"
        found.add(
            "lineage_up",
            f"{quote(name)} names {quote(base.base_model)} as a base model ({relation}).",
            {"base_model": base.base_model, "relation": base.relation},
            f"observation {observation_id}",
        )


def _lineage_down(found: _Collector, ledger: Ledger, model_id: int, name: str) -> None:
    """Models (of any registry) whose latest found observation names this model, under any name it had,
    as a base model."""
    rows = queries.dependents(ledger, model_id)
    names = [row["name"] for row in rows]
    if names:
        statement = (f"{counted(len(names), 'model')} in the ledger {'names' if len(names) == 1 else 'name'} "
                     f"{quote(name)} as a base model"
                     + (f"; the first {MAX_DEPENDENTS} by name" if len(names) > MAX_DEPENDENTS else "")
                     + f": {_quoted_list(names[:MAX_DEPENDENTS], MAX_DEPENDENTS)}.")
        source = _span("observation", (row["observation_id"] for row in rows))
    else:
        statement = f"No model in the ledger names {quote(name)} as a base model."
        source = "observation_lineage (no match)"
    found.add("lineage_down", statement, {"count": len(names), "models": names[:MAX_DEPENDENTS]}, source)


def _usage(found: _Collector, ledger: Ledger, model_id: int) -> None:
    rows = queries.usage_history(ledger, model_id)
    missing = []
    for metric in ("downloads", "likes"):
        seen = [row for row in rows if row[metric] is not None]
        if not seen:
            missing.append(metric)
            continue
        first, latest = seen[0], seen[-1]
        peak = max(row[metric] for row in seen)
        found.add(
            "usage",
            f"The registry reported {first[metric]:,} {metric} on {_day(first['observed_at'])} and "
            f"{latest[metric]:,} on {_day(latest['observed_at'])}, at most {peak:,}, over "
            f"{counted(len(seen), 'observation')}.",
            {"metric": metric, "first": first[metric], "first_at": first["observed_at"], "latest": latest[metric],
             "latest_at": latest["observed_at"], "max": peak, "observations": len(seen)},
            _span("observation", (row["id"] for row in seen)),
        )
    if len(missing) == 2:
        found.unknown("usage figures")
    elif missing:
        found.unknown(f"{missing[0]} counts")


def _card(found: _Collector, record: ModelRecord, observation_id: int) -> None:
    card = record.card
    where, source = f"The model card in observation {observation_id}", f"observation {observation_id}"
    if card is not None and card.license:
        found.add("card", f"{where} gives the license {quote(card.license)}.", {"license": card.license}, source)
    else:
        found.unknown("license")
    if card is not None and card.emissions:
        found.add("card", f"{where} reports training emissions (co2_eq_emissions) {quote(card.emissions)}.",
                  {"emissions": card.emissions}, source)
    else:
        found.unknown("training compute and emissions")
    if card is not None and card.training:
        found.add("card", f"{where} describes the training as {quote(card.training)}.",
                  {"training": card.training}, source)
    else:
        found.unknown("training details")
    if card is not None and card.datasets:
        datasets = list(card.datasets)
        found.add("card", f"{where} names {counted(len(datasets), 'training dataset')}: "
                          f"{_quoted_list(datasets, MAX_DATASETS)}.", {"datasets": datasets}, source)
    else:
        found.unknown("training data")


def _files(found: _Collector, record: ModelRecord, observation_id: int) -> None:
    if not record.files:
        found.unknown("file list and sizes")
        return
    total = sum(entry.size for entry in record.files)
    hashed = sum(entry.sha256 is not None for entry in record.files)
    found.add(
        "files",
        f"Observation {observation_id} lists {counted(len(record.files), 'file')} totalling {total:,} bytes; "
        f"{hashed:,} of them have a known sha256.",
        {"count": len(record.files), "total_bytes": total, "with_sha256": hashed, "size": size_words(total)},
        f"observation {observation_id}",
    )


def _timeline(found: _Collector, ledger: Ledger, model_id: int, name: str) -> None:
    """The model's events oldest first; when there are more than 30, the latest 30, which explain the event."""
    total, rows = queries.latest_events(ledger, model_id, MAX_TIMELINE)
    left_out = total - len(rows)
    found.add(
        "timeline",
        f"The ledger holds {counted(total, 'event')} for {quote(name)}"
        + (f"; the earliest {left_out:,} are left out here" if left_out else "")
        + ": " + ", ".join(f"{row['kind']} at {row['at']}" for row in rows) + ".",
        {"events": [{"id": row["id"], "kind": row["kind"], "at": row["at"]} for row in rows], "total": total,
         "left_out": left_out},
        _span("event", (row["id"] for row in rows)),
    )


def _dates(found: _Collector, record: ModelRecord, observation_id: int) -> None:
    if record.shutdown_date is None and record.successor is None:
        return
    said = [f"shutdown date {quote(record.shutdown_date)}" if record.shutdown_date else "no shutdown date",
            f"successor {quote(record.successor)}" if record.successor else "no successor"]
    if record.shutdown_date and not record.successor:
        found.unknown("a successor model")
    found.add(
        "dates",
        f"The registry gave {' and '.join(said)} in observation {observation_id}.",
        {"shutdown_date": record.shutdown_date, "successor": record.successor},
        f"observation {observation_id}",
    )
