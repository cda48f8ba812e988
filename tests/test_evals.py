"""The evaluation harness can fail: planted false deletions, duplicates, unmet faults and regressions are caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.detection import load_scenarios, run_scenario
from evals.report import DETECTION, regressions
from evals.scoring import Event, score_case
from evals.worlds import ScenarioError
from weightkeeper.cli.main import main

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "evals" / "baselines" / "detection.json"
THREE = """
  - do: [{op: add, name: acme/alpha}, {op: add, name: acme/beta}, {op: add, name: acme/gamma}]
    truth: [{appeared: acme/alpha}, {appeared: acme/beta}, {appeared: acme/gamma}]
"""


def scenario(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir(exist_ok=True)
    (folder / "planted.yaml").write_text(text)
    return folder


def test_a_deletion_the_truth_does_not_hold_is_scored_a_false_deletion(tmp_path: Path) -> None:
    # The registry loses a model, but the scenario's truth says nothing happened: the ledger's deletion is false.
    folder = scenario(tmp_path, "registry: local\nsteps:" + THREE + "  - do: [{op: delete, name: acme/beta}]\n")
    result = run_scenario(load_scenarios(folder)[0], tmp_path / "run")
    assert result.score.false_deletions == [Event("deleted", "acme/beta", 1)]
    assert not result.score.passed


def test_a_folder_renamed_behind_a_resumed_listing_is_a_late_rename_not_a_false_deletion(tmp_path: Path) -> None:
    # A false deletion the suite once found: the resumed scan recorded `deleted`, the next one a new model.
    (found,) = [s for s in load_scenarios() if s.name == "local-renamed-behind-a-resumed-listing"]
    result = run_scenario(found, tmp_path / "run")
    assert result.scans == ["complete", "interrupted", "complete", "complete"]
    assert result.passed and result.score.false_deletions == []
    assert [recorded for true, recorded in result.score.matched if true.kind == "renamed"] == [
        Event("renamed", "acme/m0", 3)]  # by the scan after the resumed one, which listed from the start


def test_an_event_recorded_twice_is_a_duplicate_and_one_never_recorded_is_missed() -> None:
    truth = [Event("appeared", "acme/a", 0), Event("renamed", "acme/b2", 1)]
    recorded = [Event("appeared", "acme/a", 0), Event("suspected_missing", "acme/b", 1), Event("appeared", "acme/a", 1)]
    score = score_case(truth, recorded)
    assert score.duplicates == [Event("appeared", "acme/a", 1)]
    assert score.missed == [Event("renamed", "acme/b2", 1)]
    assert score.false_deletions == []  # suspected_missing is a hedge, not a claim


def test_an_event_recorded_before_its_change_does_not_count_as_detecting_it() -> None:
    score = score_case([Event("deleted", "acme/a", 2)], [Event("deleted", "acme/a", 1)])
    assert score.missed == [Event("deleted", "acme/a", 2)] and score.false_deletions == [Event("deleted", "acme/a", 1)]


def test_a_fault_no_scan_meets_is_counted_so_a_scenario_cannot_test_less_than_it_says(tmp_path: Path) -> None:
    folder = scenario(tmp_path, "registry: hf\ncaller: member\nsteps:" + THREE
                      + "  - faults: [{fault: status, status: 503, path: /never/asked}]\n")
    result = run_scenario(load_scenarios(folder)[0], tmp_path / "run")
    assert result.unmet_faults == 1 and result.score.passed and not result.passed
    assert result.scans == ["complete", "complete"]


@pytest.mark.parametrize("text, expected", [
    ("registry: local\nsteps:\n  - do: [{op: explode, name: acme/a}]\n", "step 1: an operation needs `op`"),
    ("registry: local\nsteps:\n  - truth: [{deleted: acme/a, renamed: acme/b}]\n", "written `- KIND: MODEL`"),
    ("registry: local\nsteps: []\n", "a non-empty list of `steps`"),
    ("registry: local\nsteps: [\n", "is not valid YAML"),
    ("registry: local\nsteps:\n  - faults: [unmounted]\n", "a fault is a mapping with `fault`"),
])
def test_a_mistake_in_a_scenario_names_the_file_and_what_to_fix(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ScenarioError, match="planted.yaml") as raised:
        load_scenarios(scenario(tmp_path, text))
    assert expected in str(raised.value)


def test_a_step_that_changes_a_model_its_registry_does_not_hold_says_which_step(tmp_path: Path) -> None:
    folder = scenario(tmp_path, "registry: local\nsteps:" + THREE + "  - do: [{op: delete, name: acme/nobody}]\n")
    with pytest.raises(ScenarioError, match=r"planted.yaml, step 2: .*acme/nobody.*does not hold"):
        run_scenario(load_scenarios(folder)[0], tmp_path / "run")


def test_the_shipped_suite_has_at_least_30_scenarios_on_five_registries_and_all_three_hub_callers() -> None:
    scenarios = load_scenarios()
    assert len(scenarios) >= 30
    assert {s.registry for s in scenarios} == {"local", "hf", "ollama", "openai", "mlflow"}
    assert sum(s.registry == "mlflow" for s in scenarios) >= 4
    assert {s.caller for s in scenarios if s.registry == "hf"} == {"anonymous", "outsider", "member"}
    assert any(step.get("stop_after_pages") for s in scenarios for step in s.steps)


def test_regressions_name_each_metric_beyond_its_tolerance() -> None:
    baseline = json.loads(BASELINE.read_text())
    worse = json.loads(BASELINE.read_text())
    figures = worse["suites"]["detection"]["metrics"]
    figures["false_deletions"], figures["per_kind"]["deleted"]["recall"] = 1, 0.9
    figures["per_kind"]["renamed"]["precision"] -= 0.01  # within the tolerance
    found = regressions(worse, baseline, {"detection": DETECTION})
    assert found == ["detection: false_deletions is 1; it must be 0",
                     f"detection: recall of deleted fell from {baseline['suites']['detection']['metrics']['per_kind']['deleted']['recall']}"
                     " to 0.9 (tolerance 0.02)"]
    assert regressions(baseline, baseline, {"detection": DETECTION}) == []
    del worse["suites"]["detection"]["metrics"]["per_kind"]["restored"]
    assert "detection: restored is no longer measured: no scenario holds a restored event" in regressions(
        worse, baseline, {"detection": DETECTION})


def test_eval_runs_under_the_home_writes_its_reports_and_exits_1_on_a_regression(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # One run of the whole suite (the longest test): the command exits 1 against a stricter baseline, and the
    # comparison that decides its exit code finds nothing against the shipped baseline on the same results.
    stricter = json.loads(BASELINE.read_text())
    stricter["suites"]["detection"]["metrics"]["time_to_detection"]["mean_scans"] = 0.5
    (tmp_path / "strict.json").write_text(json.dumps(stricter))
    home, out = tmp_path / "home", tmp_path / "out"
    assert main(["eval", "detection", "--home", str(home), "--out", str(out), "--baseline",
                 str(tmp_path / "strict.json")]) == 1
    assert "regression: detection: mean time to detection grew from 0.5" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["suites"]["detection"]["metrics"]["false_deletions"] == 0
    assert regressions(results, json.loads(BASELINE.read_text()), {"detection": DETECTION}) == []
    assert "| deleted |" in (out / "report.md").read_text()
    assert [path.name for path in home.iterdir()] == ["evals"]  # no ledger of the home's own: only the scratch
