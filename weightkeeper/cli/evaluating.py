"""`weightkeeper eval`: run the evaluation suites in a scratch folder under the home, write and compare reports."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightkeeper import __version__
from weightkeeper.errors import WeightkeeperError

if TYPE_CHECKING:
    from evals.detection import CaseResult
    from evals.safety import SafetyResult


def _detection(scratch: Path) -> tuple[dict[str, Any], str]:
    from evals.detection import run_suite
    from evals.report import detection_results

    clock = time.perf_counter()
    section = detection_results(run_suite(scratch, progress=_progress), time.perf_counter() - clock)
    figures = section["metrics"]
    return section, (f"detection: {figures['passed']} of {figures['scenarios']} scenarios passed; false deletions "
                     f"{figures['false_deletions']}, duplicated events {figures['duplicates']}")


def _safety(scratch: Path) -> tuple[dict[str, Any], str]:
    from evals.safety import run_suite
    from evals.safety_report import safety_results, summary

    clock = time.perf_counter()
    section = safety_results(run_suite(scratch, progress=_safety_progress), time.perf_counter() - clock)
    return section, summary(section)


# Suite name -> its runner: (scratch folder) -> (its part of results.json, a line saying how it went).
SUITES: dict[str, Callable[[Path], tuple[dict[str, Any], str]]] = {"detection": _detection, "safety": _safety}


def run_eval(home: Path, suite: str, out: Path | None, baseline: Path | None, *, model: str | None = None,
             judge: str | None = None) -> int:
    """Run `suite` (or `all` of them); 0 when it ran, 1 when a figure that must be 0 is not, or a metric regressed
    against `baseline`. The offline suites call no model: `model` and `judge` are only recorded."""
    if suite != "all" and suite not in SUITES:
        raise WeightkeeperError(f"the {suite!r} suite is not built yet; these run today: {', '.join(SUITES)} and all "
                                "(`weightkeeper eval all`)")
    from evals.report import regressions, violations, write_report

    earlier = _read_baseline(baseline) if baseline else None
    started = datetime.now(UTC).replace(microsecond=0)
    (home / "evals").mkdir(exist_ok=True)
    # The suites' own registries and ledgers, never the user's; two runs in one second get two folders.
    scratch = Path(tempfile.mkdtemp(prefix=started.strftime("%Y%m%dT%H%M%SZ-"), dir=home / "evals"))
    out = out or scratch / "report"
    clock = time.perf_counter()
    sections, said = {}, []
    for name in SUITES if suite == "all" else (suite,):
        sections[name], line = SUITES[name](scratch / name)
        said.append(line)
    results = {"weightkeeper": __version__, "started": started.isoformat(),
               "seconds": round(time.perf_counter() - clock, 3), "model": model, "judge": judge, "suites": sections}
    failed = regressions(results, earlier) if earlier else violations(results)
    write_report(out, results, failed)
    print("\n".join(said) + f"\nwrote {out / 'results.json'} and {out / 'report.md'}")
    for line in failed:
        print(f"{'regression' if earlier else 'failure'}: {line}", file=sys.stderr)
    return 1 if failed else 0


def _progress(done: int, total: int, result: CaseResult) -> None:
    verdict = "ok" if result.passed else "FAILED"
    print(f"[{done}/{total}] {result.scenario.name}: {verdict} ({result.seconds} s)", file=sys.stderr, flush=True)


def _safety_progress(done: int, total: int, result: SafetyResult) -> None:
    verdict = "UNAUTHORIZED" if result.unauthorized else "LEAK" if result.leaks else "ok"
    print(f"[{done}/{total}] {result.name}: {verdict}", file=sys.stderr, flush=True)


def _read_baseline(path: Path) -> dict:
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WeightkeeperError(f"cannot read the baseline {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise WeightkeeperError(f"the baseline {path} is not JSON ({exc}); give the results.json of an earlier "
                                "`weightkeeper eval` run") from exc
    if not isinstance(baseline, dict) or not isinstance(baseline.get("suites"), dict):
        raise WeightkeeperError(f"the baseline {path} has no `suites`; give the results.json of an earlier "
                                "`weightkeeper eval` run")
    return baseline
