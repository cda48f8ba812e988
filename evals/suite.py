"""What an evaluation suite gives the runner (`weightkeeper eval`, weightkeeper/cli/evaluating.py).

A suite is a `Suite`: a function that runs it in a scratch folder and answers its part of results.json
(`{"metrics": …, "cases": [...], "seconds": …}`), the lines of its report.md section, its one-line summary
for the terminal, and its regressions against the same part of a baseline run. The runner's registry maps
each suite's name to its `Suite`, so a new suite is one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Part = dict[str, Any]  # a suite's part of results.json


@dataclass(frozen=True)
class Options:
    """What the command line asks of every suite; a suite uses what concerns it and ignores the rest."""

    model: str | None = None  # the drafting model's SPEC (evals/models.py); None: the offline drafter
    judges: tuple[str, ...] = ()  # the judges' SPECs
    compare: str | None = None  # a second drafter's SPEC to compare with, case by case
    progress: Callable[[str], object] = field(default=lambda line: None)  # hears a line per case done


@dataclass(frozen=True)
class Suite:
    name: str
    run: Callable[[Path, Options], Part]
    section: Callable[[Part], list[str]]  # its report.md section, from its heading down
    summary: Callable[[Part], str]
    regressions: Callable[[Part, Part], list[str]]  # (now, baseline): each regression in a sentence


def progress_line(done: int, total: int, name: str, passed: bool, seconds: float) -> str:
    return f"[{done}/{total}] {name}: {'ok' if passed else 'FAILED'} ({seconds} s)"
