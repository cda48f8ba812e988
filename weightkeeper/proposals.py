"""The words of the proposal pipeline: evidence, drafts, critic findings and planned actions.

Plain frozen dataclasses with `to_dict`/`from_dict`: they travel through LangGraph
checkpoints (strict msgpack: plain types only) and the review queue (JSON).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from weightkeeper.domain import canonical_json


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
                "items": [{"id": item.id, "kind": item.kind, "statement": item.statement, "facts": item.facts,
                           "source": item.source} for item in self.items],
                "unknowns": list(self.unknowns)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Evidence:
        return cls(**{**raw, "items": tuple(EvidenceItem(**item) for item in raw["items"]),
                      "unknowns": tuple(raw.get("unknowns", ()))})


@dataclass(frozen=True)
class Claim:
    text: str
    evidence: tuple[str, ...]  # EvidenceItem ids


@dataclass(frozen=True)
class PlannedAction:
    """An action a reviewer may approve: publish the proposal to a channel, or archive a pinned revision.

    The payload is everything the executor will do (target, text, parameters); an approval binds
    to its sha256, so any change to it needs a new approval.
    """

    kind: str  # publish, archive
    channel: str  # outbox, hf_discussion, github_issue, webhook; archive: the archive store
    target: str  # who or what receives it: the model's repo, a URL, a revision to pin
    parameters: dict[str, Any] = field(default_factory=dict)

    def payload(self, title: str, body: str) -> dict[str, Any]:
        return {"kind": self.kind, "channel": self.channel, "target": self.target, "title": title, "body": body,
                "parameters": self.parameters}

    def payload_sha256(self, title: str, body: str) -> str:
        return hashlib.sha256(canonical_json(self.payload(title, body))).hexdigest()


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
