"""The suite's own settings: Hypothesis profiles bound every run, `thorough` widens it, `slow` marks the slowest,
the files that use the MLflow server share a worker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def property_settings() -> dict[str, list]:
    """The property tests' settings as the loaded profile made them: (examples, steps, derandomized) of each."""
    import test_fault_properties as fault
    import test_scan_properties as scan

    return {name: [s.max_examples, s.stateful_step_count, s.derandomize]
            for name, s in (("scan", scan.SETTINGS), ("fault", fault.SETTINGS), ("hub", fault.HUB_SETTINGS))}


def test_the_property_tests_take_their_counts_from_the_profile() -> None:
    """Every run replays the same few histories; `thorough` draws new ones, many more and longer (the HTTP fault
    machines keep their 18 steps)."""
    assert property_settings() == {"scan": [10, 30, True], "fault": [10, 18, True], "hub": [5, 18, True]}
    # A fresh interpreter loads the profile as pytest does, conftest first.
    probe = "import json, conftest, test_suite_settings as t; print(json.dumps(t.property_settings()))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=TESTS.parent, check=True,
                         env={**os.environ, "HYPOTHESIS_PROFILE": "thorough", "PYTHONPATH": str(TESTS)})
    assert json.loads(out.stdout) == {"scan": [200, 50, False], "fault": [200, 18, False], "hub": [100, 18, False]}


def test_the_slowest_tests_are_marked_slow_so_the_quick_loop_leaves_them_out() -> None:
    """`-m "not slow"` runs what `-m slow` does not collect; the README command has no -m and runs both."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", "-m", "slow",
                          "tests/test_scan_properties.py", "tests/test_fault_properties.py"],
                         capture_output=True, text=True, cwd=TESTS.parent, check=True)
    slow = {line.split("[")[0] for line in out.stdout.splitlines() if "::" in line}
    assert slow == {
        "tests/test_scan_properties.py::test_replayed_events_reconstruct_the_registry",
        "tests/test_scan_properties.py::test_registry_faults_conclude_nothing_and_clean_scan_recovers",
        "tests/test_fault_properties.py::test_faults_never_delete_what_exists_and_every_deletion_is_found_once_they_stop",
        "tests/test_fault_properties.py::test_no_caller_of_the_hub_records_a_deletion_of_a_model_that_exists",
    }


def test_every_file_that_uses_the_mlflow_server_runs_in_the_worker_that_started_it() -> None:
    """The files listed in conftest.MLFLOW_USERS share one xdist worker and its server; one left out would start
    another (10-30 s). test_evals.py is listed though it never names the fixture: its detection suite's MLflow
    scenarios use the same server."""
    import conftest

    using = {path.name for path in TESTS.glob("test_*.py") if re.search(r"\bmlflow_server\b", path.read_text())}
    assert using and using <= conftest.MLFLOW_USERS
    assert "test_evals.py" in conftest.MLFLOW_USERS
