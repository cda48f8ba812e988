"""The import direction, read from the source with `ast`: core (weightkeeper/, but its cli) <- tools <- agents <-
faces (weightkeeper.cli, tui). The core imports no tool, agent or face; tools import no agent or face; agents
import no face, and reach nothing that signs (weightkeeper.signing, weightkeeper.deciding), even through the
core. Imports inside functions (the lazy ones) count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from source_copies import PACKAGES, ROOT, copy_with_line

FACES = ("weightkeeper.cli", "tui")
SIGNING = ("weightkeeper.signing", "weightkeeper.deciding", "weightkeeper.ledger.decisions")
FORBIDDEN = {  # layer -> what no module of it may import
    "core": ("tools", "agents", "evals", *FACES),
    "tools": ("agents", "evals", *FACES),
    "agents": ("evals", *FACES, *SIGNING),
}


def layer(module: str) -> str | None:
    if module == "weightkeeper.cli" or module.startswith("weightkeeper.cli."):
        return "face"
    return {"weightkeeper": "core", "tools": "tools", "agents": "agents"}.get(module.split(".")[0])


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(module: str, path: Path) -> set[str]:
    """Every module `module` imports, anywhere in its source, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    named = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return named


def within(name: str, prefixes: tuple[str, ...]) -> str | None:
    return next((prefix for prefix in prefixes if name == prefix or name.startswith(prefix + ".")), None)


def violations(root: Path) -> list[str]:
    known = modules(root)
    graph = {module: imports(module, path) for module, path in known.items()}
    found = []
    for module in sorted(known):
        rule = FORBIDDEN.get(layer(module) or "")
        for name in sorted(graph[module]) if rule else ():
            if within(name, rule):
                found.append(f"{module} imports {name}: {layer(module)} must not import {within(name, rule)}")
        if layer(module) == "agents":
            found += [f"{module} imports {chain[-1]} ({' -> '.join(chain)}): agents must not reach what signs"
                      for chain in reaching(graph, module, SIGNING)]
    return found


def reaching(graph: dict[str, set[str]], start: str, targets: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The import chains from `start` through first-party modules (faces aside) to a module in `targets`."""
    chains, seen, stack = [], {start}, [(start,)]
    while stack:
        chain = stack.pop()
        for name in sorted(graph.get(chain[-1], ())):
            if within(name, targets):
                chains.append((*chain, name))
            elif name in graph and name not in seen and not within(name, FACES):
                seen.add(name)
                stack.append((*chain, name))
    return chains


def test_the_layers_import_only_downwards_and_agents_reach_nothing_that_signs() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(("module", "line", "expected"), [
    ("agents/executor.py", "from weightkeeper.signing import signer", "agents.executor imports weightkeeper.signing"),
    ("agents/executor.py", "from weightkeeper import deciding", "agents.executor imports weightkeeper.deciding"),
    ("weightkeeper/review.py", "from weightkeeper.deciding import HumanReviewer",
     "agents.executor imports weightkeeper.deciding (agents.executor -> weightkeeper.review -> weightkeeper.deciding)"),
    ("weightkeeper/scan.py", "import tools.memory", "weightkeeper.scan imports tools.memory"),
    ("tools/publish/outbox.py", "from agents import executor", "tools.publish.outbox imports agents.executor"),
    ("agents/graph.py", "from weightkeeper.cli.reviewing import act",
     "agents.graph imports weightkeeper.cli.reviewing"),
])
def test_a_forbidden_import_added_to_a_copy_is_caught(tmp_path: Path, module: str, line: str, expected: str) -> None:
    copy = copy_with_line(tmp_path, module, line)
    assert any(found.startswith(expected) for found in violations(copy)), violations(copy)
