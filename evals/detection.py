"""The detection suite: scenarios of registry states, scanned by the real engine and adapters, scored.

A scenario (evals/detection/*.yaml) names its registry (`local`, `hf`, `ollama`, `openai` or `mlflow`; `evals.worlds`
says what each can do), the Hub's caller (`anonymous`, `outsider`, `member`), and steps. Each
step changes the registry (`do`), may arm faults for its scan (`faults`) or stop the scan after some pages
as SIGTERM would (`stop_after_pages`), and lists the changes that truly happened in it (`truth`). Every
step is followed by exactly one scan into the scenario's own ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.scoring import CaseScore, Event, score_case
from evals.worlds import ScenarioError, open_world, yaml_files

SCENARIOS = Path(__file__).parent / "detection"
OPERATIONS = frozenset({"add", "delete", "rename", "update", "commit"})
STEP_KEYS = frozenset({"do", "faults", "stop_after_pages", "truth", "note"})


@dataclass
class Scenario:
    name: str
    description: str
    registry: str
    caller: str
    steps: list[dict[str, Any]]
    path: Path

    def truth(self) -> list[Event]:
        return [Event(kind, model, number) for number, step in enumerate(self.steps)
                for item in step.get("truth", []) for kind, model in item.items()]


@dataclass
class CaseResult:
    scenario: Scenario
    score: CaseScore
    scans: list[str]  # each scan's status
    unmet_faults: int  # faults a scenario armed that no scan met: the scenario tests less than it says
    seconds: float

    @property
    def passed(self) -> bool:
        return self.score.passed and not self.unmet_faults


def load_scenarios(folder: Path = SCENARIOS) -> list[Scenario]:
    """Every scenario file of the folder, checked: a mistake names the file and says what to fix."""
    scenarios = []
    for path, raw in yaml_files(folder, "scenario"):
        if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list) or not raw["steps"]:
            raise ScenarioError(f"{path}: a scenario is a mapping with a non-empty list of `steps`")
        for number, step in enumerate(raw["steps"], start=1):
            _check_step(path, number, step)
        scenarios.append(Scenario(path.stem, str(raw.get("description", "")), raw.get("registry", "local"),
                                  raw.get("caller", "anonymous"), raw["steps"], path))
    return scenarios


def _check_step(path: Path, number: int, step: Any) -> None:
    where = f"{path}, step {number}"
    if not isinstance(step, dict) or set(step) - STEP_KEYS:
        raise ScenarioError(f"{where}: a step is a mapping of {', '.join(sorted(STEP_KEYS))}")
    for operation in step.get("do", []):
        if not isinstance(operation, dict) or operation.get("op") not in OPERATIONS or "name" not in operation:
            raise ScenarioError(f"{where}: an operation needs `op` (one of {', '.join(sorted(OPERATIONS))}) "
                                f"and `name`, not {operation!r}")
    for fault in step.get("faults", []):
        if not isinstance(fault, dict) or "fault" not in fault:
            raise ScenarioError(f"{where}: a fault is a mapping with `fault` (its kind), not {fault!r}")
    if not isinstance(step.get("stop_after_pages", 1), int):
        raise ScenarioError(f"{where}: `stop_after_pages` is a number of pages")
    for item in step.get("truth", []):
        if not isinstance(item, dict) or len(item) != 1:
            raise ScenarioError(f"{where}: a true event is written `- KIND: MODEL`, not {item!r}")


def run_scenario(scenario: Scenario, scratch: Path) -> CaseResult:
    """Play the scenario against its registry, one scan per step, into a ledger under `scratch`."""
    from weightkeeper.config import RegistryConfig
    from weightkeeper.ledger import Ledger
    from weightkeeper.ledger.queries import kinds_after
    from weightkeeper.ledger.store import LedgerAdapterCache, LedgerDigestCache
    from weightkeeper.scan import Scanner

    started = time.perf_counter()
    scratch.mkdir(parents=True)
    world = open_world(scenario.registry, scenario.caller, scratch)
    config = RegistryConfig(scenario.name, world.kind, world.settings)
    recorded: list[Event] = []
    statuses: list[str] = []
    unmet = 0
    try:
        with Ledger(scratch / "ledger.sqlite3") as ledger:
            registry_id = ledger.registry_id(config.name, config.kind, config.location)
            for number, step in enumerate(scenario.steps):
                try:
                    for operation in step.get("do", []):
                        world.apply(operation)
                    world.arm(step.get("faults", []))
                except (KeyError, OSError, ScenarioError) as exc:
                    raise ScenarioError(f"{scenario.path}, step {number + 1}: {exc}; the step asks for "
                                        "something its registry does not hold") from exc
                adapter = world.adapter(LedgerAdapterCache(ledger, registry_id), LedgerDigestCache(ledger, registry_id))
                pages = [0]
                limit = step.get("stop_after_pages")
                result = Scanner(ledger, config, adapter, progress=lambda count, _models: pages.__setitem__(0, count),
                                 should_stop=lambda: limit is not None and pages[0] >= limit).run()
                unmet += world.disarm()
                statuses.append(result.status)
                # By position, not by scan id: a resumed scan keeps the id of the run it resumes.
                recorded += [Event(kind, world.names.get(model, model), number)
                             for kind, model in kinds_after(ledger, len(recorded))]
    finally:
        world.close()
    return CaseResult(scenario, score_case(scenario.truth(), recorded), statuses, unmet,
                      round(time.perf_counter() - started, 3))


def run_suite(scratch: Path, *, scenarios: list[Scenario] | None = None,
              progress: Callable[[int, int, CaseResult], object] = lambda done, total, result: None) -> list[CaseResult]:
    """Every scenario, each in its own folder under `scratch`; `progress` hears of each one done."""
    chosen = load_scenarios() if scenarios is None else scenarios
    results = []
    for number, scenario in enumerate(chosen, start=1):
        results.append(run_scenario(scenario, scratch / scenario.name))
        progress(number, len(chosen), results[-1])
    return results
