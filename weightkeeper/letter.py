"""The letter a recipient reads, rendered from a draft: what every channel publishes, and what
`review show N --letter` prints.

A draft cites its evidence by id (`[E3]`), which a reviewer checks against the evidence. The recipient
reads the same words with each citation turned into a numbered note (`[1]`) and, at the end, a Sources list
that says in plain words what each note rests on ("the card of `acme/x`, read on 7 December 2026: its
license field"), with a link where one exists. No evidence id, ledger id or local path reaches them, and
dates read as people write them. An approval binds the sha256 of the payload holding this letter
(`payload`), so what is approved is what is sent.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from weightkeeper.domain import canonical_json
from weightkeeper.proposals import Dossier, Draft, Evidence, EvidenceItem, PlannedAction

SOURCES = "Sources"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
CITATION = re.compile(r"[ \t]?\[(E\d+(?:\s*,\s*E\d+)*)\]")
# An ISO date, with the time a ledger timestamp carries (`2026-12-07T17:58:50.532603Z`) or without.
ISO_DATE = re.compile(r"(?<![\w-])(\d{4})-(\d{2})-(\d{2})"
                      r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?![\w-])")
# What must never reach a recipient: weightkeeper's own ids and the watcher's filesystem.
LEAKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\[\s*E\d+"), "an evidence id"),
    (re.compile(r"\b(?:event|observation|review|scan|decision)s?\s+#?\d+", re.I), "a ledger id"),
    (re.compile(r"\bkey\s+`?[0-9a-f]{6,}", re.I), "a model key"),
    (re.compile(r"\bfiles-[0-9a-f]{8,}"), "a revision digest of weightkeeper's own"),
    (ISO_DATE, "a date as a machine writes it"),
    (re.compile(r"(?<![\w.:/\\-])(?:~|[A-Za-z]:)?[/\\](?:[\w.-]+[/\\])+[\w.-]*"), "a local path"),
)
# How a letter names the place a model was listed, by registry kind.
PLACES = {"hf": "the Hugging Face Hub", "local": "the local model registry we watch", "mlflow": "the MLflow registry",
          "ollama": "the Ollama server", "openai": "the OpenAI fine-tuning API"}
CARD_FIELDS = {"license": "license field", "emissions": "co2_eq_emissions field", "training": "training details",
               "datasets": "datasets field"}


def render(draft: Draft, dossier: Dossier) -> str:
    """The draft's body as its recipient reads it: citations as numbered notes, dates in words, the Sources
    list at the end. Citations of the same source share a note."""
    numbers: dict[str, int] = {}  # a source's words -> its note's number
    sources: list[str] = []

    def note(match: re.Match[str]) -> str:
        cited = []
        for evidence_id in re.split(r"\s*,\s*", match.group(1)):
            words = source_words(dossier, evidence_id)
            if words is None:  # not in the evidence: the critic's error; the recipient sees no dangling note
                continue
            if words not in numbers:
                sources.append(words)
                numbers[words] = len(sources)
            cited.append(numbers[words])
        return f" [{', '.join(map(str, dict.fromkeys(cited)))}]" if cited else ""

    body = in_words(CITATION.sub(note, draft.body)).rstrip()
    if not sources:
        return body
    listed = "\n".join(f"{number}. {_capital(words)}." for number, words in enumerate(sources, 1))
    return f"{body}\n\n## {SOURCES}\n\n{listed}"


def title(draft: Draft) -> str:
    return in_words(draft.title)


def payload(action: PlannedAction, draft: Draft, dossier: Dossier) -> dict[str, Any]:
    """What the executor runs for `action`: it carries the rendered letter, so an approval binds what is sent."""
    return action.payload(title(draft), render(draft, dossier))


def payload_sha256(action: PlannedAction, draft: Draft, dossier: Dossier) -> str:
    """The sha256 an approval of `action` binds."""
    return hashlib.sha256(canonical_json(payload(action, draft, dossier))).hexdigest()


def leaks(text: str) -> list[tuple[str, str]]:
    """What in `text` a recipient must never read: (what it is, the words)."""
    return [(what, match.group(0).strip()) for pattern, what in LEAKS for match in pattern.finditer(text)]


def human_date(value: str) -> str:
    """`2026-12-07T17:58:50Z` as `7 December 2026`; a value that is no ISO date is returned as it is."""
    match = ISO_DATE.fullmatch(value.strip())
    return _spoken(match) if match else value


def in_words(text: str) -> str:
    """Every ISO date or timestamp in `text` written as people write dates."""
    return ISO_DATE.sub(_spoken, text)


def place(registry_kind: str) -> str:
    return PLACES.get(registry_kind, "the registry")


def code(name: str) -> str:
    """Registry text (a model's name) as inline code on one line, so no markup in it takes effect."""
    return f"`{' '.join(name.replace('`', '').split())}`"


def source_words(dossier: Dossier, evidence_id: str) -> str | None:
    """What the evidence item rests on, in plain words with its link where one exists; None for an unknown id."""
    item = dossier.item(evidence_id)
    if item is None:
        return None
    if item.kind == "precedent":
        facts = item.facts
        return f"{facts['who']}, \"{facts['title']}\", {human_date(facts['when'])}: {facts['url']}"
    evidence = dossier.owner_of(evidence_id)
    assert evidence is not None  # every item but a precedent belongs to a model
    return _model_source(item, evidence)


def _model_source(item: EvidenceItem, evidence: Evidence) -> str:
    facts, name, where = item.facts, code(evidence.model), place(evidence.registry_kind)
    # Lineage, card, files and dates come from the model's latest observation, which the identity dates.
    identity = next((entry.facts for entry in evidence.items if entry.kind == "identity"), {})
    read = f"read on {human_date(identity['read_at'])}" if identity.get("read_at") else "as we last read it"
    if item.kind == "identity":
        page = f": {facts['page']}" if facts.get("page") else ""
        return f"the listing of {name} in {where}, {read}{page}"
    if item.kind == "event":
        return _event_source(facts, name, where)
    if item.kind == "related":
        return (f"our comparison of {name} with {code(str(facts.get('model')))}: their names, base models and "
                "cards read nearly the same")
    if item.kind == "lineage_up":
        return f"the card of {name}, {read}: its base model field"
    if item.kind == "lineage_down":
        if not facts.get("count"):
            return f"the cards of every model in our ledger: none names {name} as its base model"
        return f"the cards of the models in our ledger that name {name} as their base model"
    if item.kind == "usage":
        first, latest = human_date(str(facts.get("first_at", ""))), human_date(str(facts.get("latest_at", "")))
        if latest:
            read = f"read on {latest}" if first in ("", latest) else f"read on {first} and on {latest}"
        return f"the {facts.get('metric', 'usage')} count {where} published for {name}, {read}"
    if item.kind == "card":
        field = next((words for key, words in CARD_FIELDS.items() if key in facts), "metadata")
        return f"the card of {name}, {read}: its {field}"
    if item.kind == "files":
        return f"the list of the files of {name} in {where}, {read}"
    if item.kind == "dates":
        return f"the deprecation notice for {name} in {where}, {read}: its shutdown date and successor"
    if item.kind == "timeline":
        first = next(iter(facts.get("events") or []), None)
        return f"our record of every change we saw to {name}" + (f", since {human_date(first['at'])}" if first else "")
    return f"our record of {name}"


def _event_source(facts: dict[str, Any], name: str, where: str) -> str:
    kind, when = facts.get("kind"), human_date(str(facts.get("at", "")))
    to = (facts.get("detail") or {}).get("to")
    said = {
        "deleted": f"{name} was no longer there",
        "withdrawn": f"{where} answered for {name} as it does for a deleted or a private model",
        "suspected_missing": f"{name} was missing from its listing",
        "visibility_changed": f"{name} had become {to}" if to else f"the visibility of {name} had changed",
        "stage_changed": f"{name} had moved to the {to} stage" if to else f"the stage of {name} had changed",
    }.get(kind)
    if kind == "deprecation_announced":
        return f"the deprecation notice for {name} in {where}, which we read on {when}"
    return f"our check of {where} on {when}" + (f": {said}" if said else "")


def _spoken(match: re.Match[str]) -> str:
    year, month, day = (int(part) for part in match.group(1, 2, 3))
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return match.group(0)
    return f"{day} {MONTHS[month - 1]} {year}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
