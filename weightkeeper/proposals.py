"""The words of the proposal pipeline: evidence, drafts, critic findings and planned actions.

Plain frozen dataclasses with `to_dict`/`from_dict`: they travel through LangGraph
checkpoints (strict msgpack: plain types only) and the review queue (JSON).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any



@dataclass(frozen=True)
class EvidenceItem:
    """One fact from the ledger, with the id a draft cites it by (`E3`).

    `statement` is the fact as a sentence a reader can check; `facts` holds its values
    (names, numbers, dates) so the critic can find them; `source` says where in the
    ledger it came from (`observation 812`, `event 40`).
    """

    id: str
    kind: str  # identity, lineage_up, lineage_down, usage, card, files, timeline, dates
    statement: str
    facts: dict[str, Any]
    source: str


@dataclass(frozen=True)
class Evidence:
    """What the documenter found about one model and the event that prompted a proposal."""

    registry: str
    registry_kind: str
    model: str
    model_id: int
    event_id: int
    event_kind: str
    items: tuple[EvidenceItem, ...]
    unknowns: tuple[str, ...] = ()  # what the ledger cannot say (no card, no usage figures, …)

    def item(self, evidence_id: str) -> EvidenceItem | None:
        return next((item for item in self.items if item.id == evidence_id), None)

    def to_dict(self) -> dict[str, Any]:
        # By hand: `asdict` deep-copies every fact, which cost more than drafting the proposal.
        return {"registry": self.registry, "registry_kind": self.registry_kind, "model": self.model,
                "model_id": self.model_id, "event_id": self.event_id, "event_kind": self.event_kind,
                "items": [_item_dict(item) for item in self.items],
                "unknowns": list(self.unknowns)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Evidence:
        return cls(**{**raw, "items": tuple(EvidenceItem(**item) for item in raw["items"]),
                      "unknowns": tuple(raw.get("unknowns", ()))})


@dataclass(frozen=True)
class Dossier:
    """What a proposal to one recipient rests on: the evidence of each model it covers, ranked by what would be
    lost (the lead first), with evidence ids unique across the whole proposal (`E1`… run on from one model
    to the next), so every citation names one item. `precedents` are public commitments of others (from
    `prompts/precedents.md`), cited like any other evidence. `cooldown` says, when not empty, why the
    proposal was drafted although its recipient was sent a letter within the cooldown."""

    recipient: str
    models: tuple[Evidence, ...]
    precedents: tuple[EvidenceItem, ...] = ()
    cooldown: str = ""

    @classmethod
    def of(cls, recipient: str, models: Sequence[Evidence], precedents: Sequence[dict[str, Any]] = (),
           cooldown: str = "") -> Dossier:
        """The models' evidence (each numbered from E1 by the documenter) renumbered into one sequence, and the
        precedents after them."""
        renumbered, next_id = [], 1
        for evidence in models:
            items = tuple(EvidenceItem(f"E{next_id + index}", item.kind, item.statement, item.facts, item.source)
                          for index, item in enumerate(evidence.items))
            renumbered.append(replace(evidence, items=items))
            next_id += len(items)
        cited = tuple(EvidenceItem(f"E{next_id + index}", "precedent", entry["statement"], entry["facts"],
                                   entry["source"]) for index, entry in enumerate(precedents))
        return cls(recipient, tuple(renumbered), cited, cooldown)

    @property
    def lead(self) -> Evidence:
        return self.models[0]

    @property
    def items(self) -> tuple[EvidenceItem, ...]:
        return (*(item for evidence in self.models for item in evidence.items), *self.precedents)

    @property
    def unknowns(self) -> tuple[str, ...]:
        """What the ledger cannot say about any of the models, each once."""
        return tuple(dict.fromkeys(unknown for evidence in self.models for unknown in evidence.unknowns))

    def item(self, evidence_id: str) -> EvidenceItem | None:
        return next((item for item in self.items if item.id == evidence_id), None)

    def owner_of(self, evidence_id: str) -> Evidence | None:
        """The model's evidence holding the item, or None for a precedent."""
        return next((evidence for evidence in self.models if evidence.item(evidence_id) is not None), None)

    def to_dict(self) -> dict[str, Any]:
        return {"recipient": self.recipient, "models": [evidence.to_dict() for evidence in self.models],
                "precedents": [_item_dict(item) for item in self.precedents], "cooldown": self.cooldown}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Dossier:
        """Also reads a proposal drafted before proposals covered several models: one model's Evidence."""
        if "models" not in raw:
            return cls("", (Evidence.from_dict(raw),))
        return cls(raw["recipient"], tuple(Evidence.from_dict(model) for model in raw["models"]),
                   tuple(EvidenceItem(**item) for item in raw.get("precedents", ())), raw.get("cooldown", ""))


def _item_dict(item: EvidenceItem) -> dict[str, Any]:
    return {"id": item.id, "kind": item.kind, "statement": item.statement, "facts": item.facts, "source": item.source}


@dataclass(frozen=True)
class Claim:
    text: str
    evidence: tuple[str, ...]  # EvidenceItem ids


@dataclass(frozen=True)
class PlannedAction:
    """An action a reviewer may approve: publish the proposal to a channel, or archive a pinned revision.

    The payload is everything the executor will do (target, the letter as its recipient reads it, parameters;
    weightkeeper/letter.py `payload`); an approval binds to its sha256, so any change to it needs a new approval.
    """

    kind: str  # publish, archive
    channel: str  # outbox, hf_discussion, github_issue, webhook; archive: the archive store
    target: str  # who or what receives it: the model's repo, a URL, a revision to pin
    parameters: dict[str, Any] = field(default_factory=dict)

    def payload(self, title: str, body: str) -> dict[str, Any]:
        return {"kind": self.kind, "channel": self.channel, "target": self.target, "title": title, "body": body,
                "parameters": self.parameters}


@dataclass(frozen=True)
class Draft:
    """A preservation proposal as the advocate wrote it."""

    title: str
    body: str  # markdown
    claims: tuple[Claim, ...]
    actions: tuple[PlannedAction, ...]
    practices: tuple[str, ...]  # which of DESIGN.md's practices it argues for
    drafter: str  # "offline" or the LLM's model name
    prompt: str  # the prompt (or offline template) name@version
    precedents: tuple[str, ...] = ()  # memory ids the advocate drew on
    token_usage: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Draft:
        return cls(**{
            **raw,
            "claims": tuple(Claim(claim["text"], tuple(claim["evidence"])) for claim in raw["claims"]),
            "actions": tuple(PlannedAction(**action) for action in raw["actions"]),
            "practices": tuple(raw["practices"]),
            "precedents": tuple(raw.get("precedents", ())),
        })


@dataclass(frozen=True)
class Finding:
    """Something the critic found in a draft. An `error` sends the draft back; a `note` goes to the reviewer."""

    severity: str  # error, note
    code: str  # unsupported_number, unknown_model, uncited_claim, missing_part, tone, length, …
    message: str

    @property
    def id(self) -> str:
        """How a reviewer names the finding to override it: its code and a digest of its message."""
        return f"{self.code}-{hashlib.sha256(self.message.encode()).hexdigest()[:8]}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
