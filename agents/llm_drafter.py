"""The advocate with a language model: drafts through any OpenAI-compatible endpoint, grounded by code.

The model writes the words (title, body, claims with their evidence ids, the practices argued for);
code decides everything that can act: the planned actions are the offline drafter's
(`advocate.plan_actions`), so no answer can add a target, a channel or an archive. The critic then
checks the words against the evidence like any other draft.

Registry text is untrusted. The model sees the evidence only as JSON inside `<evidence>` delimiters,
with `<` and `>` escaped so no registry text can close the block, and evidence that reads as
instructions is withheld, as the offline drafter withholds it. The prompt (`prompts/advocate.md`)
says that the blocks are data.

When the endpoint gives no usable answer after its retries, the offline drafter writes the proposal
and the draft says why (`drafter="offline (LLM failed: HTTP 500)"`): the reviewer always gets a
grounded draft, never an empty or an unchecked one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import prompts
from agents.advocate import (PRACTICES, WITHHELD_NOTE, draft_offline, plan_actions, practices_for, precedents_for,
                             split_untrusted)
from tools.llm import Answer, LLMClient, LLMError
from tools.memory import Recollection
from weightkeeper.config import LLMSettings, ProposalSettings
from weightkeeper.proposals import Claim, Dossier, Draft, Finding

PROMPT = "advocate"
SCHEMA_NAME = "preservation_proposal"
# Strict structured output: every property required, no others (what OpenAI's strict mode accepts).
DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "body": {"type": "string"},
        "claims": {"type": "array", "items": {
            "type": "object",
            "properties": {"text": {"type": "string"}, "evidence": {"type": "array", "items": {"type": "string"}}},
            "required": ["text", "evidence"],
            "additionalProperties": False,
        }},
        "practices": {"type": "array", "items": {"type": "string", "enum": list(PRACTICES)}},
    },
    "required": ["title", "body", "claims", "practices"],
    "additionalProperties": False,
}


class LLMDrafter:
    """A `Drafter` for the graph (`agents.graph.build`): awaited with (dossier, recipient, settings, findings,
    recalled)."""

    def __init__(self, settings: LLMSettings, prompt: prompts.Prompt | None = None) -> None:
        """`prompt`: another version of prompts/advocate.md (an evaluation comparing two); the installed one by
        default."""
        self.client = LLMClient(settings)
        self.model = settings.model
        self.prompt = prompt or prompts.load(PROMPT)

    async def __call__(self, evidence: Dossier, recipient: str, settings: ProposalSettings,
                       findings: list[Finding], recalled: list[Recollection]) -> Draft:
        try:
            answer = await self.client.structured(system=self.prompt.text,
                                                  user=request(evidence, recipient, findings, recalled),
                                                  schema_name=SCHEMA_NAME, schema=DRAFT_SCHEMA)
            return self._draft(answer, evidence, recipient, settings)
        except LLMError as exc:
            offline = draft_offline(evidence, recipient=recipient, settings=settings)
            return replace(offline, drafter=f"offline (LLM failed: {exc.reason})")

    def _draft(self, answer: Answer, evidence: Dossier, recipient: str, settings: ProposalSettings) -> Draft:
        value = answer.value
        if not _is_draft(value):
            raise LLMError("the answer does not match the schema",
                           f"{self.model} answered keys {sorted(value)}; expected {DRAFT_SCHEMA['required']}")
        return Draft(
            title=value["title"].strip(),
            body=value["body"].strip(),
            claims=tuple(Claim(claim["text"], tuple(claim["evidence"])) for claim in value["claims"]),
            actions=plan_actions(evidence, recipient, settings),
            practices=tuple(value["practices"]),
            drafter=self.model,
            prompt=self.prompt.ref,
            token_usage=answer.usage,
        )


def request(evidence: Dossier, recipient: str, findings: list[Finding], recalled: Sequence[Recollection] = ()) -> str:
    """The user message: data only, each part a JSON document in its own delimited block."""
    blocks = [block("evidence", evidence_data(evidence, recipient)),
              block("practices", {name: PRACTICES[name] for name in practices_for(evidence)})]
    if recalled:
        blocks.append(block("memory", {
            "precedents": [{"title": entry.text, "practices": list(entry.practices), "outcome": entry.outcome}
                           for entry in recalled if entry.kind == "precedent"],
            "guidance": [{"reviewer_note": entry.text, "decision": entry.outcome}
                         for entry in recalled if entry.kind == "guidance"]}))
    if findings:
        blocks.append(block("findings", [finding.to_dict() for finding in findings]))
    return "\n\n".join(blocks)


def evidence_data(evidence: Dossier, recipient: str) -> dict[str, Any]:
    """The evidence as a model sees it (the drafter and the LLM critic): every model the letter covers, ranked
    (the lead first) with the ids of its items, then all items, instruction-like ones and precedents that do not fit
    the case withheld."""
    usable, withheld = split_untrusted(evidence.items)
    fitting = {item.id for item in precedents_for(evidence)}  # not a precedent about another kind of case
    usable = [item for item in usable if item.kind != "precedent" or item.id in fitting]
    shown = {item.id for item in usable}
    return {
        "recipient": recipient, "model": evidence.lead.model, "registry": evidence.lead.registry,
        "event": evidence.lead.event_kind,
        "models": [{"model": model.model, "registry": model.registry, "registry_kind": model.registry_kind,
                    "event": model.event_kind, "items": [item.id for item in model.items if item.id in shown],
                    "unknowns": list(model.unknowns)} for model in evidence.models],
        "items": [{"id": item.id, "kind": item.kind, "statement": item.statement, "facts": item.facts}
                  for item in usable],
        "unknowns": [*evidence.unknowns, *([WITHHELD_NOTE] if withheld else [])],
    }


def block(tag: str, value: Any) -> str:
    """`value` as JSON between `<tag>` and `</tag>`."""
    # Escaped angle brackets are still the same JSON, but no text inside can open or close a block.
    text = json.dumps(value, ensure_ascii=False, indent=1).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<{tag}>\n{text}\n</{tag}>"


def _is_draft(value: dict[str, Any]) -> bool:
    """Whether an answer has DRAFT_SCHEMA's shape: a server may ignore strict mode, so it is checked here."""
    claims, practices = value.get("claims"), value.get("practices")
    return (isinstance(value.get("title"), str) and isinstance(value.get("body"), str)
            and isinstance(claims, list) and all(_is_claim(claim) for claim in claims)
            and isinstance(practices, list) and all(isinstance(name, str) and name in PRACTICES for name in practices))


def _is_claim(claim: Any) -> bool:
    return (isinstance(claim, dict) and isinstance(claim.get("text"), str) and isinstance(claim.get("evidence"), list)
            and all(isinstance(evidence_id, str) for evidence_id in claim["evidence"]))
