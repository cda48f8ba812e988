"""The state a proposal's LangGraph thread carries: plain JSON-like values only, so checkpoints
deserialise under strict msgpack (`LANGGRAPH_STRICT_MSGPACK`)."""

from __future__ import annotations

from typing import Any, TypedDict


class ProposalState(TypedDict, total=False):
    events: list[int]  # the event of each model the letter covers, ranked: the lead first
    skip: str  # why no proposal is drafted (set by the coordinator); the thread ends
    priority: float  # the lead's
    recipient: str
    cooldown: str  # why it is drafted inside the recipient's cooldown, for the reviewer; empty otherwise
    related: list[dict[str, Any]]  # near-duplicates grouped under a model: {"lead", "event_id", "similarity"}
    evidence: dict[str, Any]  # weightkeeper.proposals.Dossier.to_dict()
    recalled: list[dict[str, Any]]  # what memory recalled for the first draft: tools.memory.Recollection.to_dict()
    draft: dict[str, Any]  # weightkeeper.proposals.Draft.to_dict()
    findings: list[dict[str, Any]]  # the critic's findings on the latest draft
    rounds: int  # drafts the critic sent back
    revise: bool  # the critic sends the latest draft back to the advocate
    review_id: int  # the review-queue row, once a human was asked
    executed: list[dict[str, Any]]  # what the executor ran after an approval


def thread_id(recipient: str, event_id: int) -> str:
    """One thread per proposal: its recipient and the event of the model it led with when first drafted, so
    drafting again after a crash finds it."""
    return f"letter:{recipient}:{event_id}"
