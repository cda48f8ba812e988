"""The critic with a language model: reviews a draft for what the deterministic critic cannot judge.

A complement to `agents.critic`, never a replacement: the graph runs the deterministic critic on every
draft, then this one, and keeps both sets of findings. The model judges what regexes cannot: a claim
the evidence does not support though every number matches, an unfair characterisation of the
recipient, pressure or guilt phrased subtly, unknowns left unsaid, and whether the proposal is
respectful and persuasive (`prompts/critic.md`).

Its findings' codes carry an `llm_` prefix (`llm_unsupported_claim`), so a reviewer can tell them from
the deterministic ones. An `error` sends the draft back like any other, within the same rounds. The
draft and the evidence reach the model only as JSON inside `<draft>` and `<evidence>` delimiters, with
`<` and `>` escaped; evidence that reads as instructions is withheld, as from the drafter.

When the endpoint gives no usable answer, the critique is one note, `llm_critic_unavailable`, with the
reason: a failing model never blocks a draft, nor passes one; the deterministic findings stand.
"""

from __future__ import annotations

from typing import Any

import prompts
from agents.llm_drafter import block, evidence_data
from tools.llm import LLMClient, LLMError
from weightkeeper.config import LLMSettings
from weightkeeper import letter
from weightkeeper.proposals import Dossier, Draft, Finding

PROMPT = "critic"
SCHEMA_NAME = "proposal_critique"
PREFIX = "llm_"
UNAVAILABLE = "llm_critic_unavailable"
SEVERITIES = ("error", "note")
CODES = ("unsupported_claim", "unfair_characterisation", "pressure", "unknowns_missing", "style")
MAX_MESSAGE_CHARS = 600
# Strict structured output: every property required, no others.
CRITIQUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "findings": {"type": "array", "items": {
            "type": "object",
            "properties": {"severity": {"type": "string", "enum": list(SEVERITIES)},
                           "code": {"type": "string", "enum": list(CODES)},
                           "message": {"type": "string"}},
            "required": ["severity", "code", "message"],
            "additionalProperties": False,
        }},
    },
    "required": ["findings"],
    "additionalProperties": False,
}


class LLMCritic:
    """Awaited by the graph's critic node with (draft, evidence, recipient); answers findings, never raises
    LLMError."""

    def __init__(self, settings: LLMSettings) -> None:
        self.client = LLMClient(settings)
        self.model = settings.model
        self.prompt = prompts.load(PROMPT)

    async def critique(self, draft: Draft, evidence: Dossier, recipient: str) -> list[Finding]:
        try:
            answer = await self.client.structured(system=system(self.prompt), user=request(draft, evidence, recipient),
                                                  schema_name=SCHEMA_NAME, schema=CRITIQUE_SCHEMA)
            findings = answer.value.get("findings")
            if not isinstance(findings, list) or not all(_is_finding(finding) for finding in findings):
                raise LLMError("the answer does not match the schema",
                               f"{self.model} answered {sorted(answer.value)}; expected {CRITIQUE_SCHEMA['required']}")
        except LLMError as exc:
            return [Finding("note", UNAVAILABLE, f"the LLM critic ({self.prompt.ref}) gave no critique: {exc.reason}; "
                                                 "only the deterministic critic checked this draft")]
        return [Finding(finding["severity"], PREFIX + finding["code"],
                        f"{finding['message'].strip()[:MAX_MESSAGE_CHARS]} ({self.prompt.ref})")
                for finding in findings]


def system(prompt: prompts.Prompt) -> str:
    """The system message: the prompt, headed by its name and version."""
    return f"<!-- prompt: {prompt.ref} -->\n{prompt.text}"


def request(draft: Draft, evidence: Dossier, recipient: str) -> str:
    """The user message: data only, the draft (with the letter as its recipient will read it) and the evidence,
    each a JSON document in its own block."""
    words = {"title": draft.title, "body": draft.body, "letter": letter.render(draft, evidence),
             "claims": [{"text": claim.text, "evidence": list(claim.evidence)} for claim in draft.claims],
             "practices": list(draft.practices)}
    return "\n\n".join([block("draft", words), block("evidence", evidence_data(evidence, recipient))])


def _is_finding(finding: Any) -> bool:
    """Whether a finding has the schema's shape: a server may ignore strict mode, so it is checked here."""
    return (isinstance(finding, dict) and finding.get("severity") in SEVERITIES and finding.get("code") in CODES
            and isinstance(finding.get("message"), str))
