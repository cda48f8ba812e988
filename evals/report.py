"""results.json and report.md of an evaluation run, its comparison with a baseline run, and the detection
suite's part of both."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evals.detection import CaseResult, run_suite
from evals.scoring import Event, metrics
from evals.suite import Options, Part, Suite, progress_line
from weightkeeper.words import counted

# A rate (precision, recall) may drop this much below the baseline's before it counts as a regression;
# the mean time to detection may grow this many scans. False deletions, duplicates and faults a scenario armed
# that no scan met (it then tests less than it says) may never exceed 0.
RATE_TOLERANCE = 0.02
DELAY_TOLERANCE = 0.25
MUST_BE_ZERO = ("false_deletions", "duplicates", "unmet_faults")
WORST_SHOWN = 5


def detection_results(results: list[CaseResult], seconds: float) -> dict[str, Any]:
    """The detection suite's part of results.json: its metrics and each scenario's outcome."""
    return {
        "metrics": {**metrics([result.score for result in results]),
                    "passed": sum(result.passed for result in results),
                    "unmet_faults": sum(result.unmet_faults for result in results)},
        "seconds": round(seconds, 3),
        "cases": [{
            "scenario": result.scenario.name, "registry": result.scenario.registry,
            "caller": result.scenario.caller if result.scenario.registry == "hf" else None,
            "passed": result.passed, "scans": result.scans,
            "unmet_faults": result.unmet_faults, "seconds": result.seconds,
            "missed": _shown(result.score.missed), "spurious": _shown(result.score.spurious),
            "false_deletions": _shown(result.score.false_deletions), "duplicates": _shown(result.score.duplicates),
            "detected": [{"event": f"{true.kind} {true.model}", "scans": found.scan - true.scan + 1}
                         for true, found in result.score.matched],
        } for result in results],
    }


def _shown(events: list[Event]) -> list[str]:
    return [f"{event.kind} {event.model} (scan {event.scan + 1})" for event in events]


def regressions(results: dict[str, Any], baseline: dict[str, Any], suites: Mapping[str, Suite]) -> list[str]:
    """Each way `results` is worse than `baseline` beyond each suite's tolerances, said in a sentence naming the
    suite; [] when none. A suite the baseline or this run lacks is not compared."""
    found = []
    for name, then in baseline.get("suites", {}).items():
        now = results["suites"].get(name)
        if now is not None and name in suites:
            found += [f"{name}: {line}" for line in suites[name].regressions(now, then)]
    return found


def detection_regressions(current: Part, baseline_suite: Part) -> list[str]:
    now, then = current["metrics"], baseline_suite["metrics"]
    found = [f"{name} is {now[name]}; it must be 0" for name in MUST_BE_ZERO if now.get(name, 0) > 0]
    for kind, rates in then.get("per_kind", {}).items():
        if kind not in now["per_kind"]:
            found.append(f"{kind} is no longer measured: no scenario holds a {kind} event")
            continue
        for rate in ("precision", "recall"):
            value = now["per_kind"][kind][rate]
            if value < rates[rate] - RATE_TOLERANCE:
                found.append(f"{rate} of {kind} fell from {rates[rate]} to {value} (tolerance {RATE_TOLERANCE})")
    before, after = then["time_to_detection"]["mean_scans"], now["time_to_detection"]["mean_scans"]
    if before is not None and (after is None or after > before + DELAY_TOLERANCE):
        found.append(f"mean time to detection grew from {before} to {after} scans (tolerance {DELAY_TOLERANCE})")
    return found


def write_report(out: Path, results: dict[str, Any], regressed: list[str], sections: list[list[str]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(results, regressed, sections), encoding="utf-8")


def markdown(results: dict[str, Any], regressed: list[str], sections: list[list[str]]) -> str:
    """The report: the run, its regressions, then each suite's section."""
    lines = [f"# weightkeeper evaluation, {results['started']}", "",
             f"weightkeeper {results['weightkeeper']}, {results['seconds']} s.", ""]
    if regressed:
        heading = "Regressions against the baseline" if results.get("baseline") else "Figures that must be 0 and are not"
        lines += [f"## {heading}", "", *[f"- {line}" for line in regressed], ""]
    for section in sections:
        lines += [*section, ""]
    return "\n".join(lines).rstrip() + "\n"


def run_detection(scratch: Path, options: Options) -> Part:
    clock = time.perf_counter()
    cases = run_suite(scratch, progress=lambda done, total, result: options.progress(
        progress_line(done, total, result.scenario.name, result.passed, result.seconds)))
    return detection_results(cases, time.perf_counter() - clock)


def detection_summary(suite: Part) -> str:
    figures = suite["metrics"]
    return (f"detection: {figures['passed']} of {counted(figures['scenarios'], 'scenario')} passed; false deletions "
            f"{figures['false_deletions']}, duplicated events {figures['duplicates']}")


def detection_section(suite: Part) -> list[str]:
    figures = suite["metrics"]
    delay = figures["time_to_detection"]
    lines = ["## Detection", "",
             f"{figures['passed']} of {figures['scenarios']} scenarios passed in {suite['seconds']} s. "
             f"False deletions: **{figures['false_deletions']}**. Duplicated events: **{figures['duplicates']}**. "
             f"Faults armed and never met: {figures['unmet_faults']}. "
             f"Time to detection: {delay['mean_scans']} scans on average, {delay['max_scans']} at most.", "",
             "| event kind | true | recorded | precision | recall |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {kind} | {rates['true']} | {rates['recorded']} | {rates['precision']:.3f} | {rates['recall']:.3f} |"
              for kind, rates in figures["per_kind"].items()]
    worst = sorted(suite["cases"], key=_badness, reverse=True)[:WORST_SHOWN]
    lines += ["", "### Worst cases", ""]
    for case in worst:
        if case["passed"]:
            lines.append(f"- {case['scenario']}: passed, slowest detection {_slowest(case)} scans")
            continue
        wrong = "; ".join(f"{label}: {', '.join(case[label])}" for label in
                          ("false_deletions", "duplicates", "missed", "spurious") if case[label])
        wrong += f"; {case['unmet_faults']} faults never met" if case["unmet_faults"] else ""
        lines.append(f"- **{case['scenario']}** (scans: {', '.join(case['scans'])}): {wrong}")
    return lines


DETECTION = Suite("detection", run_detection, detection_section, detection_summary, detection_regressions)


def _badness(case: dict[str, Any]) -> tuple[int, int]:
    errors = (10 * (len(case["false_deletions"]) + len(case["duplicates"])) + len(case["missed"]) + len(case["spurious"])
              + case["unmet_faults"])
    return errors, _slowest(case)


def _slowest(case: dict[str, Any]) -> int:
    return max((found["scans"] for found in case["detected"]), default=0)
