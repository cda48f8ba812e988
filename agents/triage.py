"""Why an event gets no proposal: the coordinator's reasons, for the graph and for whoever asks which events
were left alone (the console's "triaged" tab), so nothing is dropped silently."""

from __future__ import annotations

from agents import coordinator, documenter
from tools.memory import case_text
from weightkeeper.config import ProposalSettings
from weightkeeper.ledger import Ledger

NOT_YET = "not proposed on yet: `weightkeeper propose` drafts it"


def ranked(ledger: Ledger, candidate: coordinator.Candidate) -> tuple[coordinator.Ranked, str | None]:
    """The candidate ranked by its evidence, and why its event needs no proposal (or None)."""
    evidence = documenter.build_evidence(ledger, candidate.event_id)
    figures = documenter.impact(evidence)
    trigger = next((item.facts.get("detail") or {} for item in evidence.items if item.kind == "event"), {})
    dates = next((item.facts for item in evidence.items if item.kind == "dates"), {})
    shutdown = dates.get("shutdown_date") or trigger.get("shutdown_date")
    entry = coordinator.Ranked(coordinator.priority(figures), candidate, case_text(evidence),
                               shutdown=shutdown if isinstance(shutdown, str) else None)
    return entry, coordinator.skip_reason(candidate, int(figures.get("dependents", 0)), trigger.get("to"))


def triaged(ledger: Ledger, settings: ProposalSettings) -> list[tuple[int, str, str, str, str]]:
    """Each event that may need a proposal and has none: (event id, registry, model, kind, why): the event needs
    none, its recipient is not to be contacted, it waits for the recipient's cooldown, or it is not proposed yet."""
    found = coordinator.candidates(ledger)
    why: dict[int, str] = {}
    proposable = []
    for candidate in found:
        entry, skip = ranked(ledger, candidate)
        skip = skip or coordinator.blocked(ledger, settings, candidate.recipient)
        if skip:
            why[candidate.event_id] = skip
        else:
            proposable.append(entry)
    _, waiting = coordinator.letters(ledger, settings, proposable)
    why.update((entry.candidate.event_id, detail) for entry, detail in waiting)
    return [(candidate.event_id, candidate.registry, candidate.model, candidate.kind,
             why.get(candidate.event_id, NOT_YET)) for candidate in found]
