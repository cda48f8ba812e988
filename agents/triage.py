"""Why an event gets no proposal: the coordinator's reason, for the graph and for whoever asks which events
were left alone (the console's "triaged" tab), so nothing is dropped silently."""

from __future__ import annotations

from agents import coordinator, documenter
from weightkeeper.config import ProposalSettings
from weightkeeper.ledger import Ledger
from weightkeeper.proposals import Evidence

NOT_YET = "not proposed on yet: `weightkeeper propose` drafts it"


def reason(ledger: Ledger, settings: ProposalSettings, evidence: Evidence, recipient: str) -> str | None:
    """Why the event the evidence is about gets no proposal now, or None when it should get one."""
    candidate = coordinator.Candidate(evidence.event_id, evidence.registry, evidence.model_id, evidence.model,
                                      evidence.event_kind, recipient)
    figures = documenter.impact(evidence)
    trigger = next((item for item in evidence.items if item.kind == "event"), None)
    moved_to = (trigger.facts.get("detail") or {}).get("to") if trigger else None
    return coordinator.skip_reason(ledger, settings, candidate, int(figures.get("dependents", 0)), moved_to)


def triaged(ledger: Ledger, settings: ProposalSettings) -> list[tuple[int, str, str, str, str]]:
    """Each event that may need a proposal and has none: (event id, registry, model, kind, why)."""
    return [(candidate.event_id, candidate.registry, candidate.model, candidate.kind,
             reason(ledger, settings, documenter.build_evidence(ledger, candidate.event_id), candidate.recipient)
             or NOT_YET) for candidate in coordinator.candidates(ledger)]
