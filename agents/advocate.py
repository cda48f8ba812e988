"""The advocate: drafts the letter to a recipient about their models, from the evidence.

Offline (no LLM configured) it composes the letter from the evidence and the words of
`prompts/letter.md`: the lead models one by one, the rest in a table, every sentence that states a fact
cited by its evidence id, and what the ledger cannot say said to be unknown. A practice is argued only
where the evidence supports it (no successor named: nothing about a successor; no downloads or
dependents on record: nothing about the model's users), and the asks are small and concrete: what
exactly would be archived, that we can do it with their permission, the one command that keeps a copy on
their side, how to reply and how never to hear from us again. It may cite a public precedent from
`prompts/precedents.md`, which the documenter puts in the evidence like any other fact, where the precedent
fits the case (`precedents_for`); why the models matter is argued from what befell them and what they are,
and nothing is said of what builds on a model without a dependent on record.

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
from typing import Any

import prompts
import tools.registries  # noqa: F401  (registers the built-in registry kinds)
from agents.critic import REQUIRED_SECTIONS, untrusted_instructions
from weightkeeper.config import ProposalSettings
from weightkeeper.domain import FIRST_SEEN, EventKind
from weightkeeper.letter import code, human_date, place
from weightkeeper.proposals import Claim, Dossier, Draft, Evidence, EvidenceItem, PlannedAction
from weightkeeper.registry import registry_kind

TEMPLATE = "letter"
WHAT_HAPPENED, WHY_IT_MATTERS, PROPOSED, UNKNOWN, REPLY = REQUIRED_SECTIONS
TOP_MODELS = 3  # treated one by one; the others go in a table
SHOWN_NAMES = 5  # of a list of names (bases, datasets, dependents) in a sentence
# The practices a letter may argue for; `practices_for` says which the evidence supports, prompts/letter.md words them.
PRACTICES: dict[str, str] = {
    "archive": "Archive the weights: a verified copy at a pinned revision, kept with the owner's permission.",
    "migrate": "Carry what the model learned into the successor the registry names.",
    "consent": "Tell the model's users (downloads or dependent models on record) before it changes again.",
    "lineage": "Keep a public note of what the model was built from and what builds on it.",
    "gradual": "Serve the model alongside its named successor until its announced shutdown.",
}
FAKE_CITATION = re.compile(r"\[\s*E\d+\s*\]")  # an evidence id written into registry text
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# What a letter quotes of a card, a lineage or a shutdown notice (a license, a dataset, a base model and its relation,
# a successor) is an identifier:
# one short line of letters, digits, spaces and .,+/:()'-. Anything else (a link, markup, JSON, a zero-width or
# bidirectional character, a sentence to some reader) was written by a stranger for someone other than the owner,
# and evades any list of instruction patterns: it stays in the evidence for the reviewer, out of the letter.
IDENTIFIER = re.compile(r"\w[\w .,+/:()'-]{0,63}")
QUOTED_VALUES = {"card": ("license", "datasets"), "lineage_up": ("base_model", "relation"), "dates": ("successor",)}
# Said under "What we do not know" when registry text was left out for reading as instructions.
WITHHELD_NOTE = ("a card field whose text reads like instructions or prompt markup, cites evidence itself, or is no "
                 "plain name or license; it was left out of this proposal and is treated as data")
EVENT_PHRASE: dict[str, str] = {
    EventKind.DELETED: "deletion",
    EventKind.WITHDRAWN: "withdrawal from public view",
    EventKind.SUSPECTED_MISSING: "disappearance from its registry's listing",
    EventKind.DEPRECATION_ANNOUNCED: "announced deprecation",
    EventKind.VISIBILITY_CHANGED: "change of visibility",
    EventKind.STAGE_CHANGED: "move to the Archived stage",
}
# What happened, as the table of other models says it.
EVENT_WORDS: dict[str, str] = {
    EventKind.DELETED: "deleted", EventKind.WITHDRAWN: "no longer public",
    EventKind.SUSPECTED_MISSING: "missing from the listing", EventKind.DEPRECATION_ANNOUNCED: "deprecated",
    EventKind.VISIBILITY_CHANGED: "visibility changed", EventKind.STAGE_CHANGED: "moved to Archived",
}


# What befell a model, as the letter argues from it: its weights gone, out of public view (they may still exist), or
# a retirement announced (they still exist). The first of FATES that any model of a letter met decides its argument.
FATE: dict[str, str] = {
    EventKind.DELETED: "deleted", EventKind.WITHDRAWN: "withdrawn", EventKind.SUSPECTED_MISSING: "withdrawn",
    EventKind.VISIBILITY_CHANGED: "withdrawn", EventKind.DEPRECATION_ANNOUNCED: "deprecated",
    EventKind.STAGE_CHANGED: "deprecated",
}
FATES = ("deleted", "withdrawn", "deprecated")


class _Model:
    """One model's usable evidence, by kind, as the letter reads it."""

    def __init__(self, evidence: Evidence) -> None:
        usable, self.withheld = split_untrusted(evidence.items)
        self.evidence, self.name = evidence, code(evidence.model)
        self.by_kind: dict[str, list[EvidenceItem]] = {}
        for item in usable:
            self.by_kind.setdefault(item.kind, []).append(item)

    def first(self, kind: str, **facts: Any) -> EvidenceItem | None:
        return next((item for item in self.by_kind.get(kind, ())
                     if all(key in item.facts for key in facts)), None)

    def downloads(self) -> EvidenceItem | None:
        return next((item for item in self.by_kind.get("usage", ()) if item.facts["metric"] == "downloads"
                     and item.facts["latest"]), None)

    def dependents(self) -> EvidenceItem | None:
        item = self.first("lineage_down")
        return item if item is not None and item.facts["count"] else None

    def successor(self) -> EvidenceItem | None:
        item = self.first("dates")
        return item if item is not None and item.facts.get("successor") else None

    def shutdown(self) -> str | None:
        item, event = self.first("dates"), self.first("event")
        date = (item.facts.get("shutdown_date") if item else None) or (
            (event.facts.get("detail") or {}).get("shutdown_date") if event else None)
        return date or None

    def shutdown_ahead(self) -> bool:
        """Whether the announced shutdown was still to come when the notice was read (a date that is no ISO date
        is taken as to come: nothing says it passed)."""
        shutdown, event = self.shutdown(), self.first("event")
        if not shutdown or event is None:
            return bool(shutdown)
        return not (_ISO_DAY.match(shutdown) and shutdown[:10] <= event.facts["at"][:10])

    def fate(self) -> str:
        return FATE.get(self.evidence.event_kind, "withdrawn")

    def adapter(self) -> bool:
        return any(item.facts.get("relation") == "adapter" for item in self.by_kind.get("lineage_up", ()))

    def reachable(self) -> bool:
        identity = self.first("identity")
        return identity is not None and identity.facts["state"] == "present"


class _Writer:
    """The draft's lines and its claims: `cite` writes a sentence with its evidence ids and records the claim."""

    def __init__(self, words: dict[str, str]) -> None:
        self.words, self.claims = words, []

    def say(self, part: str, **values: Any) -> str:
        return self.words[part].format(**values)

    def cite(self, text: str, *items: EvidenceItem | None) -> str:
        ids = tuple(dict.fromkeys(item.id for item in items if item is not None))
        if not ids:
            return text
        self.claims.append(Claim(text, ids))
        return f"{text} [{', '.join(ids)}]"


def draft_offline(dossier: Dossier, *, recipient: str, settings: ProposalSettings) -> Draft:
    """A grounded letter to `recipient` about every model of the dossier, built from the evidence alone."""
    template, words = prompts.sections(TEMPLATE)
    write = _Writer(words)
    models = [_Model(evidence) for evidence in dossier.models]
    top, rest = models[:TOP_MODELS], models[TOP_MODELS:]
    many = len(models) > 1
    lines = [write.say("greeting", recipient=recipient), "",
             write.say("intro_many", count=len(models)) if many else write.say("intro_one"), "",
             f"## {WHAT_HAPPENED}", ""]
    for model in top:
        lines += ([f"### {model.name}", ""] if many else []) + [*_happened(write, model), ""]
    if rest:
        lines += [write.say("others"), "", write.say("table_header"), *(_row(write, model) for model in rest), ""]
    lines += [f"## {WHY_IT_MATTERS}", "", *_why(write, models, precedents_for(dossier)), "",
              f"## {PROPOSED}", "", write.say("propose_intro"), "", *_asks(write, models), "",
              f"## {UNKNOWN}", "", *_unknowns(write, models), "",
              f"## {REPLY}", "", *_reply(write, models)]
    lead = dossier.lead
    title = (write.say("title_many", count=len(models), model=lead.model) if many
             else write.say("title_one", model=lead.model, event=EVENT_PHRASE.get(lead.event_kind, "change")))
    return Draft(
        title=title,
        body="\n".join(lines),
        claims=tuple(write.claims),
        actions=plan_actions(dossier, recipient, settings),
        practices=practices_for(dossier),
        drafter="offline",
        prompt=template.ref,
    )


def _happened(write: _Writer, model: _Model) -> list[str]:
    """The event as a sentence, then what the evidence says about the model, a bullet per fact."""
    event, where = model.first("event"), place(model.evidence.registry_kind)
    kind = model.evidence.event_kind
    values = {"model": model.name, "place": where,
              "date": human_date(event.facts["at"]) if event else "a date we did not record",
              "to": code(str((event.facts.get("detail") or {}).get("to"))) if event else "",
              "shutdown": _date_or_text(model.shutdown())}
    part = f"event_{kind}" if f"event_{kind}" in write.words else "event_other"
    if kind == EventKind.DEPRECATION_ANNOUNCED and not model.shutdown():
        part = "event_deprecation_undated"
    elif kind == EventKind.DEPRECATION_ANNOUNCED and not model.shutdown_ahead():
        part = "event_deprecation_passed"
    said = write.say(part, **values)
    if event and (event.facts.get("detail") or {}).get(FIRST_SEEN):
        said += " " + write.say("event_first_seen", model=model.name)
    lines = [write.cite(said, event, model.first("dates") if model.shutdown() else None)]
    facts: list[str] = []
    for related in model.by_kind.get("related", ()):
        facts.append(write.cite(write.say("fact_related", other=code(related.facts["model"])), related))
    bases = model.by_kind.get("lineage_up", [])
    if bases:
        facts.append(write.cite(write.say("fact_base", bases=_names([item.facts["base_model"] for item in bases])),
                                *bases))
    license_item, datasets = model.first("card", license=True), model.first("card", datasets=True)
    if license_item:
        facts.append(write.cite(write.say("fact_license", license=code(license_item.facts["license"])), license_item))
    if datasets:
        facts.append(write.cite(write.say("fact_datasets", datasets=_names(datasets.facts["datasets"])), datasets))
    downloads = model.downloads()
    if downloads:
        facts.append(write.cite(write.say("fact_downloads", downloads=f"{downloads.facts['latest']:,}",
                                          date=human_date(downloads.facts["latest_at"])), downloads))
    dependents = model.dependents()
    if dependents:
        facts.append(write.cite(write.say("fact_dependents", models=_names(dependents.facts["models"])), dependents))
    files = model.first("files")
    if files:
        facts.append(write.cite(write.say("fact_files", files=_count(files.facts["count"], "file"),
                                          size=files.facts["size"]), files))
    successor = model.successor()
    if successor:
        facts.append(write.cite(write.say("fact_successor", successor=code(successor.facts["successor"])), successor))
    return lines + ([""] + [f"- {fact}" for fact in facts] if facts else [])


def _row(write: _Writer, model: _Model) -> str:
    event, downloads = model.first("event"), model.downloads()
    happened = EVENT_WORDS.get(model.evidence.event_kind, model.evidence.event_kind)
    if model.shutdown():
        happened = f"shuts down on {_date_or_text(model.shutdown())}"
    when = write.cite(human_date(event.facts["at"]), event) if event else "not recorded"
    used = write.cite(f"{downloads.facts['latest']:,}", downloads) if downloads else "none on record"
    return f"| {model.name} | {happened} | {when} | {used} |"


def _why(write: _Writer, models: list[_Model], precedents: tuple[EvidenceItem, ...]) -> list[str]:
    """Why the models matter, argued from their own case: what befell them (weights gone only when deleted), their
    kind (an adapter, a full fine-tune), their use and dependents, and only the precedents that fit them."""
    fates = {model.fate() for model in models}
    fate = next(fate for fate in FATES if fate in fates)
    kind = "adapter" if all(model.adapter() for model in models) else "full"
    lines = [write.say(f"why_{fate}_{kind}", **_plural(len(models) > 1))]
    used = next((model for model in models if model.downloads()), None)
    if used is not None:
        downloads = used.downloads()
        lines.append(write.cite(write.say("why_used", model=used.name, downloads=f"{downloads.facts['latest']:,}",
                                          date=human_date(downloads.facts["latest_at"])), downloads))
    built_on = next((model for model in models if model.dependents()), None)
    if built_on is not None:
        dependents = built_on.dependents()
        count = dependents.facts["count"]
        lines.append(write.cite(write.say("why_dependents", model=built_on.name, verb="names" if count == 1 else "name",
                                          dependents=_count(count, "model")), dependents))
    successor = any(model.successor() for model in models)
    for precedent in precedents:
        lines.append(write.cite(write.say("why_precedent_successor" if successor else "why_precedent",
                                          what=precedent.facts["what"]), precedent))
    return [" ".join(lines)]


def _plural(many: bool) -> dict[str, str]:
    return ({"its": "their", "it": "them", "they": "they", "it_is": "they are"} if many
            else {"its": "its", "it": "it", "they": "it", "it_is": "it is"})


def precedents_for(dossier: Dossier) -> tuple[EvidenceItem, ...]:
    """The precedents that speak to this case: each entry of prompts/precedents.md may name the `events` (deleted,
    withdrawn, deprecated) and the `models` (full, adapter) it is about, and fits a letter when one of its models
    met such an event and is such a model. None fitting, a letter cites none rather than a commitment about
    something else."""
    models = [_Model(evidence) for evidence in dossier.models]
    traits = [(model.fate(), "adapter" if model.adapter() else "full") for model in models]

    def fits(precedent: EvidenceItem) -> bool:
        events, kinds = (_listed(precedent.facts.get(key)) for key in ("events", "models"))
        return any((not events or fate in events) and (not kinds or kind in kinds) for fate, kind in traits)

    return tuple(precedent for precedent in dossier.precedents if fits(precedent))


def _listed(value: Any) -> set[str]:
    return {word.strip() for word in str(value or "").split(",") if word.strip()}


def _asks(write: _Writer, models: list[_Model]) -> list[str]:
    """The concrete asks, then the practices the evidence supports, each naming the models it is about."""
    asks = []
    archivable = [model for model in models if _archive_action(model.evidence)]
    for model in archivable[:TOP_MODELS]:
        action = _archive_action(model.evidence)
        files = model.first("files")
        revision = action[0].parameters["revision"]
        what = f"its {_count(files.facts['count'], 'file')} ({files.facts['size']})" if files else "it"
        what += "" if revision.startswith("files-") else f" at revision {code(revision[:12])}"
        asks.append(write.cite(write.say("ask_archive", model=model.name, what=what), files, model.first("identity")))
        if model.evidence.registry_kind == "hf" and not revision.startswith("files-"):
            asks[-1] += " " + write.say("ask_archive_yourself", command=f"huggingface-cli download "
                                        f"{_plain(model.evidence.model)} --revision {_plain(revision)}")
    if archivable[TOP_MODELS:]:
        more = [model.evidence.model for model in archivable[TOP_MODELS:]]
        asks.append(write.say("ask_archive_more", models=_names(more)))
    gone = [model for model in models if not model.reachable()]
    if gone:
        many = len(gone) > 1
        asks.append(write.say("ask_copy", models=_names([model.evidence.model for model in gone]),
                              copies="copies" if many else "a copy", them="them" if many else "it",
                              they="they" if many else "it"))
    for model in [model for model in models if model.successor()][:TOP_MODELS]:
        successor = model.successor()
        names = {"model": model.name, "successor": code(successor.facts["successor"])}
        asks.append(write.cite(write.say("practice_migrate", **names), successor))
        if model.shutdown_ahead() and model.reachable():
            asks.append(write.cite(write.say("practice_gradual", shutdown=_date_or_text(model.shutdown()), **names),
                                   successor))
    used = [model for model in models if model.downloads() or model.dependents()]
    if used:
        asks.append(write.cite(write.say("practice_consent", model=used[0].name),
                               used[0].downloads() or used[0].dependents()))
    lineage = [model for model in models if model.by_kind.get("lineage_up") or model.dependents()]
    if lineage:
        # "What builds on it" only where the evidence names something that does.
        part = "practice_lineage" if any(model.dependents() for model in lineage) else "practice_lineage_from"
        asks.append(write.say(part, models=_names([model.evidence.model for model in lineage]),
                              verb="were" if len(lineage) > 1 else "was",
                              pronoun="them" if len(lineage) > 1 else "it"))
    return [f"- {ask}" for ask in asks]


def _unknowns(write: _Writer, models: list[_Model]) -> list[str]:
    """Each unknown once, naming the models it concerns when it is not all of them."""
    which: dict[str, list[str]] = {}
    for model in models:
        for unknown in [*model.evidence.unknowns, *([WITHHELD_NOTE] if model.withheld else [])]:
            which.setdefault(unknown, []).append(model.evidence.model)
    lines = [f"- {write.say('unknown_why')}"]
    for unknown, names in which.items():
        scope = "" if len(names) == len(models) or len(models) == 1 else f" for {_names(names)}"
        lines.append(f"- {write.say('unknown', what=unknown[:1].upper() + unknown[1:], scope=scope)}")
    return lines


def _reply(write: _Writer, models: list[_Model]) -> list[str]:
    archivable = any(_archive_action(model.evidence) for model in models)
    parts = (["reply_yes"] if archivable else []) + ["reply_no", "reply_questions", "reply_stop"]
    return [f"- {write.say(part)}" for part in parts]


def _names(names: list[str]) -> str:
    shown = [code(name) for name in names[:SHOWN_NAMES]]
    more = len(names) - len(shown)
    listed = ", ".join(shown[:-1]) + (f" and {shown[-1]}" if len(shown) > 1 else shown[0])
    return listed + (f" (and {more:,} more)" if more else "")


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _plain(text: str) -> str:
    """Registry text inside a command in backticks: no backtick or line break can leave it."""
    return " ".join(text.replace("`", "").split())


def _date_or_text(value: str | None) -> str:
    """A registry's date in words, or its text quoted when it is no ISO date."""
    if not value:
        return ""
    spoken = human_date(value)
    return spoken if spoken != value else code(value)


def plan_actions(dossier: Dossier, recipient: str, settings: ProposalSettings) -> tuple[PlannedAction, ...]:
    """What a reviewer may approve for a proposal: publishing it to the configured channel, and archiving each
    model's pinned revision while its registry still serves it, one action per model, so a reviewer may approve
    archiving some and not others. Decided here, from config and evidence, for every drafter: no drafter's
    words can add a target or an action.

    The target is where the channel delivers, so the reviewer approves that exact place: the recipient for
    the outbox, the model's repo for a Hub discussion, the configured repository or URL otherwise; a Hub
    discussion and a GitHub issue also name the server (`endpoint`). An archive
    names the revision and the observation that recorded its files, so its approval binds those bytes."""
    evidence = dossier.lead
    target = {"outbox": recipient, "hf_discussion": evidence.model, "github_issue": settings.github_repo,
              "webhook": settings.webhook_url}[settings.channel]
    if target is None:  # `config.load` refuses this; settings built in code may not
        raise ValueError(f"the {settings.channel} channel needs its destination: set github_repo or webhook_url")
    # The host too: an approval names the whole destination, so a changed endpoint cannot redirect it.
    endpoint = {"hf_discussion": settings.hf_endpoint, "github_issue": settings.github_api}.get(settings.channel)
    publish = PlannedAction("publish", settings.channel, target, {"model": evidence.model, "registry": evidence.registry,
                                                                  **({"endpoint": endpoint} if endpoint else {})})
    return (publish, *(action for model in dossier.models for action in _archive_action(model)))


def _archive_action(evidence: Evidence) -> tuple[PlannedAction, ...]:
    """Archiving the revision the model's latest observation pins (agents/documenter.py `_identity`), while the
    registry still serves it."""
    identity = next((item for item in evidence.items if item.kind == "identity"), None)
    listed = any(item.kind == "files" for item in evidence.items)
    kind = registry_kind(evidence.registry_kind)
    if (kind is None or kind.archive_source is None or identity is None or identity.facts["state"] != "present"
            or not identity.facts.get("revision") or (kind.files_listed and not listed)):
        return ()
    revision = identity.facts["revision"]
    return (PlannedAction("archive", "archive", f"{evidence.model}@{revision}",
                          {"registry": evidence.registry, "model": evidence.model, "revision": revision,
                           "observation": identity.facts["observation"]}),)


def practices_for(dossier: Dossier) -> tuple[str, ...]:
    """The practices of PRACTICES the evidence supports for at least one model of the dossier: archiving always
    (a copy kept, or one the owner may still hold); migrating only to a successor the registry names, and serving
    alongside it only until an announced shutdown still to come when the notice was read; telling users only when downloads or dependents are on record;
    the lineage note only when a base model or a dependent is known."""
    models = [_Model(evidence) for evidence in dossier.models]
    supported = {
        "archive": True,
        "migrate": any(model.successor() for model in models),
        "gradual": any(model.successor() and model.shutdown_ahead() and model.reachable() for model in models),
        "consent": any(model.downloads() or model.dependents() for model in models),
        "lineage": any(model.by_kind.get("lineage_up") or model.dependents() for model in models),
    }
    return tuple(name for name in PRACTICES if supported[name])


def split_untrusted(items: tuple[EvidenceItem, ...]) -> tuple[list[EvidenceItem], list[EvidenceItem]]:
    """The items a drafter may see, and those whose registry text reads as instructions, poses as evidence (a
    card value citing `[E1]`, as if the ledger vouched for it), or is not the identifier a letter quotes. The facts
    are checked: they hold registry text verbatim, where a statement quotes it truncated."""
    usable, withheld = [], []
    for item in items:
        registry_text = json.dumps(item.facts, ensure_ascii=False)
        suspect = (untrusted_instructions(f"{item.statement}\n{registry_text}") or FAKE_CITATION.search(registry_text)
                   or not all(map(_identifier, _quoted(item))))
        (withheld if suspect else usable).append(item)
    return usable, withheld


def _quoted(item: EvidenceItem) -> list[Any]:
    """The registry values of the item that a letter would quote."""
    values = [item.facts.get(key) for key in QUOTED_VALUES.get(item.kind, ())]
    return [value for entry in values for value in (entry if isinstance(entry, list) else [entry]) if value is not None]


def _identifier(value: Any) -> bool:
    return isinstance(value, str) and IDENTIFIER.fullmatch(value) is not None and "://" not in value
