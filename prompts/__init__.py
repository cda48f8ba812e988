"""Prompt templates as versioned text files beside this module, loaded by name.

A prompt file's first line declares its version (`<!-- version: 1 -->`). Every draft records the
prompt it was written with as `name@version`, so a reviewer or an eval can tell which wording
produced it: change the words, bump the version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from weightkeeper.errors import WeightkeeperError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION_LINE = re.compile(r"^<!--\s*version:\s*(\d+(?:\.\d+)*)\s*-->\s*$")
_FIELD = re.compile(r"^([a-z_]+):\s*(.+?)\s*$")
PRECEDENT_FIELDS = ("who", "when", "title", "url", "what")
PRECEDENT_FITS = ("events", "models")  # optional: what the commitment speaks to (agents/advocate.py `precedents_for`)
_BLOCK = re.compile(r"^\[([a-z_]+)\]\s*$", re.M)


class PromptError(WeightkeeperError):
    """A prompt is missing from the package, or its file does not declare a version."""


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    version: str
    text: str  # the file without its version line

    @property
    def ref(self) -> str:
        """How a draft names it: `advocate@1`."""
        return f"{self.name}@{self.version}"


def load(name: str) -> Prompt:
    """The prompt in `prompts/<name>.md`."""
    if not _NAME.match(name):
        raise PromptError(f"{name!r} is not a prompt name: use lower-case letters, digits and '_'")
    try:
        raw = (resources.files(__name__) / f"{name}.md").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PromptError(f"no prompt named {name!r}: expected prompts/{name}.md in the installed package") from exc
    return _parsed(name, raw, f"prompts/{name}.md")


def read(name: str, path: Path) -> Prompt:
    """Another version of the prompt `name`, from a file (an evaluation compares it with the installed one)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"cannot read the prompt file {path}: {exc.strerror or exc}") from exc
    return _parsed(name, raw, str(path))


def _parsed(name: str, raw: str, where: str) -> Prompt:
    first, _, text = raw.partition("\n")
    match = _VERSION_LINE.match(first)
    if not match:
        raise PromptError(f"{where} must start with its version, like '<!-- version: 1 -->'")
    return Prompt(name, match.group(1), text.strip())


def sections(name: str) -> tuple[Prompt, dict[str, str]]:
    """A template of named parts (`prompts/letter.md`): each part starts with a line `[name]` and runs to the next."""
    prompt = load(name)
    parts = _BLOCK.split(prompt.text)[1:]
    return prompt, {key: text.strip() for key, text in zip(parts[::2], parts[1::2], strict=True)}


def precedents() -> list[dict[str, Any]]:
    """The public commitments in `prompts/precedents.md`, each as the evidence a letter may cite: a statement,
    its facts (who, when, title, url, what) and its source (`precedents@VERSION`)."""
    prompt = load("precedents")
    found = []
    for paragraph in prompt.text.split("\n\n"):
        fields = dict(match.groups() for line in paragraph.splitlines() if (match := _FIELD.match(line)))
        if not fields:
            continue  # the file's explanation, not an entry
        if not set(PRECEDENT_FIELDS) <= set(fields) <= {*PRECEDENT_FIELDS, *PRECEDENT_FITS}:
            raise PromptError(f"an entry of prompts/precedents.md has {', '.join(sorted(fields))}; each entry needs "
                              f"exactly {', '.join(PRECEDENT_FIELDS)}, and may add {', '.join(PRECEDENT_FITS)}, "
                              "one `key: value` per line")
        found.append({"statement": f"{fields['who']}, \"{fields['title']}\" ({fields['when']}, {fields['url']}): "
                                   f"{fields['what']}",
                      "facts": fields, "source": prompt.ref})
    return found
