"""Every table has one owner: SQL runs only in weightkeeper/ledger/ and the review queue (weightkeeper/review.py).
Read from the source with `ast`: a `.execute`, `.executemany` or `.executescript` call anywhere else fails, unless
its receiver is an imported module (`executor.execute(...)` runs approved actions, not SQL)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from source_copies import PACKAGES, ROOT, copy_with_line

SQL_CALLS = frozenset({"execute", "executemany", "executescript"})
OWNERS = (
    "weightkeeper/ledger/",
    "weightkeeper/review.py",
    # The safety suite plays an attacker who can write the ledger (raw rows, as no API of ours would write them) and
    # scores what a run left by reading the tables itself, independently of the code it measures.
    "evals/safety_attacks.py",
    "evals/safety_scoring.py",
    "evals/safety_world.py",
)


def imported_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def sql_calls(root: Path) -> list[str]:
    """`path:line receiver.method` for every SQL call outside the owners."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(OWNERS):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), relative)
            modules = imported_names(tree)
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS
                        and not (isinstance(node.func.value, ast.Name) and node.func.value.id in modules)):
                    found.append(f"{relative}:{node.lineno} {ast.unparse(node.func)}")
    return found


def test_sql_runs_only_in_the_ledger_and_the_review_queue() -> None:
    assert sql_calls(ROOT) == []


@pytest.mark.parametrize(("module", "line", "expected"), [
    ("agents/documenter.py", 'ledger.conn.execute("SELECT 1")', "agents/documenter.py"),
    ("tui/data.py", 'ledger.conn.cursor().executemany("DELETE FROM events", [])', "tui/data.py"),
    ("weightkeeper/cli/watch.py", "conn.executescript(script)", "weightkeeper/cli/watch.py"),
    ("tools/memory.py", "self.db.execute(query, params)", "tools/memory.py"),
])
def test_sql_added_outside_the_owners_in_a_copy_is_caught(tmp_path: Path, module: str, line: str,
                                                          expected: str) -> None:
    copy = copy_with_line(tmp_path, module, line)
    assert [call for call in sql_calls(copy) if call.startswith(expected)], sql_calls(copy)
