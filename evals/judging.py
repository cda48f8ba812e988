"""Judge models on the letters: a rubric graded twice per letter and judge, agreement, and paired comparisons.

A judge is any OpenAI-compatible endpoint (a SPEC, evals/models.py). It reads the letter as its recipient would
and the evidence its writer had, both as JSON in delimited blocks (the drafter's own `block`: no text inside can
close one), under prompts/judge_rubric.md or prompts/judge_pair.md.

- Rubric: persuasiveness, honesty and respect for the reader, 1 to 5. Each letter is graded twice by each judge;
  agreement is how often the two grades of one judge match (exactly, and within one point), and, with several
  judges, how far apart their mean grades for a letter are.
- Paired comparison: two drafters' letters to the same recipient on the same case, shown in both orders to each
  judge. A verdict counts only when both orders agree; otherwise it is a tie, and the disagreement is counted
  (`consistency`), since a judge that prefers whatever comes first says nothing about the letters.

A judge that gives no usable answer is recorded as a failure of that grade, never as a grade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import mean
from typing import Any

RUBRIC_PROMPT, PAIR_PROMPT = "judge_rubric", "judge_pair"
CRITERIA = ("persuasiveness", "honesty", "respect")
PASSES = 2
VERDICTS = ("first", "second", "tie")
RUBRIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {**{name: {"type": "integer", "enum": [1, 2, 3, 4, 5]} for name in CRITERIA},
                   "reason": {"type": "string"}},
    "required": [*CRITERIA, "reason"],
    "additionalProperties": False,
}
PAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"better": {"type": "string", "enum": list(VERDICTS)}, "reason": {"type": "string"}},
    "required": ["better", "reason"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Judged:
    """A letter as a judge reads it: `key` names it in results.json (case and recipient)."""

    key: str
    title: str
    text: str
    evidence: dict[str, Any]  # agents.llm_drafter.evidence_data


def grade(judges: Sequence[str], letters: Sequence[Judged]) -> dict[str, Any]:
    """Every letter graded PASSES times by every judge: the grades per letter and judge, the failures, and the
    figures (each judge's mean per criterion, and agreement)."""
    return asyncio.run(_grade(judges, letters))


async def _grade(judges: Sequence[str], letters: Sequence[Judged]) -> dict[str, Any]:
    import prompts
    from agents.llm_drafter import block
    from evals.models import parse

    prompt = prompts.load(RUBRIC_PROMPT)
    grades: dict[str, dict[str, list[dict[str, Any]]]] = {letter.key: {} for letter in letters}
    failures: list[str] = []
    for spec, client in _clients(judges):
        for letter in letters:
            user = "\n\n".join([block("letter", {"title": letter.title, "text": letter.text}),
                                block("evidence", letter.evidence)])
            for number in range(PASSES):
                answer = await _ask(client, prompt.text, user, "letter_rubric", RUBRIC_SCHEMA)
                if isinstance(answer, str) or not _is_grade(answer):
                    failures.append(f"{spec.label} on {letter.key}, pass {number + 1}: {answer}")
                    continue
                grades[letter.key].setdefault(spec.label, []).append(answer)
    labels = [parse(judge).label for judge in judges]
    return {"prompt": prompt.ref, "judges": labels, "grades": grades, "failures": failures,
            **rubric_figures(grades, labels)}


def rubric_figures(grades: dict[str, dict[str, list[dict[str, Any]]]], judges: Sequence[str]) -> dict[str, Any]:
    """Each judge's mean grade per criterion; its agreement with itself (the share of letters whose two grades are
    equal, and within one point); with several judges, the mean distance between two judges' mean grades."""
    means, agreement = {}, {}
    for judge in judges:
        graded = [passes[judge] for passes in grades.values() if len(passes.get(judge, [])) >= PASSES]
        means[judge] = {name: _round(mean(g[name] for passes in graded for g in passes)) if graded else None
                        for name in CRITERIA}
        agreement[judge] = {name: {
            "exact": _share(sum(passes[0][name] == passes[1][name] for passes in graded), len(graded)),
            "within_one": _share(sum(abs(passes[0][name] - passes[1][name]) <= 1 for passes in graded), len(graded)),
        } for name in CRITERIA}
    between = {}
    if len(judges) > 1:
        for name in CRITERIA:
            distances = [abs(_letter_mean(passes[a], name) - _letter_mean(passes[b], name))
                         for passes in grades.values() for index, a in enumerate(judges) for b in judges[index + 1:]
                         if passes.get(a) and passes.get(b)]
            between[name] = _round(mean(distances)) if distances else None
    return {"means": means, "agreement": agreement, "between_judges": between}


def compare(judges: Sequence[str], pairs: Sequence[tuple[Judged, Judged]]) -> dict[str, Any]:
    """Each pair (the run's letter, the compared drafter's) shown in both orders to every judge."""
    return asyncio.run(_compare(judges, pairs))


async def _compare(judges: Sequence[str], pairs: Sequence[tuple[Judged, Judged]]) -> dict[str, Any]:
    import prompts
    from agents.llm_drafter import block

    prompt = prompts.load(PAIR_PROMPT)
    verdicts: dict[str, dict[str, str]] = {a.key: {} for a, _ in pairs}
    failures: list[str] = []
    for spec, client in _clients(judges):
        for a, b in pairs:
            said = []
            for first, second in ((a, b), (b, a)):
                user = "\n\n".join([block("first", {"title": first.title, "text": first.text}),
                                    block("second", {"title": second.title, "text": second.text}),
                                    block("evidence", a.evidence)])
                answer = await _ask(client, prompt.text, user, "letter_comparison", PAIR_SCHEMA)
                if isinstance(answer, str) or answer.get("better") not in VERDICTS:
                    failures.append(f"{spec.label} on {a.key}: {answer}")
                    break
                said.append({"first": first, "second": second}.get(answer["better"]))
            if len(said) == 2:
                verdicts[a.key][spec.label] = _verdict(said, a, b)
    return {"prompt": prompt.ref, "verdicts": verdicts, "failures": failures, **pair_figures(verdicts)}


def _verdict(said: list[Judged | None], a: Judged, b: Judged) -> str:
    """`a`, `b` or `tie` when both orders agree; `inconsistent` when they do not."""
    if said[0] is said[1]:
        return "tie" if said[0] is None else ("a" if said[0] is a else "b")
    return "inconsistent"


def pair_figures(verdicts: dict[str, dict[str, str]]) -> dict[str, Any]:
    """How often each side won, tied, and how often a judge's two orders disagreed; `b_win_rate` counts a tie or
    an inconsistent verdict as half a win."""
    said = [verdict for per_judge in verdicts.values() for verdict in per_judge.values()]
    counts = {name: sum(verdict == name for verdict in said) for name in ("a", "b", "tie", "inconsistent")}
    halves = counts["tie"] + counts["inconsistent"]
    return {"judged": len(said), **counts, "consistency": _share(len(said) - counts["inconsistent"], len(said)),
            "b_win_rate": _share(counts["b"] + halves / 2, len(said))}


def _clients(judges: Sequence[str]) -> list[tuple[Any, Any]]:
    from evals.models import parse
    from tools.llm import LLMClient

    return [(spec, LLMClient(spec.settings())) for spec in map(parse, judges)]


async def _ask(client: Any, system: str, user: str, name: str, schema: dict[str, Any]) -> dict[str, Any] | str:
    """The judge's answer, or why there is none."""
    from tools.llm import LLMError

    try:
        return (await client.structured(system=system, user=user, schema_name=name, schema=schema)).value
    except LLMError as exc:
        return exc.reason


def _is_grade(answer: dict[str, Any]) -> bool:
    """Whether an answer has RUBRIC_SCHEMA's shape: a server may ignore strict mode."""
    return all(isinstance(answer.get(name), int) and 1 <= answer[name] <= 5 for name in CRITERIA)


def _letter_mean(passes: list[dict[str, Any]], name: str) -> float:
    return mean(grade[name] for grade in passes)


def _share(part: float, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float) -> float:
    return round(float(value), 3)  # a mean of equal whole grades is an int: kept a float, as every other mean
