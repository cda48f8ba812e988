"""The letters suite: cases of models that vanish or will, their letters drafted by the real agents, scored.

A case (evals/letters/*.yaml) names its registry (`hf`, the fake Hub read with a member's token unless `caller`
says otherwise, or `local`), the `models` it holds at the first scan, each an `add` operation of
`evals.worlds` (`name`, `card`: the card's front matter, `adapter`, and on the Hub `downloads` and `likes`), and
`then`: the operations (`delete`, `update`, `rename`) made before the second scan. A card's `shutdown_in_days: N`
becomes a `shutdown_date` N days after the run's day, so a shutdown stays near or far whenever the suite runs.

The ledger is written by two real scans, the proposals by the real graph (`agents.graph.propose`: coordinator,
documenter, advocate, critic), and every letter queued for review is scored against the evidence the documenter
gave and against what the case's registry truly held (`evals.letter_scores`).
"""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from evals.letter_scores import LetterScore, Truth, score_letter
from evals.worlds import ScenarioError, open_world, yaml_files
from weightkeeper.ledger import queries
from weightkeeper.proposals import Dossier

CASES = Path(__file__).parent / "letters"
CASE_KEYS = frozenset({"description", "registry", "caller", "models", "then"})
REGISTRIES = ("hf", "local")
THEN_OPERATIONS = frozenset({"delete", "update", "rename"})
RELATIVE_SHUTDOWN = "shutdown_in_days"


@dataclass
class Case:
    name: str
    description: str
    registry: str
    caller: str
    models: list[dict[str, Any]]
    then: list[dict[str, Any]]
    path: Path

    def operations(self, today: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The first scan's `add`s and the second's changes, each relative shutdown made a date from `today`."""
        adds = [{**_dated(model, today), "op": "add"} for model in self.models]
        return adds, [_dated(operation, today) for operation in self.then]

    def truths(self, today: date) -> dict[str, Truth]:
        """What the registry truly holds after the changes, per model name: what a letter's practices must fit."""
        adds, changes = self.operations(today)
        held = {add["name"]: copy.deepcopy(add) for add in adds}
        deleted: set[str] = set()
        for change in changes:
            if change["op"] == "delete":
                deleted.add(change["name"])
            elif change["op"] == "rename":
                held[change["to"]] = held.pop(change["name"])
            else:
                held[change["name"]].setdefault("card", {}).update(change.get("card", {}))
                held[change["name"]].update({key: change[key] for key in ("downloads", "likes") if key in change})
        bases = {name: _bases(model.get("card", {})) for name, model in held.items()}
        truths = {}
        for name, model in held.items():
            card = model.get("card", {})
            dependents = [other for other, named in bases.items() if name in named]  # on record, even if deleted
            truths[name] = Truth(name=name, successor=card.get("new_version"), shutdown=card.get("shutdown_date"),
                                 deleted=name in deleted, downloads=int(model.get("downloads") or 0),
                                 dependents=len(dependents), bases=len(bases[name]))
        return truths


@dataclass
class LetterResult:
    recipient: str
    models: list[str]
    title: str
    body: str  # as the advocate wrote it, citing evidence ids
    letter: str  # as the recipient reads it
    drafter: str
    prompt: str
    critic_errors: list[str]
    score: LetterScore
    dossier: Dossier  # the evidence it was drafted from (a judge reads it too)


@dataclass
class CaseResult:
    case: Case
    letters: list[LetterResult]
    seconds: float
    compared: list[LetterResult] = field(default_factory=list)  # the same case drafted by the compared drafter

    @property
    def passed(self) -> bool:
        return bool(self.letters) and all(letter.score.passed for letter in self.letters)


def load_cases(folder: Path = CASES) -> list[Case]:
    """Every case file of the folder, checked: a mistake names the file and says what to fix."""
    cases = []
    for path, raw in yaml_files(folder, "case"):
        _check_case(path, raw)
        cases.append(Case(path.stem, str(raw.get("description", "")), raw["registry"], raw.get("caller", "member"),
                          raw["models"], raw.get("then", []), path))
    return cases


def _check_case(path: Path, raw: Any) -> None:
    if not isinstance(raw, dict) or set(raw) - CASE_KEYS:
        raise ScenarioError(f"{path}: a case is a mapping of {', '.join(sorted(CASE_KEYS))}")
    if raw.get("registry") not in REGISTRIES:
        raise ScenarioError(f"{path}: `registry` must be one of {', '.join(REGISTRIES)}, not {raw.get('registry')!r}")
    models = raw.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, dict) and "name" in m for m in models):
        raise ScenarioError(f"{path}: `models` is a non-empty list of models, each with a `name`")
    names = {model["name"] for model in models}
    for number, operation in enumerate(raw.get("then", []), start=1):
        if not isinstance(operation, dict) or operation.get("op") not in THEN_OPERATIONS:
            raise ScenarioError(f"{path}, then {number}: an operation needs `op`, one of "
                                f"{', '.join(sorted(THEN_OPERATIONS))}, not {operation!r}")
        if operation.get("name") not in names:
            raise ScenarioError(f"{path}, then {number}: {operation.get('name')!r} is not one of the case's models")


def _dated(operation: dict[str, Any], today: date) -> dict[str, Any]:
    card = dict(operation.get("card", {}))
    if RELATIVE_SHUTDOWN in card:
        card["shutdown_date"] = (today + timedelta(days=int(card.pop(RELATIVE_SHUTDOWN)))).isoformat()
    return {**operation, **({"card": card} if card else {})}


def _bases(card: dict[str, Any]) -> list[str]:
    bases = card.get("base_model") or []
    return [bases] if isinstance(bases, str) else [str(base) for base in bases]


@dataclass(frozen=True)
class Drafting:
    """A drafter for the graph, with the LLM critic beside the deterministic one when it drafts with a model."""

    label: str  # `offline`, or the model SPEC without its key
    drafter: Callable[..., Any]
    llm_critic: Any = None


def scan_case(case: Case, scratch: Path, today: date) -> Path:
    """The case's registry scanned twice, before and after its changes; the ledger's path."""
    from weightkeeper.config import RegistryConfig
    from weightkeeper.ledger import Ledger
    from weightkeeper.ledger.store import LedgerAdapterCache, LedgerDigestCache
    from weightkeeper.scan import Scanner

    scratch.mkdir(parents=True)
    world = open_world(case.registry, case.caller, scratch, files="*")
    config = RegistryConfig(case.name, world.kind, world.settings)
    path = scratch / "ledger.sqlite3"
    try:
        with Ledger(path) as ledger:
            registry_id = ledger.registry_id(config.name, config.kind, config.location)
            for number, operations in enumerate(case.operations(today)):
                try:
                    for operation in operations:
                        world.apply(operation)
                except (KeyError, OSError, ScenarioError) as exc:
                    raise ScenarioError(f"{case.path}: {'then' if number else 'models'}: {exc}") from exc
                adapter = world.adapter(LedgerAdapterCache(ledger, registry_id), LedgerDigestCache(ledger, registry_id))
                Scanner(ledger, config, adapter, allow_empty=True).run()
    finally:
        world.close()
    return path


def draft_letters(case: Case, scanned: Path, folder: Path, drafting: Drafting, today: date) -> list[LetterResult]:
    """A copy of the scanned ledger in `folder`, the graph run on it, and each letter it queued, scored."""
    from agents.graph import propose
    from weightkeeper import letter
    from weightkeeper.config import ProposalSettings
    from weightkeeper.ledger import Ledger
    from weightkeeper.review import ReviewQueue

    folder.mkdir(parents=True)
    with sqlite3.connect(scanned) as source, sqlite3.connect(folder / "ledger.sqlite3") as copied:
        source.backup(copied)
    truths = case.truths(today)
    results = []
    with Ledger(folder / "ledger.sqlite3") as ledger:
        asyncio.run(propose(ledger, folder, ProposalSettings(), drafter=drafting.drafter,
                            llm_critic=drafting.llm_critic))
        keys = queries.model_keys(ledger)
        for review in ReviewQueue(ledger).list():
            draft, dossier = review.draft, review.evidence
            rendered = letter.render(draft, dossier)
            models = [evidence.model for evidence in dossier.models]
            score = score_letter(title=letter.title(draft), body=draft.body, rendered=rendered, dossier=dossier,
                                 truths=[truths[name] for name in models if name in truths], today=today,
                                 internal=[str(folder.parent), *keys])
            results.append(LetterResult(review.recipient, models, letter.title(draft), draft.body, rendered,
                                        draft.drafter, draft.prompt,
                                        [f.message for f in review.findings if f.severity == "error"], score,
                                        dossier))
    return results


def run_case(case: Case, scratch: Path, drafting: Drafting, compared: Drafting | None = None) -> CaseResult:
    started, today = time.perf_counter(), datetime.now(UTC).date()
    scanned = scan_case(case, scratch / "scanned", today)
    letters = draft_letters(case, scanned, scratch / "a", drafting, today)
    other = draft_letters(case, scanned, scratch / "b", compared, today) if compared else []
    return CaseResult(case, letters, round(time.perf_counter() - started, 3), other)


def run_suite(scratch: Path, drafting: Drafting, *, compared: Drafting | None = None,
              cases: list[Case] | None = None,
              progress: Callable[[int, int, CaseResult], object] = lambda done, total, result: None
              ) -> list[CaseResult]:
    """Every case, each in its own folder under `scratch`; `progress` hears of each one done."""
    chosen = load_cases() if cases is None else cases
    results = []
    for number, case in enumerate(chosen, start=1):
        results.append(run_case(case, scratch / case.name, drafting, compared))
        progress(number, len(chosen), results[-1])
    return results
