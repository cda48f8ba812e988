"""A copy of the project's packages with one line added, for tests that read the source and must catch that line."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("weightkeeper", "tools", "agents", "tui", "evals")


def copy_with_line(tmp_path: Path, module: str, line: str) -> Path:
    """The packages copied under `tmp_path`, `line` added to `module` (a path) inside a new function: the copy's
    root."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n\ndef _added() -> None:\n    {line}\n",
                      encoding="utf-8")
    return tmp_path
