"""Prompt templates as versioned text files beside this module, loaded by name.

A prompt file's first line declares its version (`<!-- version: 1 -->`). Every draft records the
prompt it was written with as `name@version`, so a reviewer or an eval can tell which wording
produced it: change the words, bump the version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from weightkeeper.errors import WeightkeeperError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION_LINE = re.compile(r"^<!--\s*version:\s*(\d+(?:\.\d+)*)\s*-->\s*$")


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
    first, _, text = raw.partition("\n")
    match = _VERSION_LINE.match(first)
    if not match:
        raise PromptError(f"prompts/{name}.md must start with its version, like '<!-- version: 1 -->'")
    return Prompt(name, match.group(1), text.strip())
