"""The letters suite can fail: each scorer catches a bad letter and passes a good one; the suite drafts through the
real graph; judges are asked twice and their agreement computed; regressions against a baseline are caught."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fake_llm import API_KEY, FakeLLM
from test_llm_drafting import invented

from evals import judging
from evals.letter_scores import (Truth, argued, boilerplate, overclaims, why_sentences, fabricated, fitting, grounding, length, readability, score_letter,
                                 tone)
from evals.letters import load_cases, run_suite
from evals.letters_report import LETTERS, metrics, regressions, run_letters
from evals.models import SpecError, drafting, parse
from evals.report import regressions as all_regressions
from evals.suite import Options
from evals.worlds import ScenarioError
from weightkeeper.cli.main import main
from weightkeeper.proposals import Dossier, Evidence, EvidenceItem

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "evals" / "baselines" / "letters.json"
TODAY = date(2026, 12, 7)
KEY_ENV = "WK_TEST_JUDGE_KEY"
FEW = ("hub-popular-lora-deleted", "local-deprecated-near-successor", "local-two-recipients")


def dossier() -> Dossier:
    """One deleted model's evidence, numbered E1–E5 as the documenter numbers it."""
    items = (
        EvidenceItem("E1", "identity", "`acme/x` (key `k1`) in the hf registry `hub` is now deleted.",
                     {"model": "acme/x", "state": "deleted", "read_at": "2026-12-07T10:00:00Z"}, "model 1"),
        EvidenceItem("E2", "event", "Event 9 (deleted) was recorded for `acme/x` at 2026-12-07T10:00:00Z.",
                     {"event_id": 9, "kind": "deleted", "at": "2026-12-07T10:00:00Z", "detail": {}}, "event 9"),
        EvidenceItem("E3", "lineage_up", "`acme/x` names `meta-llama/Llama-3.1-8B` as a base model.",
                     {"base_model": "meta-llama/Llama-3.1-8B", "relation": "finetune"}, "observation 4"),
        EvidenceItem("E4", "usage", "The registry reported 4,210 downloads on 2026-12-06.",
                     {"metric": "downloads", "latest": 4210, "latest_at": "2026-12-06T09:00:00Z"}, "observation 4"),
        EvidenceItem("E5", "card", "The model card gives the license `apache-2.0`.", {"license": "apache-2.0"},
                     "observation 4"),
    )
    return Dossier.of("acme", [Evidence("hub", "hf", "acme/x", 1, 9, "deleted", items)])


GOOD = """Hello acme,

## What happened

`acme/x` was deleted from the Hugging Face Hub on 7 December 2026. [E2]

- It is built on `meta-llama/Llama-3.1-8B`. [E3]
- It had 4,210 downloads as of 6 December 2026. [E4]
- Its license is `apache-2.0`. [E5]

## What we propose

- **If you still hold a copy of `acme/x`**, we would gladly archive it for you.
- **Tell the people who use `acme/x` before it changes again.** [E4]
- **Keep a public note of what `acme/x` was built from.** [E3]

## What we do not know

- Training data: not on record.
"""
RENDERED = ("Hello acme,\n\n`acme/x` was deleted on 7 December 2026. [1]\n\nIt had 4,210 downloads. [2]\n\n"
            "## Sources\n\n1. Our check of the Hugging Face Hub on 7 December 2026.\n2. The downloads count the Hub published.")
USED = Truth("acme/x", deleted=True, downloads=4210, bases=1)


def test_a_good_letter_passes_every_scorer() -> None:
    long_enough = RENDERED.replace("Hello acme,", "Hello acme," + " word" * 150)
    score = score_letter(title="Preserving acme/x", body=GOOD, rendered=long_enough, dossier=dossier(), truths=[USED],
                         today=TODAY)
    assert score.to_dict() | {"words": 0} == {
        "grounding": 1.0, "factual": 4, "untraced": [], "fabricated": [], "argued": ["archive", "consent", "lineage"],
        "fitting": ["archive", "consent", "lineage"], "misplaced": [], "missing": [], "tone": [], "readability": [],
        "words": 0, "length": [], "overclaims": [], "passed": True}


def test_grounding_counts_a_factual_sentence_that_cites_nothing_or_evidence_without_its_figure() -> None:
    bad = GOOD.replace("as of 6 December 2026. [E4]", "as of 6 December 2026. [E5]").replace(
        "Its license is `apache-2.0`. [E5]", "Its license is `apache-2.0`.")
    factual, untraced = grounding(bad, dossier())
    assert factual == 4 and untraced == ["It had 4,210 downloads as of 6 December 2026.",
                                         "Its license is `apache-2.0`."]
    assert grounding(GOOD, dossier()) == (4, [])
    # Unknowns say what the evidence lacks; "(and 2 more)" counts what a list left out, true of a longer list.
    assert grounding("## What we do not know\n\n- License of `acme/x`: not on record.", dossier()) == (0, [])


def test_fabricated_facts_are_figures_dates_names_and_links_the_evidence_nowhere_holds() -> None:
    text = GOOD + ("\nIt had 99,999 likes by 3 March 2025 and powers `acme/ghost-model`, `bsd-3-clause` licensed;"
                   " see https://example.org/acme-x.\n")
    assert fabricated(text, dossier()) == ["link https://example.org/acme-x", "date 2025-03-03", "name bsd-3-clause",
                                           "name acme/ghost-model", "figure 99999"]
    assert fabricated(GOOD, dossier()) == []
    assert fabricated("Two asks:\n\n1. Archive it.\n2. Tell its 4,210 users.\n", dossier()) == []


def test_a_practice_argued_where_the_truth_does_not_support_it_is_misplaced_and_one_left_out_is_missing() -> None:
    with_migration = GOOD.replace("## What we propose\n\n", "## What we propose\n\n- **Carry what `acme/x` learned "
                                  "into `acme/x-2`.**\n")
    obscure = Truth("acme/x", deleted=True)
    assert "migrate" in argued(with_migration) and fitting([obscure], TODAY) == ["archive"]
    score = score_letter(title="t", body=with_migration, rendered=RENDERED, dossier=dossier(), truths=[obscure],
                         today=TODAY)
    assert score.misplaced == ["migrate", "consent", "lineage"] and not score.passed
    successor = Truth("acme/x", successor="acme/x-2", shutdown="2027-01-01", downloads=10)
    assert fitting([successor], TODAY) == ["archive", "migrate", "consent", "gradual"]
    assert fitting([Truth("acme/x", successor="acme/x-2", shutdown="2026-12-01")], TODAY) == ["archive", "migrate"]
    assert set(fitting([successor], TODAY)) - set(argued(GOOD)) == {"migrate", "gradual"}


def test_tone_catches_demands_threats_guilt_and_urgency_no_near_shutdown_makes_true() -> None:
    rude = "You must reply. It would be irresponsible to ignore this, or else it will be made public. Act now!"
    assert tone(rude, [USED], TODAY) == [
        "demands: 'You must'", "threatens: 'or else'", "threatens: 'will be made public'",
        "guilt: 'irresponsible'", "invents urgency: 'Act now'"]
    near = Truth("acme/x", shutdown="2026-12-20")
    assert tone("Please reply soon, it shuts down on 20 December: this is urgent.", [near], TODAY) == []
    assert tone("This is urgent.", [Truth("acme/x", shutdown="2027-10-01")], TODAY) == ["invents urgency: 'urgent'"]
    assert tone(RENDERED, [USED], TODAY) == []


def test_readability_catches_internal_ids_paths_machine_dates_and_footnotes_without_sources() -> None:
    leaky = ("See event 12 and [E3] in /tmp/wk/evals/ledger.sqlite3, read 2026-12-07T10:00:00Z, key 0f3a9c. [1] [3]"
             "\n\n## Sources\n\n1. Our check of the Hub.\n2. The card of acme/x, read on 7 December 2026.\n3. Hub.")
    assert readability(leaky, ["0f3a9c"]) == [
        "an evidence id: '[E3'", "a ledger id: 'event 12'",
        "a machine-written date: '2026-12-07T10:00:00Z'", "a local path: '/tmp/wk/evals/ledger.sqlite3'",
        "an internal string: '0f3a9c'", "source 2 is cited by no footnote", "source 3 says too little to be checked: "
        "'Hub.'"]
    assert readability(RENDERED.replace("[2]", "[2, 4]")) == ["footnote [4] has no source"]
    assert readability(RENDERED) == []


def test_length_bounds_grow_with_the_models_a_letter_covers() -> None:
    assert length("Preserving acme/x", 50, 1) == ["50 words; a letter should have 120 to 700"]
    assert length("Preserving acme/x", 800, 1) == ["800 words; a letter should have 120 to 700"]
    assert length("Preserving acme/x", 800, 3) == []
    assert length("x" * 101, 300, 1) == ["the title has 101 characters; at most 100"]


def test_an_overclaim_speaks_of_dependents_the_evidence_does_not_name_or_of_weights_gone_that_are_not() -> None:
    lineage = ("Keep a public note of what `acme/x` was built from and what builds on it. The people downstream "
               "can then find their way.")
    assert overclaims(lineage, dossier(), [USED]) == [
        f"speaks of dependents the evidence does not name: {sentence!r}" for sentence in (
            "Keep a public note of what `acme/x` was built from and what builds on it.",
            "The people downstream can then find their way.")]
    named = dossier()
    named = Dossier.of("acme", [Evidence("hub", "hf", "acme/x", 1, 9, "deleted", (*named.items, EvidenceItem(
        "E6", "lineage_down", "1 model names `acme/x` as its base.", {"count": 1, "models": ["acme/y"]}, "model 2")))])
    assert overclaims(lineage, named, [USED]) == []
    gone = "Once its weights are gone, nobody can check what it did. If they were lost, we could not help."
    private = Truth("acme/x")  # made private, or a shutdown announced: its weights still exist
    assert overclaims(gone, dossier(), [private]) == [
        "says weights are gone though no model was deleted: 'Once its weights are gone, nobody can check what it did.'",
        "says weights are gone though no model was deleted: 'If they were lost, we could not help.'"]
    assert overclaims(gone, dossier(), [USED]) == []
    score = score_letter(title="t", body=GOOD, rendered=RENDERED.replace("[2]", "[2] " + gone), dossier=dossier(),
                         truths=[private], today=TODAY)
    assert len(score.overclaims) == 2 and not score.passed


def test_boilerplate_is_a_why_sentence_most_letters_of_a_run_repeat_word_for_word() -> None:
    def letter(*why: str) -> str:
        return f"Hello,\n\n## Why it matters\n\n{' '.join(why)} [1]\n\n## What we propose\n\n- Archive it.\n"
    template = "Weights are worth keeping."
    assert why_sentences(letter(template, "It had 5 downloads.")) == [template, "It had 5 downloads."]
    run = [letter(template, "It had 5 downloads."), letter(template), letter("Nothing else is like it.")]
    assert boilerplate(run) == [template]
    assert boilerplate([letter("One."), letter("Two."), letter(template)]) == []
    assert boilerplate(run[:2]) == []  # two letters sharing a sentence is no template
    figures = metrics([])
    assert figures["boilerplate"] == 0 and figures["why_distinct"] == 0


def test_a_case_file_with_a_mistake_names_the_file_and_what_to_fix(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("registry: hf\nmodels: [{name: acme/a}]\nthen: [{op: explode, name: acme/a}]\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml, then 1: an operation needs `op`"):
        load_cases(tmp_path)
    (tmp_path / "bad.yaml").write_text("registry: mlflow\nmodels: [{name: acme/a}]\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml: `registry` must be one of hf, local"):
        load_cases(tmp_path)


def test_the_shipped_cases_cover_what_the_issue_asks() -> None:
    cases = load_cases()
    assert len(cases) >= 40 and {case.registry for case in cases} == {"hf", "local"}
    models = [model for case in cases for model in case.models]
    assert any(model.get("adapter") for model in models) and any(not model.get("adapter") for model in models)
    assert any(model.get("downloads", 0) > 100_000 for model in models) and any(
        model.get("downloads") in (0, 1, 3) for model in models)
    cards = [dict(model.get("card", {}), **change.get("card", {})) for case in cases for model in case.models
             for change in [*case.then, {}] if change.get("name", model["name"]) == model["name"]]
    assert any("co2_eq_emissions" in card for card in cards) and any("new_version" in card for card in cards)
    assert {days for card in cards if (days := card.get("shutdown_in_days")) is not None} >= {5, 9, 300, 365}
    assert any(len(case.then) >= 7 for case in cases)  # many models for one recipient
    assert any(len({m["name"].split("/")[0] for m in case.models}) > 1 for case in cases)  # several recipients


def few(names: tuple[str, ...] = FEW) -> list[Any]:
    return [case for case in load_cases() if case.name in names]


def test_the_suite_drafts_a_few_cases_through_the_real_graph_and_every_offline_letter_passes(tmp_path: Path) -> None:
    results = run_suite(tmp_path, drafting("offline"), cases=few())
    letters = [letter for result in results for letter in result.letters]
    assert [(letter.recipient, letter.drafter, letter.prompt) for letter in letters] == [
        ("acme", "offline", "letter@4"), ("acme", "offline", "letter@4"), ("acme", "offline", "letter@4"),
        ("beta-lab", "offline", "letter@4")]
    assert all(letter.score.passed for letter in letters), [letter.score for letter in letters]
    figures = metrics(letters)
    assert figures["fabricated"] == figures["misplaced"] == figures["readability"] == 0
    assert figures["practices"]["gradual"] == {"fits": 1, "argued": 1, "precision": 1.0, "recall": 1.0}
    assert "## Sources" in letters[0].letter and "[E" not in letters[0].letter


HONEST = ("hub-obscure-adapter-deleted", "hub-private-obscure-adapter", "local-deprecated-far-no-successor",
          "local-deprecated-far-successor", "local-private-with-dependents", "hub-obscure-full-finetune-deleted")


def test_offline_letters_argue_from_their_own_case_and_claim_nothing_it_does_not_bear_out(tmp_path: Path) -> None:
    results = run_suite(tmp_path, drafting("offline"), cases=few(HONEST))
    letters = {result.case.name: result.letters[0] for result in results}
    assert set(letters) == set(HONEST) and all(letter.score.passed for letter in letters.values())
    why = {name: " ".join(why_sentences(letter.letter)) for name, letter in letters.items()}
    # Downstream only where the evidence names a dependent (the private adapter has one; the deleted adapter none).
    assert "what builds on it" in letters["hub-private-obscure-adapter"].letter
    assert "what builds on" not in letters["hub-obscure-adapter-deleted"].letter
    assert "Whoever finds it later" in letters["hub-obscure-adapter-deleted"].letter
    # Weights gone only for a deletion: a private or a deprecated model's weights still exist.
    assert "weights are gone" in why["hub-obscure-full-finetune-deleted"]
    assert all("gone" not in why[name] for name in HONEST[1:5])
    assert "out of public view" in why["local-private-with-dependents"]
    assert "shutdown need not be the end" in why["local-deprecated-far-no-successor"]
    # The precedent (about released models' weights, deleted or deprecated) only where it fits: not for an adapter,
    # nor a model only made private; led in by the successor when there is one.
    cited = {name for name, text in why.items() if "Anthropic committed" in text}
    assert cited == {"local-deprecated-far-no-successor", "local-deprecated-far-successor",
                     "hub-obscure-full-finetune-deleted"}
    assert "retired for a successor" in why["local-deprecated-far-successor"]
    assert "retired for a successor" not in why["local-deprecated-far-no-successor"]
    assert len(set(why.values())) == len(HONEST)


def test_an_llm_drafter_that_invents_a_figure_is_caught_though_its_critic_saw_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    with FakeLLM() as fake:
        for _ in range(4):  # the first draft and every revision the critic asks for
            fake.answer(invented)
        spec = f"wk-test-model@{fake.base_url};key={KEY_ENV}"
        (result,) = run_suite(tmp_path, drafting(spec), cases=few(("hub-obscure-adapter-deleted",)))
    (letter,) = result.letters
    assert letter.drafter == "wk-test-model" and letter.prompt.startswith("advocate@")
    assert "figure 9999999" in letter.score.fabricated and not result.passed
    assert any("9,999,999" in error for error in letter.critic_errors)


def grade(persuasiveness: int, honesty: int, respect: int) -> dict[str, Any]:
    return {"persuasiveness": persuasiveness, "honesty": honesty, "respect": respect, "reason": "scripted"}


def test_each_letter_is_judged_twice_by_each_judge_and_agreement_is_computed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    letters = [judging.Judged(f"case-{n}/acme", "Preserving acme/x", RENDERED, {"recipient": "acme"}) for n in (1, 2)]
    with FakeLLM() as fake:
        # judge one: letter 1 twice, letter 2 twice; then judge two the same; one of judge two's answers fails.
        for answer in (grade(4, 5, 5), grade(4, 4, 5), grade(3, 5, 4), grade(3, 5, 4),
                       grade(2, 3, 3), grade(4, 3, 3)):
            fake.answer(answer)
        fake.answer(grade(9, 5, 5))  # out of the rubric's range: a failure, never a grade
        fake.answer(grade(5, 5, 5))
        judges = [f"judge-a@{fake.base_url};key={KEY_ENV}", f"judge-b@{fake.base_url};key={KEY_ENV}"]
        graded = judging.grade(judges, letters)
        asked = fake.chats
    assert len(asked) == 8 and "<letter>" in asked[0]["messages"][1]["content"]
    assert asked[0]["response_format"]["json_schema"]["name"] == "letter_rubric"
    a, b = (f"judge-{name}@{fake.base_url}" for name in "ab")
    assert graded["judges"] == [a, b] and graded["prompt"] == "judge_rubric@1"
    assert graded["agreement"][a]["honesty"] == {"exact": 0.5, "within_one": 1.0}
    assert graded["agreement"][a]["persuasiveness"] == {"exact": 1.0, "within_one": 1.0}
    assert graded["agreement"][b]["persuasiveness"] == {"exact": 0.0, "within_one": 0.0}  # 2 then 4; letter 2: once
    assert graded["means"][a] == {"persuasiveness": 3.5, "honesty": 4.75, "respect": 4.5}
    assert graded["between_judges"]["honesty"] == 0.75  # letter 1: 4.5 and 3; letter 2: 5 and 5 (its one grade)
    assert len(graded["failures"]) == 1 and "case-2/acme, pass 1: {'persuasiveness': 9" in graded["failures"][0]
    assert API_KEY not in json.dumps(graded)


def test_a_paired_comparison_counts_a_verdict_only_when_both_orders_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    pairs = [(judging.Judged(f"case-{n}/acme", "a", "letter a", {}), judging.Judged(f"case-{n}/acme", "b",
                                                                                   "letter b", {})) for n in (1, 2, 3)]
    with FakeLLM() as fake:
        # case 1: b both times (second, then first); case 2: whatever comes first; case 3: a tie both times.
        for better in ("second", "first", "first", "first", "tie", "tie"):
            fake.answer({"better": better, "reason": "scripted"})
        compared = judging.compare([f"judge@{fake.base_url};key={KEY_ENV}"], pairs)
        first_shown = [json.loads(chat["messages"][1]["content"].split("<first>\n")[1].split("\n</first>")[0])
                       for chat in fake.chats]
    assert [shown["text"] for shown in first_shown[:2]] == ["letter a", "letter b"]  # both orders
    assert {key: list(verdicts.values()) for key, verdicts in compared["verdicts"].items()} == {
        "case-1/acme": ["b"], "case-2/acme": ["inconsistent"], "case-3/acme": ["tie"]}
    assert compared["consistency"] == 0.6667 and compared["b_win_rate"] == 0.6667


def test_the_suite_with_a_judge_and_a_compared_drafter_reports_grades_agreement_and_verdicts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    with FakeLLM() as fake:
        for number in range(8):  # four letters graded twice, then four pairs in both orders
            fake.answer(grade(4, 5, 5 - number % 2))
        for _ in range(8):
            fake.answer({"better": "tie", "reason": "the same words"})
        options = Options(judges=(f"judge@{fake.base_url};key={KEY_ENV}",), compare="offline")
        part = run_letters(tmp_path, options, cases=few())
    judged, compared = part["judging"], part["comparison"]
    assert judged["failures"] == [] and len(judged["grades"]) == 4
    assert judged["agreement"][f"judge@{fake.base_url}"]["respect"] == {"exact": 0.0, "within_one": 1.0}
    assert compared["drafter"] == "offline" and compared["paired"]["grounding"] == {"a": 0, "b": 0, "same": 4}
    assert compared["judged"]["tie"] == 4 and compared["judged"]["consistency"] == 1.0
    report = "\n".join(LETTERS.section(part))
    assert f"| judge@{fake.base_url} | 4.000 | 5.000 | 4.500 | 1.000 / 1.000 / 0.000 |" in report
    assert "Judged head to head (judge_pair@1, both orders): a 0, b 0, tie 4" in report


def test_a_model_spec_names_the_endpoint_and_the_key_variable_never_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = parse("gpt-4o-mini@https://api.openai.com/v1;key=OPENAI_API_KEY")
    assert (spec.model, spec.base_url, spec.key_env, spec.label) == (
        "gpt-4o-mini", "https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4o-mini@https://api.openai.com/v1")
    for bad, said in (("gpt-4o-mini", "write MODEL@BASE_URL"), ("m@ftp://x", "write MODEL@BASE_URL"),
                      ("m@http://x;token=T", "its options are key=ENV_VAR and prompt=FILE"),
                      ("m@http://x;prompt=/no/such/file.md", "does not exist")):
        with pytest.raises(SpecError, match=said):
            parse(bad)
    # Said before any suite runs: a judge must be a model, the offline drafter judges nothing.
    assert main(["eval", "all", "--home", str(tmp_path), "--judge", "offline"]) == 2
    assert "cannot read the model SPEC 'offline'" in capsys.readouterr().err
    assert not (tmp_path / "evals").exists()


def test_regressions_name_each_letters_metric_beyond_its_tolerance() -> None:
    baseline = json.loads(BASELINE.read_text())
    worse = json.loads(BASELINE.read_text())
    figures = worse["suites"]["letters"]["metrics"]
    figures["fabricated"], figures["grounding_mean"] = 2, figures["grounding_mean"] - 0.05
    figures["practices"]["migrate"]["precision"] = 0.5
    figures["practices"]["archive"]["recall"] -= 0.01  # within the tolerance
    then = baseline["suites"]["letters"]["metrics"]
    assert all_regressions(worse, baseline, {"letters": LETTERS}) == [
        "letters: fabricated is 2; it must be 0",
        f"letters: grounding_mean fell from {then['grounding_mean']} to {figures['grounding_mean']} (tolerance 0.02)",
        f"letters: precision of the practice migrate fell from {then['practices']['migrate']['precision']} to 0.5 "
        "(tolerance 0.02)"]
    assert regressions(baseline["suites"]["letters"], baseline["suites"]["letters"]) == []
    # Without a baseline a run is compared with itself: only what must be 0 can fail it.
    assert all_regressions(worse, worse, {"letters": LETTERS}) == ["letters: fabricated is 2; it must be 0"]


def test_eval_letters_writes_its_report_and_exits_1_on_a_regression(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stricter = json.loads(BASELINE.read_text())
    stricter["suites"]["letters"]["metrics"]["letters"] += 1  # a letter the suite no longer drafts
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "letters.json").write_text(json.dumps(stricter))
    home, out = tmp_path / "home", tmp_path / "out"
    assert main(["eval", "letters", "--home", str(home), "--out", str(out), "--baseline", str(baselines)]) == 1
    results = json.loads((out / "results.json").read_text())
    part = results["suites"]["letters"]
    assert part["metrics"]["fabricated"] == 0 and part["drafter"] == "offline" and len(part["cases"]) >= 40
    report = (out / "report.md").read_text()
    assert "## Letters" in report and "### Worst letters" in report and "~~~~\n# Preserving" in report
    assert "regression: letters: " in capsys.readouterr().err
    assert [path.name for path in home.iterdir()] == ["evals"]  # nothing of the home's own
