"""The one place that wires the proposal graph, and runs it.

    documenter ─▶ coordinator ─skip─▶ END
                      │
                  advocate ◀─revise─ critic ─▶ review_gate (interrupt) ─approved─▶ executor ─▶ END
                                                     └──────────── otherwise ──────────────▶ END

The coordinator picks and ranks the events before any thread starts (`propose`), and groups
near-duplicate models of one owner under one proposal with the memory's embeddings; in a thread
it routes on the documenter's evidence, since whether a visibility change needs a proposal
depends on the models built on it. The advocate recalls from memory (tools/memory.py) the
approved precedents and reviewers' notes on similar cases; the draft records which.

One thread per (registry, model, event), checkpointed with `AsyncSqliteSaver` in the home
(`durability="sync"`: a thread's step is on disk before the next starts). The review gate only
calls `interrupt()`; writing the review-queue row is done here, after the graph stops at the
gate, keyed by (thread_id, interrupt_id), so a resumed gate repeats no side effect. A resume
carries no authority: the executor reads the approval from the ledger and verifies it.
"""

from __future__ import annotations

import inspect
import os

os.environ.setdefault("LANGGRAPH_STRICT_MSGPACK", "true")  # read when langgraph's serde is imported

from collections.abc import Awaitable, Callable  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402

from agents import coordinator, critic, documenter, executor, triage  # noqa: E402
from agents.advocate import draft_offline  # noqa: E402
from agents.state import ProposalState, thread_id  # noqa: E402
from tools.memory import Memory, Recollection, case_text  # noqa: E402
from weightkeeper.config import ProposalSettings  # noqa: E402
from weightkeeper.ledger import Ledger  # noqa: E402
from weightkeeper.proposals import Draft, Evidence, Finding  # noqa: E402
from weightkeeper.review import ReviewQueue  # noqa: E402

if TYPE_CHECKING:
    from agents.llm_critic import LLMCritic

CHECKPOINTS = "checkpoints.sqlite3"
# (evidence, recipient, settings, the critic's findings on the previous draft, what memory recalled) -> a
# draft, or an awaitable of one: the offline drafter is a plain function, the LLM drafter
# (agents/llm_drafter.py) a coroutine.
Drafter = Callable[[Evidence, str, ProposalSettings, list[Finding], list[Recollection]], Draft | Awaitable[Draft]]


def offline_drafter(evidence: Evidence, recipient: str, settings: ProposalSettings,
                    findings: list[Finding], recalled: list[Recollection]) -> Draft:
    """Writes from the evidence alone: what memory recalled reaches the reviewer as critic notes."""
    return draft_offline(evidence, recipient=recipient, settings=settings)


@dataclass
class Outcome:
    event_id: int
    model: str
    status: str  # queued, skipped, exists, grouped (covered by another model's proposal)
    detail: str
    review_id: int | None = None


def build(ledger: Ledger, home: Path, settings: ProposalSettings, drafter: Drafter = offline_drafter,
          llm_critic: LLMCritic | None = None, memory: Memory | None = None) -> StateGraph:
    """The graph's nodes and edges, bound to one ledger and home. With `llm_critic`, the critic node adds
    its findings to the deterministic critic's (agents/llm_critic.py); with `memory`, the advocate recalls."""

    async def coordinate(state: ProposalState) -> dict[str, Any]:
        reason = triage.reason(ledger, settings, Evidence.from_dict(state["evidence"]), state["recipient"])
        return {"skip": reason or ""}

    async def document(state: ProposalState) -> dict[str, Any]:
        related = [(member["event_id"], member["similarity"]) for member in state.get("related", [])]
        return {"evidence": documenter.build_evidence(ledger, state["event_id"], related).to_dict()}

    async def advocate(state: ProposalState) -> dict[str, Any]:
        evidence = Evidence.from_dict(state["evidence"])
        findings = [Finding(**finding) for finding in state.get("findings", [])]
        if "recalled" in state:  # a revision: the same recollections as the first draft
            recalled = [Recollection.from_dict(entry) for entry in state["recalled"]]
        else:
            recalled = memory.recall(evidence) if memory is not None else []
        draft = drafter(evidence, state["recipient"], settings, findings, recalled)
        if inspect.isawaitable(draft):
            draft = await draft
        draft = replace(draft, precedents=tuple(entry.id for entry in recalled))
        return {"draft": draft.to_dict(), "recalled": [entry.to_dict() for entry in recalled]}

    async def critique(state: ProposalState) -> dict[str, Any]:
        draft, evidence = Draft.from_dict(state["draft"]), Evidence.from_dict(state["evidence"])
        findings = critic.critique(draft, evidence)
        findings += critic.recalled_notes([Recollection.from_dict(entry) for entry in state.get("recalled", [])])
        if llm_critic is not None:  # a complement: its errors send the draft back too, within the same rounds
            findings += await llm_critic.critique(draft, evidence, state["recipient"])
        rounds = state.get("rounds", 0)
        # Bounded: after `critic_rounds` returns, the reviewer sees the draft with the critic's findings.
        revise = any(finding.severity == "error" for finding in findings) and rounds < settings.critic_rounds
        return {"findings": [finding.to_dict() for finding in findings], "rounds": rounds + revise, "revise": revise}

    async def review_gate(state: ProposalState) -> dict[str, Any]:
        draft = Draft.from_dict(state["draft"])
        answer = interrupt({
            "draft": state["draft"], "evidence": state["evidence"], "findings": state["findings"],
            "actions": [{**action.payload(draft.title, draft.body),
                         "payload_sha256": action.payload_sha256(draft.title, draft.body)} for action in draft.actions],
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
                  limit: int | None = None, drafter: Drafter = offline_drafter,
                  llm_critic: LLMCritic | None = None, memory: Memory | None = None) -> list[Outcome]:
    """Draft proposals for the events that need one, most valuable first, and queue them for review. With
    `memory`, near-duplicate models of one owner (cosine >= its `near_duplicate`) share one proposal."""
    if memory is not None:
        memory.sync(ledger)
    # Only the ranking and a short case text are kept for every candidate: the thread's documenter gathers
    # the evidence again when its turn comes, so memory does not grow with the number of events' evidence.
    ranked = sorted((_ranked(ledger, candidate) for candidate in coordinator.candidates(ledger, model=model)),
                    key=lambda entry: (-entry.priority, entry.candidate.event_id))
    if memory is not None:
        ranked = coordinator.group_near_duplicates(ranked, memory.vectors, memory.settings.near_duplicate)
        if memory.holds_decisions():  # every draft recalls: embed the cases in one batch, before the threads
            memory.vectors({coordinator.key(entry): entry.case for entry in ranked[:limit]})
    outcomes, queued = [], 0
    async with _compiled(ledger, home, settings, drafter, llm_critic, memory) as app:
        for entry in ranked:
            if limit is not None and queued >= limit:
                break
            outcome = await _run_thread(app, ledger, entry)
            outcomes.append(outcome)
            queued += outcome.status == "queued"
            if outcome.status == "queued":
                outcomes += [Outcome(member.event_id, member.model, "grouped",
                                     f"a near-duplicate of {entry.candidate.model}: covered by review "
                                     f"{outcome.review_id}", outcome.review_id) for member, _ in entry.members]
            else:  # the lead got no proposal: each near-duplicate is decided on its own
                for member, _ in entry.members:
                    outcomes.append(await _run_thread(app, ledger, coordinator.Ranked(entry.priority, member, "")))
                    queued += outcomes[-1].status == "queued"
    return outcomes


def _ranked(ledger: Ledger, candidate: coordinator.Candidate) -> coordinator.Ranked:
    evidence = documenter.build_evidence(ledger, candidate.event_id)
    return coordinator.Ranked(coordinator.priority(documenter.impact(evidence)), candidate, case_text(evidence))


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


class _compiled:
    """The graph compiled with the home's checkpointer, open for the block."""

    def __init__(self, ledger: Ledger, home: Path, settings: ProposalSettings, drafter: Drafter,
                 llm_critic: LLMCritic | None = None, memory: Memory | None = None) -> None:
        self.graph = build(ledger, home, settings, drafter, llm_critic, memory)
        self.path = home / CHECKPOINTS

    async def __aenter__(self) -> Any:
        import aiosqlite

        self.conn = await aiosqlite.connect(self.path)
        # WAL (the saver sets it) with NORMAL: a step is on disk before the next starts and survives a
        # crash of the process; only a power cut may lose the last steps, which are then re-run.
        await self.conn.execute("PRAGMA synchronous=NORMAL")
        return self.graph.compile(checkpointer=AsyncSqliteSaver(self.conn))

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()


async def _run_thread(app: Any, ledger: Ledger, entry: coordinator.Ranked) -> Outcome:
    candidate, priority = entry.candidate, entry.priority
    thread = thread_id(candidate.registry, candidate.model_id, candidate.event_id)
    config = {"configurable": {"thread_id": thread}}
    state = await app.aget_state(config)
    if state.values and not state.interrupts and not state.values.get("skip"):
        return Outcome(candidate.event_id, candidate.model, "exists", f"thread {thread} ran before")
    if not state.interrupts:  # otherwise it stopped at its gate before the queue row was written: write it now
        state_values = await app.ainvoke(
            # A thread that was skipped before starts over: every key a run sets is given afresh.
            {"event_id": candidate.event_id, "recipient": candidate.recipient, "priority": priority,
             "skip": "", "rounds": 0, "findings": [],
             "related": [{"event_id": member.event_id, "similarity": similarity} for member, similarity in entry.members]},
            config, durability="sync")
        if state_values.get("skip"):
            return Outcome(candidate.event_id, candidate.model, "skipped", state_values["skip"])
        state = await app.aget_state(config)
    values, gate = state.values, state.interrupts[0]
    review_id = ReviewQueue(ledger).enqueue(
        thread_id=thread, interrupt_id=gate.id, evidence=Evidence.from_dict(values["evidence"]),
        draft=Draft.from_dict(values["draft"]), findings=[Finding(**finding) for finding in values["findings"]],
        priority=priority, recipient=candidate.recipient,
        members=tuple((member["event_id"], member["similarity"]) for member in values.get("related", [])))
    return Outcome(candidate.event_id, candidate.model, "queued", f"review {review_id}", review_id)
