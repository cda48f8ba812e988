"""`weightkeeper eval`: run the evaluation suites in a scratch folder under the home, write and compare reports."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightkeeper import __version__
from weightkeeper.errors import WeightkeeperError

if TYPE_CHECKING:
    from evals.suite import Suite

# Each suite's `evals.suite.Suite`, as "module:name", imported only when run (`weightkeeper --help` imports none).
# `all` runs them in this order. A new suite is one line here.
SUITES: dict[str, str] = {
    "detection": "evals.report:DETECTION",
    "letters": "evals.letters_report:LETTERS",
    "safety": "evals.safety_report:SAFETY",
}
ALL = "all"


def run_eval(home: Path, suite: str, out: Path | None, baseline: Path | None, *, model: str | None = None,
             judges: tuple[str, ...] = (), compare: str | None = None) -> int:
    """Run `suite` (or every suite: `all`); 0 when it ran and did not regress against `baseline` (a results.json or
    a folder of them), 1 on a regression. Without a baseline, 1 when a figure that must be 0 is not."""
    from evals.models import OFFLINE, parse
    from evals.report import regressions, write_report
    from evals.suite import Options

    for spec in (*judges, *(spec for spec in (model, compare) if spec not in (None, OFFLINE))):
        parse(spec)  # a SPEC that cannot be read is said before any suite runs

    chosen = {name: _suite(name) for name in (SUITES if suite == ALL else (suite,))}
    earlier = _read_baselines(baseline) if baseline else None
    started = datetime.now(UTC).replace(microsecond=0)
    (home / "evals").mkdir(exist_ok=True)
    # The suites' own registries and ledgers, never the user's; two runs in one second get two folders.
    scratch = Path(tempfile.mkdtemp(prefix=started.strftime("%Y%m%dT%H%M%SZ-"), dir=home / "evals"))
    out = out or scratch / "report"
    options = Options(model=model, judges=judges, compare=compare, progress=_progress)
    clock = time.perf_counter()
    parts = {name: runner.run(scratch / name, options) for name, runner in chosen.items()}
    results = {"weightkeeper": __version__, "started": started.isoformat(),
               "seconds": round(time.perf_counter() - clock, 3), "model": model, "judges": list(judges),
               "compare": compare, "baseline": str(baseline) if baseline else None, "suites": parts}
    # Compared with itself, a run regresses only where a figure must be 0 whatever any baseline says.
    regressed = regressions(results, earlier or results, chosen)
    write_report(out, results, regressed, [runner.section(parts[name]) for name, runner in chosen.items()])
    for name, runner in chosen.items():
        print(runner.summary(parts[name]))
    print(f"wrote {out / 'results.json'} and {out / 'report.md'}")
    for line in regressed:
        print(f"{'regression' if earlier else 'failure'}: {line}", file=sys.stderr)
    return 1 if regressed else 0


def _suite(name: str) -> Suite:
    module, _, attribute = SUITES[name].partition(":")
    return getattr(import_module(module), attribute)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _read_baselines(path: Path) -> dict[str, Any]:
    """One results.json, or every *.json of a folder (one file per suite, as evals/baselines/ keeps them) merged."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise WeightkeeperError(f"the baseline folder {path} holds no results.json files (*.json)")
    suites: dict[str, Any] = {}
    for file in files:
        suites.update(_read_baseline(file)["suites"])
    return {"suites": suites}


def _read_baseline(path: Path) -> dict[str, Any]:
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
