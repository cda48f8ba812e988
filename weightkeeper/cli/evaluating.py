"""`weightkeeper eval`: run the evaluation suites in a scratch folder under the home, write and compare reports."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from weightkeeper import __version__
from weightkeeper.errors import WeightkeeperError
from weightkeeper.words import counted

BUILT = ("detection",)

if TYPE_CHECKING:
    from evals.detection import CaseResult


def run_eval(home: Path, suite: str, out: Path | None, baseline: Path | None, *, model: str | None = None,
             judge: str | None = None) -> int:
    """Run `suite`; 0 when it ran (and did not regress against `baseline`), 1 on a regression. The detection
    suite calls no model: `model` and `judge` are only recorded, for the suites that will."""
    if suite not in BUILT:
        raise WeightkeeperError(f"the {suite!r} suite is not built yet; only 'detection' runs today "
                                "(`weightkeeper eval detection`)")
    from evals.detection import run_suite
    from evals.report import detection_results, regressions, write_report

    earlier = _read_baseline(baseline) if baseline else None
    started = datetime.now(UTC).replace(microsecond=0)
    (home / "evals").mkdir(exist_ok=True)
    # The suites' own registries and ledgers, never the user's; two runs in one second get two folders.
    scratch = Path(tempfile.mkdtemp(prefix=started.strftime("%Y%m%dT%H%M%SZ-"), dir=home / "evals"))
    out = out or scratch / "report"
    clock = time.perf_counter()
    cases = run_suite(scratch / "detection", progress=_progress)
    seconds = time.perf_counter() - clock
    results = {"weightkeeper": __version__, "started": started.isoformat(), "seconds": round(seconds, 3),
               "model": model, "judge": judge,
               "suites": {"detection": detection_results(cases, seconds)}}
    regressed = regressions(results, earlier) if earlier else []
    write_report(out, results, regressed)
    figures = results["suites"]["detection"]["metrics"]
    print(f"detection: {figures['passed']} of {counted(figures['scenarios'], 'scenario')} passed; false deletions "
          f"{figures['false_deletions']}, duplicated events {figures['duplicates']}\nwrote {out / 'results.json'} "
          f"and {out / 'report.md'}")
    for line in regressed:
        print(f"regression: {line}", file=sys.stderr)
    return 1 if regressed else 0


def _progress(done: int, total: int, result: CaseResult) -> None:
    verdict = "ok" if result.passed else "FAILED"
    print(f"[{done}/{total}] {result.scenario.name}: {verdict} ({result.seconds} s)", file=sys.stderr, flush=True)


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
