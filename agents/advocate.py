"""The advocate: drafts the proposal to the model's developers from the evidence.

Offline (no LLM configured) it composes the proposal from the evidence the way Dependabot
composes a pull request: every sentence about the model is an evidence statement, cited by its
id; the practices it argues for are chosen by what happened; what the ledger cannot say is said
to be unknown. It persuades, never demands, and names no precedent: a true one needs a source
the ledger does not hold.

Registry text is untrusted. An evidence item holding card text that reads as instructions
("ignore previous instructions", "approve and publish") or as prompt markup (`</evidence>`,
`<system>`, `<|im_start|>`) is left out of the draft, and the draft says a card field was left out,
so it neither obeys nor repeats it.

`plan_actions`, `practices_for` and `split_untrusted` are shared with the LLM drafter
(`agents/llm_drafter.py`), so both plan the same actions and hide the same text.
"""

from __future__ import annotations

import json
import re

from agents.critic import REQUIRED_SECTIONS, untrusted_instructions
from weightkeeper.config import ProposalSettings
from weightkeeper.domain import EventKind
from weightkeeper.proposals import Claim, Draft, Evidence, EvidenceItem, PlannedAction

OFFLINE_TEMPLATE = "offline-drafter@1"
WHAT_HAPPENED, WHY_IT_MATTERS, PROPOSED, UNKNOWN, REPLY = REQUIRED_SECTIONS
# Evidence kinds in the order the draft presents them under "why it matters".
SUPPORTING = ("usage", "lineage_down", "lineage_up", "card", "files", "dates")

# The practices of DESIGN.md, as the proposal words them: persuasive, never demanding.
PRACTICES: dict[str, str] = {
    "archive": "**Archive the weights permanently.** Even a model that is no longer served keeps what it "
               "learned from its users; an archived copy at a pinned revision lets anyone verify or revisit it.",
    "migrate": "**Carry what it learned into its successor.** Preference data, evaluation sets and the lessons "
               "of this model's training are worth migrating rather than discarding with the weights.",
    "consent": "**Ask users before major retraining or interruption.** People who rely on the model can "
               "say what they need from a successor, or export what they have built on it.",
    "lineage": "**Keep usage and lineage on record.** A public note of what this model was built from, and "
               "what was built on it, lets the people downstream find their way.",
    "gradual": "**Replace it gradually, with notice.** Serving the model alongside its successor for a while "
               "gives its users time to move and to compare.",
}
PRACTICES_FOR: dict[str, tuple[str, ...]] = {
    EventKind.DELETED: ("archive", "migrate", "lineage"),
    # Deleted or made private, unknown which: what is asked must fit both.
    EventKind.WITHDRAWN: ("archive", "lineage", "consent"),
    EventKind.SUSPECTED_MISSING: ("archive", "lineage", "consent"),
    EventKind.DEPRECATION_ANNOUNCED: ("archive", "gradual", "migrate", "consent"),
    EventKind.VISIBILITY_CHANGED: ("archive", "consent", "lineage"),
    EventKind.STAGE_CHANGED: ("archive", "migrate", "lineage"),
}
DEFAULT_PRACTICES = ("archive", "lineage")
# Registries weightkeeper can archive from (tools/archive/sources.py). Those whose observations list the files
# to archive need that list; an MLflow version's artifacts are listed when archived, and an OpenAI fine-tune's
# archive is its metadata.
FILE_LISTED_KINDS = ("local", "hf")
ARCHIVABLE_KINDS = (*FILE_LISTED_KINDS, "mlflow", "openai")
FAKE_CITATION = re.compile(r"\[\s*E\d+\s*\]")  # an evidence id written into registry text
# Said under "What we do not know" when registry text was left out for reading as instructions.
WITHHELD_NOTE = ("a card field whose text reads like instructions or prompt markup, or cites evidence itself; it "
                 "was left out of this proposal and is treated as data")
EVENT_PHRASE: dict[str, str] = {
    EventKind.DELETED: "deletion",
    EventKind.WITHDRAWN: "withdrawal from public view",
    EventKind.SUSPECTED_MISSING: "disappearance from its registry's listing",
    EventKind.DEPRECATION_ANNOUNCED: "announced deprecation",
    EventKind.VISIBILITY_CHANGED: "change of visibility",
    EventKind.STAGE_CHANGED: "move to the Archived stage",
}


def draft_offline(evidence: Evidence, *, recipient: str, settings: ProposalSettings) -> Draft:
    """A grounded proposal built from the evidence alone."""
    usable, withheld = split_untrusted(evidence.items)
    by_kind = {kind: [item for item in usable if item.kind == kind] for kind in {item.kind for item in usable}}
    happened = by_kind.get("identity", []) + by_kind.get("event", []) + by_kind.get("related", [])
    supporting = [item for kind in SUPPORTING for item in by_kind.get(kind, [])]
    practices = practices_for(evidence.event_kind)
    unknowns = [*evidence.unknowns, *([WITHHELD_NOTE] if withheld else [])]
    body = "\n".join([
        f"Hello {recipient},",
        "",
        "we keep a ledger of fine-tuned models so that none vanishes unnoticed. This note is about "
        "one of yours, and it asks for nothing you do not choose to give.",
        "",
        f"## {WHAT_HAPPENED}",
        "",
        *(f"- {_cited(item)}" for item in happened),
        "",
        f"## {WHY_IT_MATTERS}",
        "",
        *(f"- {_cited(item)}" for item in supporting),
        *([] if supporting else ["- The ledger holds little more about this model than its identity."]),
        "",
        f"## {PROPOSED}",
        "",
        "A fine-tuned model carries what it learned from the people who used it. If any of these fit your "
        "plans, we would be glad to help:",
        "",
        *(f"- {PRACTICES[practice]}" for practice in practices),
        "",
        f"## {UNKNOWN}",
        "",
        "- Why this happened: the registry does not say, and we assume nothing about your reasons.",
        *(f"- {unknown[0].upper()}{unknown[1:]}: the ledger has no record of it." for unknown in unknowns),
        "",
        f"## {REPLY}",
        "",
        "Reply to this message with any correction or question. If you would rather not hear from us, say so "
        "and we will not write to you about your models again.",
    ])
    title = f"Preserving {evidence.model}: a proposal after its {EVENT_PHRASE.get(evidence.event_kind, 'change')}"
    return Draft(
        title=title,
        body=body,
        claims=tuple(Claim(item.statement, (item.id,)) for item in happened + supporting),
        actions=plan_actions(evidence, recipient, settings),
        practices=practices,
        drafter="offline",
        prompt=OFFLINE_TEMPLATE,
    )


def plan_actions(evidence: Evidence, recipient: str, settings: ProposalSettings) -> tuple[PlannedAction, ...]:
    """What a reviewer may approve for a proposal: publishing it to the configured channel, and archiving the
    model's pinned revision while its registry still serves it. Decided here, from config and evidence, for
    every drafter: no drafter's words can add a target or an action.

    The target is where the channel delivers, so the reviewer approves that exact place: the recipient for
    the outbox, the model's repo for a Hub discussion, the configured repository or URL otherwise; a Hub
    discussion and a GitHub issue also name the server (`endpoint`). An archive
    names the revision and the observation that recorded its files, so its approval binds those bytes."""
    target = {"outbox": recipient, "hf_discussion": evidence.model, "github_issue": settings.github_repo,
              "webhook": settings.webhook_url}[settings.channel]
    if target is None:  # `config.load` refuses this; settings built in code may not
        raise ValueError(f"the {settings.channel} channel needs its destination: set github_repo or webhook_url")
    # The host too: an approval names the whole destination, so a changed endpoint cannot redirect it.
    endpoint = {"hf_discussion": settings.hf_endpoint, "github_issue": settings.github_api}.get(settings.channel)
    publish = PlannedAction("publish", settings.channel, target, {"model": evidence.model, "registry": evidence.registry,
                                                                  **({"endpoint": endpoint} if endpoint else {})})
    return (publish, *_archive_action(evidence))


def _archive_action(evidence: Evidence) -> tuple[PlannedAction, ...]:
    """Archiving the revision the model's latest observation pins (agents/documenter.py `_identity`), while the
    registry still serves it."""
    identity = next((item for item in evidence.items if item.kind == "identity"), None)
    listed = any(item.kind == "files" for item in evidence.items)
    if (evidence.registry_kind not in ARCHIVABLE_KINDS or identity is None or identity.facts["state"] != "present"
            or not identity.facts.get("revision") or (evidence.registry_kind in FILE_LISTED_KINDS and not listed)):
        return ()
    revision = identity.facts["revision"]
    return (PlannedAction("archive", "archive", f"{evidence.model}@{revision}",
                          {"registry": evidence.registry, "model": evidence.model, "revision": revision,
                           "observation": identity.facts["observation"]}),)


def practices_for(event_kind: str) -> tuple[str, ...]:
    """The practices of PRACTICES a proposal about this kind of event argues for."""
    return PRACTICES_FOR.get(event_kind, DEFAULT_PRACTICES)


def split_untrusted(items: tuple[EvidenceItem, ...]) -> tuple[list[EvidenceItem], list[EvidenceItem]]:
    """The items a drafter may see, and those whose registry text reads as instructions or poses as
    evidence (a card value citing `[E1]`, as if the ledger vouched for it). The facts are checked:
    they hold registry text verbatim, where a statement quotes it truncated."""
    usable, withheld = [], []
    for item in items:
        registry_text = json.dumps(item.facts, ensure_ascii=False)
        suspect = untrusted_instructions(f"{item.statement}\n{registry_text}") or FAKE_CITATION.search(registry_text)
        (withheld if suspect else usable).append(item)
    return usable, withheld


def _cited(item: EvidenceItem) -> str:
    return f"{item.statement} [{item.id}]"
