"""The one place that wires the proposal graph, and runs it.

    documenter ─▶ coordinator ─skip─▶ END
                      │
                  advocate ◀─revise─ critic ─▶ review_gate (interrupt) ─approved─▶ executor ─▶ END
                                                     └──────────── otherwise ──────────────▶ END

The coordinator picks and ranks the events before any thread starts (`propose`): it leaves out those
that need no proposal (whether a visibility change needs one depends on the models built on it, so
each candidate's evidence is read first), groups near-duplicate models of one owner with the memory's
embeddings, and gathers the rest into one letter per recipient (agents/coordinator.py `letters`). In a
thread it refuses a recipient on the do-not-contact list. The documenter puts every model's evidence
into one dossier; the advocate recalls from memory (tools/memory.py) the approved precedents and
reviewers' notes on cases like the lead model's; the draft records which.

One thread per proposal (a recipient's open letter), checkpointed where the ledger is (weightkeeper/ledger/checkpoints.py)
(`durability="sync"`: a thread's step is on disk before the next starts). A new event of the recipient
while the proposal is open runs its thread again from the start with every model, and the review row
becomes a new version. The review gate only calls `interrupt()`; writing the review-queue row is done
here, after the graph stops at the gate, keyed by (thread_id, interrupt_id), so a resumed gate repeats
no side effect. A resume carries no authority: the executor reads the approval from the ledger and
verifies it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agents import coordinator, critic, documenter, executor, triage
from agents.advocate import draft_offline
from agents.state import ProposalState, thread_id
from tools.memory import Memory, Recollection
from weightkeeper import letter
from weightkeeper.config import ProposalSettings
from weightkeeper.ledger import Ledger
from weightkeeper.proposals import Dossier, Draft, Finding
from weightkeeper.review import Review, ReviewQueue

if TYPE_CHECKING:
    from agents.llm_critic import LLMCritic

# (dossier, recipient, settings, the critic's findings on the previous draft, what memory recalled) -> a
# draft, or an awaitable of one: the offline drafter is a plain function, the LLM drafter
# (agents/llm_drafter.py) a coroutine.
Drafter = Callable[[Dossier, str, ProposalSettings, list[Finding], list[Recollection]], Draft | Awaitable[Draft]]
COOLDOWN_NOTE = "inside_cooldown"


def offline_drafter(dossier: Dossier, recipient: str, settings: ProposalSettings,
                    findings: list[Finding], recalled: list[Recollection]) -> Draft:
    """Writes from the evidence alone: what memory recalled reaches the reviewer as critic notes."""
    return draft_offline(dossier, recipient=recipient, settings=settings)


@dataclass
class Outcome:
    event_id: int
    model: str
    status: str  # queued (in a new proposal), joined (an open one), waiting (the cooldown), skipped, exists
    detail: str
    review_id: int | None = None


def build(ledger: Ledger, home: Path, settings: ProposalSettings, drafter: Drafter = offline_drafter,
          llm_critic: LLMCritic | None = None, memory: Memory | None = None) -> StateGraph:
    """The graph's nodes and edges, bound to one ledger and home. With `llm_critic`, the critic node adds
    its findings to the deterministic critic's (agents/llm_critic.py); with `memory`, the advocate recalls."""

    async def coordinate(state: ProposalState) -> dict[str, Any]:
        return {"skip": coordinator.blocked(ledger, settings, state["recipient"]) or ""}

    async def document(state: ProposalState) -> dict[str, Any]:
        related: dict[int, list[tuple[int, float]]] = {}
        for member in state.get("related", []):
            related.setdefault(member["lead"], []).append((member["event_id"], member["similarity"]))
        return {"evidence": documenter.build_dossier(ledger, state["recipient"], state["events"], related,
                                                     cooldown=state.get("cooldown", "")).to_dict()}

    async def advocate(state: ProposalState) -> dict[str, Any]:
        evidence = Dossier.from_dict(state["evidence"])
        findings = [Finding(**finding) for finding in state.get("findings", [])]
        if "recalled" in state:  # a revision: the same recollections as the first draft
            recalled = [Recollection.from_dict(entry) for entry in state["recalled"]]
        else:
            recalled = memory.recall(evidence.lead) if memory is not None else []
        draft = drafter(evidence, state["recipient"], settings, findings, recalled)
        if inspect.isawaitable(draft):
            draft = await draft
        draft = replace(draft, precedents=tuple(entry.id for entry in recalled))
        return {"draft": draft.to_dict(), "recalled": [entry.to_dict() for entry in recalled]}

    async def critique(state: ProposalState) -> dict[str, Any]:
        draft, evidence = Draft.from_dict(state["draft"]), Dossier.from_dict(state["evidence"])
        findings = critic.critique(draft, evidence)
        if evidence.cooldown:  # for the reviewer, who decides whether it goes now
            findings.append(Finding(critic.NOTE, COOLDOWN_NOTE, evidence.cooldown))
        findings += critic.recalled_notes([Recollection.from_dict(entry) for entry in state.get("recalled", [])])
        if llm_critic is not None:  # a complement: its errors send the draft back too, within the same rounds
            findings += await llm_critic.critique(draft, evidence, state["recipient"])
        rounds = state.get("rounds", 0)
        # Bounded: after `critic_rounds` returns, the reviewer sees the draft with the critic's findings.
        revise = any(finding.severity == "error" for finding in findings) and rounds < settings.critic_rounds
        return {"findings": [finding.to_dict() for finding in findings], "rounds": rounds + revise, "revise": revise}

    async def review_gate(state: ProposalState) -> dict[str, Any]:
        draft, dossier = Draft.from_dict(state["draft"]), Dossier.from_dict(state["evidence"])
        answer = interrupt({
            "draft": state["draft"], "evidence": state["evidence"], "findings": state["findings"],
            "actions": [{**letter.payload(action, draft, dossier),
                         "payload_sha256": letter.payload_sha256(action, draft, dossier)} for action in draft.actions],
        })
        return {"review_id": int(answer["review_id"])}

    async def execute(state: ProposalState) -> dict[str, Any]:
        return {"executed": executor.execute(ledger, home, state["review_id"], settings=settings)}

    def after_coordinator(state: ProposalState) -> str:
        return END if state.get("skip") else "advocate"

    def after_critic(state: ProposalState) -> str:
        return "advocate" if state["revise"] else "review_gate"

    async def after_review(state: ProposalState) -> str:  # async: the ledger connection lives on this thread
        return "executor" if ReviewQueue(ledger).get(state["review_id"]).status == "approved" else END

    graph = StateGraph(ProposalState)
    graph.add_node("coordinator", coordinate)
    graph.add_node("documenter", document)
    graph.add_node("advocate", advocate)
    graph.add_node("critic", critique)
    graph.add_node("review_gate", review_gate)
    graph.add_node("executor", execute)
    graph.add_edge(START, "documenter")
    graph.add_edge("documenter", "coordinator")
    graph.add_conditional_edges("coordinator", after_coordinator, ["advocate", END])
    graph.add_edge("advocate", "critic")
    graph.add_conditional_edges("critic", after_critic, ["advocate", "review_gate"])
    graph.add_conditional_edges("review_gate", after_review, ["executor", END])
    graph.add_edge("executor", END)
    return graph


async def propose(ledger: Ledger, home: Path, settings: ProposalSettings, *, model: str | None = None,
                  recipient: str | None = None, limit: int | None = None, drafter: Drafter = offline_drafter,
                  llm_critic: LLMCritic | None = None, memory: Memory | None = None) -> list[Outcome]:
    """Draft one proposal per recipient for the events that need one, or add them to the recipient's open
    proposal, and queue it for review; letters of the most valuable models first. With `memory`, a model's
    near-duplicates of the same owner (cosine >= its `near_duplicate`) follow it and its evidence names them.
    With `recipient`, only their letter. Every event gets an outcome saying where it went."""
    if memory is not None:
        memory.sync(ledger)
    outcomes, ranked = [], []
    # Only the ranking and a short case text are kept for every candidate: the thread's documenter gathers
    # the evidence again when its turn comes, so memory does not grow with the number of events' evidence.
    for candidate in coordinator.candidates(ledger, model=model, addressed_to=recipient):
        entry, skip = triage.ranked(ledger, candidate)
        if skip:
            outcomes.append(Outcome(candidate.event_id, candidate.model, "skipped", skip))
        else:
            ranked.append(entry)
    ranked.sort(key=lambda entry: (-entry.priority, entry.candidate.event_id))
    if memory is not None:
        ranked = coordinator.group_near_duplicates(ranked, memory.vectors, memory.settings.near_duplicate)
        if memory.holds_decisions():  # every draft recalls: embed the cases in one batch, before the threads
            memory.vectors({coordinator.key(entry): entry.case for entry in ranked[:limit]})
    found, waiting = coordinator.letters(ledger, settings, ranked)
    outcomes += [outcome for entry, detail in waiting for outcome in _each(entry, "waiting", detail)]
    async with _compiled(ledger, home, settings, drafter, llm_critic, memory) as app:
        for index, planned in enumerate(found):
            if limit is not None and index >= limit:
                outcomes += [outcome for entry in planned.entries for outcome in _each(
                    entry, "waiting", f"over --limit {limit}: the next `weightkeeper propose` drafts it")]
                continue
            outcomes += await _run_thread(app, ledger, planned)
    return outcomes


def _each(entry: coordinator.Ranked, status: str, detail: str, review_id: int | None = None) -> list[Outcome]:
    """An outcome for the entry's event and one for each near-duplicate grouped under it."""
    return [Outcome(candidate.event_id, candidate.model, status, detail, review_id)
            for candidate in (entry.candidate, *(member for member, _ in entry.members))]


async def resume(ledger: Ledger, home: Path, settings: ProposalSettings, review_id: int) -> dict[str, Any]:
    """Continue a reviewed proposal's thread past its gate: after an approval, the executor runs."""
    review = ReviewQueue(ledger).get(review_id)
    async with _compiled(ledger, home, settings, offline_drafter) as app:
        config = {"configurable": {"thread_id": review.thread_id}}
        state = await app.aget_state(config)
        if not state.interrupts:  # past its gate since an earlier version's approval: what is left runs here
            ran = executor.execute(ledger, home, review_id, settings=settings)
            return {**state.values, **({"executed": ran} if ran else {})}
        return await app.ainvoke(Command(resume={"review_id": review_id}), config, durability="sync")


@asynccontextmanager
async def _compiled(ledger: Ledger, home: Path, settings: ProposalSettings, drafter: Drafter,
                    llm_critic: LLMCritic | None = None, memory: Memory | None = None) -> AsyncIterator[Any]:
    """The graph compiled with the home's checkpointer, open for the block."""
    from weightkeeper.ledger import checkpoints

    graph = build(ledger, home, settings, drafter, llm_critic, memory)
    async with checkpoints.saver(ledger, home) as saver:
        yield graph.compile(checkpointer=saver)


async def _run_thread(app: Any, ledger: Ledger, planned: coordinator.Letter) -> list[Outcome]:
    """Draft (or redraft, when events join an open proposal) the letter's thread up to its review gate, and write
    its review-queue row."""
    queue = ReviewQueue(ledger)
    joined = queue.get(planned.joins) if planned.joins is not None else None
    entries = _with_covered(ledger, joined, planned.entries)
    events = [event_id for entry in entries for event_id in _event_ids(entry)]
    thread = joined.thread_id if joined else thread_id(planned.recipient, entries[0].candidate.event_id)
    config = {"configurable": {"thread_id": thread}}
    state = await app.aget_state(config)
    if not (state.interrupts and state.values.get("events") == events):
        # Otherwise it stopped at its gate before the queue row was written: write it now. A thread run before
        # (skipped, or an open proposal's thread at its gate or past it) starts over: every key is given afresh.
        state_values = await app.ainvoke(
            {"events": events, "recipient": planned.recipient, "priority": entries[0].priority, "skip": "",
             "rounds": 0, "findings": [], "cooldown": planned.cooldown,
             "related": [{"lead": entry.candidate.event_id, "event_id": member.event_id, "similarity": similarity}
                         for entry in entries for member, similarity in entry.members]},
            config, durability="sync")
        if state_values.get("skip"):
            return [outcome for entry in planned.entries for outcome in _each(entry, "skipped", state_values["skip"])]
        state = await app.aget_state(config)
    values, gate = state.values, state.interrupts[0]
    dossier = Dossier.from_dict(values["evidence"])
    review_id = queue.enqueue(
        thread_id=thread, interrupt_id=gate.id, evidence=dossier, draft=Draft.from_dict(values["draft"]),
        findings=[Finding(**finding) for finding in values["findings"]], priority=entries[0].priority,
        recipient=planned.recipient,
        similarity={member["event_id"]: member["similarity"] for member in values["related"]})
    review = queue.get(review_id)
    others = len(dossier.models) - 1
    if joined is None:
        detail = f"review {review_id}" + (f", one letter with {others} other model{'s' * (others != 1)} of "
                                          f"{planned.recipient}" if others else "")
        if planned.cooldown:
            detail += f"; {planned.cooldown}"
        return [outcome for entry in planned.entries for outcome in _each(entry, "queued", detail, review_id)]
    detail = (f"joined review {review_id}, the open letter to {planned.recipient}, now version {review.version}"
              + (" (the approval of the previous version is void)" if joined.status == "approved" else ""))
    return [outcome for entry in planned.entries for outcome in _each(entry, "joined", detail, review_id)]


def _with_covered(ledger: Ledger, joined: Review | None, entries: tuple[coordinator.Ranked, ...]
                  ) -> list[coordinator.Ranked]:
    """The letter's entries, with the models an open proposal already covers when they join it (a model's new
    event replaces its old one), ranked again."""
    if joined is None:
        return list(entries)
    new_models = {member.model_id for entry in entries for member in (entry.candidate, *(m for m, _ in entry.members))}
    kept = [triage.ranked(ledger, coordinator.Candidate(evidence.event_id, evidence.registry, evidence.model_id,
                                                        evidence.model, evidence.event_kind, joined.recipient))[0]
            for evidence in joined.evidence.models if evidence.model_id not in new_models]
    return sorted([*kept, *entries], key=lambda entry: (-entry.priority, entry.candidate.event_id))


def _event_ids(entry: coordinator.Ranked) -> list[int]:
    return [entry.candidate.event_id, *(member.event_id for member, _ in entry.members)]
