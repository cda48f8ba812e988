"""The state a proposal's LangGraph thread carries: plain JSON-like values only, so checkpoints
deserialise under strict msgpack (`LANGGRAPH_STRICT_MSGPACK`)."""

from __future__ import annotations

from typing import Any, TypedDict


class ProposalState(TypedDict, total=False):
    event_id: int
    skip: str  # why no proposal is drafted (set by the coordinator); the thread ends
    priority: float
    recipient: str
    related: list[dict[str, Any]]  # near-duplicates the proposal covers too: {"event_id", "similarity"}
    evidence: dict[str, Any]  # weightkeeper.proposals.Evidence.to_dict()
    recalled: list[dict[str, Any]]  # what memory recalled for the first draft: tools.memory.Recollection.to_dict()
    draft: dict[str, Any]  # weightkeeper.proposals.Draft.to_dict()
    findings: list[dict[str, Any]]  # the critic's findings on the latest draft
    rounds: int  # drafts the critic sent back
    revise: bool  # the critic sends the latest draft back to the advocate
    review_id: int  # the review-queue row, once a human was asked
    executed: list[dict[str, Any]]  # what the executor ran after an approval


def thread_id(registry: str, model_id: int, event_id: int) -> str:
    """One thread per (registry, model, event): proposing again for the same event finds it."""
    return f"{registry}:{model_id}:{event_id}"
