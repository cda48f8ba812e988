"""The letters suite's part of results.json and report.md, and its regressions against a baseline."""

from __future__ import annotations

import re
import time
from pathlib import Path
from statistics import median
from typing import Any

from evals import judging, models
from evals.letter_scores import PRACTICES, boilerplate, why_sentences
from evals.letters import Case, CaseResult, LetterResult, run_suite
from evals.suite import Options, Part, Suite, progress_line

# Problems a letter must never have: any above 0 is a regression, whatever the baseline says.
MUST_BE_ZERO = ("fabricated", "misplaced", "tone", "readability", "overclaims")
# A share (grounding, a practice's precision or recall, letters passed) may fall this much below the baseline's.
RATE_TOLERANCE = 0.02
WORST_SHOWN = 3
FENCE = "~~~~"  # around a letter's text in the report: letters quote names in backticks, never in tildes


def run_letters(scratch: Path, options: Options, cases: list[Case] | None = None) -> Part:
    """The suite on every case (or `cases`): drafted, scored, and with judges graded and compared."""
    drafting = models.drafting(options.model)
    compared = models.drafting(options.compare) if options.compare else None
    clock = time.perf_counter()
    results = run_suite(scratch, drafting, compared=compared, cases=cases,
                        progress=lambda done, total, result: options.progress(
                            progress_line(done, total, result.case.name, result.passed, result.seconds)))
    drafted = [letter for result in results for letter in result.letters]
    part: Part = {"drafter": drafting.label, "prompts": sorted({letter.prompt for letter in drafted}),
                  "metrics": metrics(drafted), "seconds": 0.0, "cases": [_case(result) for result in results]}
    if options.judges:
        part["judging"] = judging.grade(options.judges, [_judged(result.case.name, letter)
                                                         for result in results for letter in result.letters])
    if compared is not None:
        pairs = _pairs(results)
        part["comparison"] = {"drafter": compared.label, "metrics": metrics([letter for result in results
                                                                             for letter in result.compared]),
                              "paired": paired(pairs)}
        if options.judges:
            part["comparison"]["judged"] = judging.compare(options.judges, [(_judged(case, a), _judged(case, b))
                                                                            for case, a, b in pairs])
    part["seconds"] = round(time.perf_counter() - clock, 3)
    return part


def metrics(letters: list[LetterResult]) -> dict[str, Any]:
    """The suite's figures over every letter: how many passed every scorer, grounding, fabricated facts, practices
    (precision: of the letters arguing a practice, the share where it fits; recall: of the letters where it fits,
    the share arguing it), tone, readability, length problems and overclaims, the critic's errors left for the
    reviewer, and how alike the letters argue: the distinct `Why it matters` sections (ignoring figures and
    names) and the sentences of that section most letters repeat word for word."""
    scores = [letter.score for letter in letters]
    practices = {}
    for name in PRACTICES:
        argued = sum(name in score.argued for score in scores)
        fits = sum(name in score.fitting for score in scores)
        both = sum(name in score.argued and name in score.fitting for score in scores)
        practices[name] = {"fits": fits, "argued": argued, "precision": _rate(both, argued),
                           "recall": _rate(both, fits)}
    groundings = [score.grounding for score in scores]
    words = [score.words for score in scores]
    repeated = boilerplate([letter.letter for letter in letters])
    return {
        "letters": len(letters), "passed": sum(score.passed for score in scores),
        "passed_share": _rate(sum(score.passed for score in scores), len(scores)),
        "grounding_mean": _rate(sum(groundings), len(groundings)), "grounding_min": min(groundings, default=None),
        "factual_sentences": sum(score.factual for score in scores),
        "untraced": sum(len(score.untraced) for score in scores),
        "fabricated": sum(len(score.fabricated) for score in scores),
        "misplaced": sum(len(score.misplaced) for score in scores),
        "missing": sum(len(score.missing) for score in scores),
        "practices": practices,
        "tone": sum(len(score.tone) for score in scores),
        "readability": sum(len(score.readability) for score in scores),
        "length": sum(len(score.length) for score in scores),
        "words_median": median(words) if words else None, "words_max": max(words, default=None),
        "overclaims": sum(len(score.overclaims) for score in scores),
        "why_distinct": len({_shape(why_sentences(letter.letter)) for letter in letters}),
        "boilerplate": len(repeated), "boilerplate_sentences": repeated,
        "critic_errors_left": sum(bool(letter.critic_errors) for letter in letters),
    }


def _shape(sentences: list[str]) -> str:
    """A `Why it matters` section with its figures and quoted names masked: what it argues, not about whom."""
    return re.sub(r"`[^`]*`|\d[\d,.]*", "#", " ".join(sentences))


def paired(pairs: list[tuple[str, LetterResult, LetterResult]]) -> dict[str, Any]:
    """The run's letters (a) and the compared drafter's (b) on the same cases and recipients, letter by letter:
    which passed, which is better grounded, which holds fewer fabricated facts and fewer problems."""
    def tally(better_a: list[bool], better_b: list[bool]) -> dict[str, int]:
        return {"a": sum(better_a), "b": sum(better_b), "same": len(better_a) - sum(better_a) - sum(better_b)}

    a_scores, b_scores = [a.score for _, a, _ in pairs], [b.score for _, _, b in pairs]
    return {
        "letters": len(pairs),
        "passed": {"a": sum(s.passed for s in a_scores), "b": sum(s.passed for s in b_scores)},
        "grounding": tally([a.grounding > b.grounding for a, b in zip(a_scores, b_scores)],
                           [b.grounding > a.grounding for a, b in zip(a_scores, b_scores)]),
        "problems": tally([_problems(a) < _problems(b) for a, b in zip(a_scores, b_scores)],
                          [_problems(b) < _problems(a) for a, b in zip(a_scores, b_scores)]),
    }


def _pairs(results: list[CaseResult]) -> list[tuple[str, LetterResult, LetterResult]]:
    pairs = []
    for result in results:
        others = {letter.recipient: letter for letter in result.compared}
        pairs += [(result.case.name, letter, others[letter.recipient]) for letter in result.letters
                  if letter.recipient in others]
    return pairs


def _problems(score: Any) -> int:
    return (len(score.fabricated) + len(score.misplaced) + len(score.missing) + len(score.tone)
            + len(score.readability) + len(score.length) + len(score.untraced) + len(score.overclaims))


def _judged(case: str, letter: LetterResult) -> judging.Judged:
    from agents.llm_drafter import evidence_data

    return judging.Judged(f"{case}/{letter.recipient}", letter.title, letter.letter,
                          evidence_data(letter.dossier, letter.recipient))


def _case(result: CaseResult) -> dict[str, Any]:
    return {"case": result.case.name, "registry": result.case.registry, "description": result.case.description,
            "passed": result.passed, "seconds": result.seconds,
            "letters": [_letter(letter) for letter in result.letters],
            **({"compared": [_letter(letter) for letter in result.compared]} if result.compared else {})}


def _letter(letter: LetterResult) -> dict[str, Any]:
    return {"recipient": letter.recipient, "models": letter.models, "drafter": letter.drafter,
            "prompt": letter.prompt, "critic_errors": letter.critic_errors, **letter.score.to_dict(),
            "title": letter.title, "letter": letter.letter}


def regressions(current: Part, baseline: Part) -> list[str]:
    now, then = current["metrics"], baseline["metrics"]
    found = [f"{name} is {now[name]}; it must be 0" for name in MUST_BE_ZERO if now[name] > 0]
    for name in ("grounding_mean", "passed_share"):
        if then.get(name) is not None and (now[name] is None or now[name] < then[name] - RATE_TOLERANCE):
            found.append(f"{name} fell from {then[name]} to {now[name]} (tolerance {RATE_TOLERANCE})")
    for name, what in (("length", "letters with a length problem"), ("boilerplate", "sentences most letters repeat")):
        if now[name] > then.get(name, 0):
            found.append(f"{what} grew from {then.get(name, 0)} to {now[name]}")
    if now["letters"] < then["letters"]:
        found.append(f"{now['letters']} letters were drafted; the baseline had {then['letters']}")
    for name, rates in then.get("practices", {}).items():
        for rate in ("precision", "recall"):
            value = now["practices"][name][rate]
            if rates[rate] is not None and (value is None or value < rates[rate] - RATE_TOLERANCE):
                found.append(f"{rate} of the practice {name} fell from {rates[rate]} to {value} "
                             f"(tolerance {RATE_TOLERANCE})")
    return found


def summary(part: Part) -> str:
    figures = part["metrics"]
    return (f"letters: {figures['passed']} of {figures['letters']} letters passed every scorer; grounding "
            f"{figures['grounding_mean']}, fabricated facts {figures['fabricated']}, misplaced practices "
            f"{figures['misplaced']}, tone {figures['tone']}, readability {figures['readability']}")


def section(part: Part) -> list[str]:
    figures = part["metrics"]
    lines = ["## Letters", "",
             f"{len(part['cases'])} cases, {figures['letters']} letters drafted by {part['drafter']} "
             f"({', '.join(part['prompts'])}) through the real graph, in {part['seconds']} s. "
             f"{figures['passed']} letters passed every scorer.", "",
             "| scorer | figure | target |", "|---|---:|---|",
             f"| grounding (factual sentences tracing to the evidence they cite) | {figures['grounding_mean']} mean, "
             f"{figures['grounding_min']} lowest ({figures['untraced']} of {figures['factual_sentences']} untraced) "
             "| 1.0 |",
             f"| fabricated facts | **{figures['fabricated']}** | 0 |",
             f"| practices argued where they do not fit | **{figures['misplaced']}** | 0 |",
             f"| practices not argued where they fit | {figures['missing']} | 0 |",
             f"| tone (demands, threats, guilt, invented urgency) | **{figures['tone']}** | 0 |",
             f"| readability (internal ids, paths, unsourced footnotes) | **{figures['readability']}** | 0 |",
             f"| length problems | {figures['length']} | 0 |",
             f"| overclaims (dependents none named, weights gone though none deleted) | **{figures['overclaims']}** "
             "| 0 |",
             f"| `Why it matters` sections: distinct / sentences most letters repeat | {figures['why_distinct']} / "
             f"{figures['boilerplate']} | 0 repeated |",
             f"| words per letter | {figures['words_median']} median, {figures['words_max']} at most | |",
             f"| letters left with critic errors | {figures['critic_errors_left']} | 0 |", "",
             "| practice | letters where it fits | argued in | precision | recall |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {rates['fits']} | {rates['argued']} | {_shown(rates['precision'])} | "
              f"{_shown(rates['recall'])} |" for name, rates in figures["practices"].items()]
    if "judging" in part:
        lines += ["", *_judging(part["judging"])]
    if "comparison" in part:
        lines += ["", *_comparison(part)]
    lines += ["", "### Worst letters", ""]
    ranked = sorted(((case, letter) for case in part["cases"] for letter in case["letters"]),
                    key=lambda pair: _badness(pair[1]), reverse=True)
    for case, letter in ranked[:WORST_SHOWN]:
        lines += [f"#### {case['case']}, to {letter['recipient']}", "", case["description"], "",
                  f"Grounding {letter['grounding']}; " + "; ".join(_said(letter)), "",
                  FENCE, f"# {letter['title']}", "", letter["letter"], FENCE, ""]
    return lines


def _judging(judged: dict[str, Any]) -> list[str]:
    lines = [f"### Judges ({judged['prompt']}, each letter graded twice)", "",
             "| judge | persuasiveness | honesty | respect | same grade twice (p / h / r) "
             "| within one point (p / h / r) |",
             "|---|---:|---:|---:|---:|---:|"]
    for judge in judged["judges"]:
        means, agreement = judged["means"][judge], judged["agreement"][judge]
        exact = " / ".join(_shown(agreement[name]["exact"]) for name in judging.CRITERIA)
        near = " / ".join(_shown(agreement[name]["within_one"]) for name in judging.CRITERIA)
        lines.append(f"| {judge} | " + " | ".join(_shown(means[name]) for name in judging.CRITERIA)
                     + f" | {exact} | {near} |")
    if judged["between_judges"]:
        lines += ["", "Mean distance between two judges' grades of a letter: " + ", ".join(
            f"{name} {_shown(value)}" for name, value in judged["between_judges"].items()) + "."]
    return lines + _failures(judged)


def _comparison(part: Part) -> list[str]:
    compared = part["comparison"]
    a, b, pairs = part["metrics"], compared["metrics"], compared["paired"]
    lines = [f"### Compared: a = {part['drafter']}, b = {compared['drafter']}", "",
             "| figure | a | b |", "|---|---:|---:|"]
    lines += [f"| {name} | {_shown(a[name])} | {_shown(b[name])} |" for name in
              ("letters", "passed", "grounding_mean", "fabricated", "misplaced", "missing", "tone", "readability",
               "length", "words_median")]
    lines += ["", f"Letter by letter ({pairs['letters']} pairs): better grounded a {pairs['grounding']['a']}, "
                  f"b {pairs['grounding']['b']}, same {pairs['grounding']['same']}; fewer problems a "
                  f"{pairs['problems']['a']}, b {pairs['problems']['b']}, same {pairs['problems']['same']}."]
    if "judged" in compared:
        judged = compared["judged"]
        lines += ["", f"Judged head to head ({judged['prompt']}, both orders): a {judged['a']}, b {judged['b']}, "
                      f"tie {judged['tie']}, orders disagreed {judged['inconsistent']} of {judged['judged']} "
                      f"(consistency {_shown(judged['consistency'])}); b's win rate {_shown(judged['b_win_rate'])}."]
        lines += _failures(judged)
    return lines


def _failures(judged: dict[str, Any]) -> list[str]:
    failures = judged["failures"]
    return ["", f"{len(failures)} judge answers failed: " + "; ".join(failures[:5])] if failures else []


def _said(letter: dict[str, Any]) -> list[str]:
    said = [f"{name}: {', '.join(map(str, letter[name]))}" for name in
            ("fabricated", "misplaced", "missing", "tone", "readability", "length", "overclaims", "untraced")
            if letter[name]]
    if letter["critic_errors"]:
        said.append(f"the critic's errors left: {'; '.join(letter['critic_errors'])}")
    return said or ["no scorer found a problem"]


def _badness(letter: dict[str, Any]) -> tuple[int, float, int, int]:
    """Problems first, weighted by harm; then the least grounded, those the critic left errors in, the longest."""
    weights = {"fabricated": 10, "misplaced": 5, "tone": 5, "readability": 5, "overclaims": 5, "missing": 2,
               "length": 1, "untraced": 1}
    return (sum(weight * len(letter[name]) for name, weight in weights.items()), -letter["grounding"],
            len(letter["critic_errors"]), letter["words"])


def _rate(part: float, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _shown(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


LETTERS = Suite("letters", run_letters, section, summary, regressions)
