"""Model SPECs on the `weightkeeper eval` command line: which drafter writes the letters, which models judge them.

    offline                                  the offline drafter (letters only; no judge)
    MODEL@BASE_URL                           an OpenAI-compatible endpoint that needs no key
    MODEL@BASE_URL;key=ENV_VAR               ... whose key is in the environment variable ENV_VAR
    MODEL@BASE_URL;key=ENV_VAR;prompt=FILE   ... drafting with another version of prompts/advocate.md

The key itself never appears in a SPEC, results.json or a report: only the variable's name does, and a SPEC is
recorded without it (`label`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from weightkeeper.errors import WeightkeeperError

if TYPE_CHECKING:
    from evals.letters import Drafting
    from weightkeeper.config import LLMSettings

OFFLINE = "offline"
OPTIONS = ("key", "prompt")
FORM = "MODEL@BASE_URL[;key=ENV_VAR][;prompt=FILE]"


class SpecError(WeightkeeperError):
    """A SPEC that cannot be read; the message shows the form it takes."""


@dataclass(frozen=True)
class ModelSpec:
    model: str
    base_url: str
    key_env: str | None = None
    prompt: Path | None = None

    @property
    def label(self) -> str:
        """How results.json names it: the model, its endpoint and its prompt file, never its key's variable."""
        return f"{self.model}@{self.base_url}" + (f";prompt={self.prompt}" if self.prompt else "")

    def settings(self) -> LLMSettings:
        from weightkeeper.config import LLMSettings

        return LLMSettings(base_url=self.base_url, model=self.model, api_key_env=self.key_env, max_retries=1)


def parse(spec: str) -> ModelSpec:
    model, at, rest = spec.partition("@")
    base_url, *options = rest.split(";")
    if not at or not model or not base_url.startswith(("http://", "https://")):
        raise SpecError(f"cannot read the model SPEC {spec!r}: write {FORM}, such as "
                        "'gpt-4o-mini@https://api.openai.com/v1;key=OPENAI_API_KEY' or "
                        "'qwen2.5:7b@http://127.0.0.1:11434/v1'")
    found: dict[str, str] = {}
    for option in options:
        name, equals, value = option.partition("=")
        if name not in OPTIONS or not equals or not value:
            raise SpecError(f"the model SPEC {spec!r} has {option!r}; its options are key=ENV_VAR and prompt=FILE "
                            f"({FORM})")
        found[name] = value
    prompt = Path(found["prompt"]).expanduser() if "prompt" in found else None
    if prompt is not None and not prompt.is_file():
        raise SpecError(f"the model SPEC {spec!r} names the prompt file {prompt}, which does not exist")
    return ModelSpec(model, base_url, found.get("key"), prompt)


def drafting(spec: str | None) -> Drafting:
    """The drafter a SPEC names: the offline drafter for None or `offline`; otherwise the LLM drafter, with the LLM
    critic beside the deterministic one, as `weightkeeper propose` drafts with an [llm] table."""
    from agents.graph import offline_drafter
    from evals.letters import Drafting

    if spec is None or spec == OFFLINE:
        return Drafting(OFFLINE, offline_drafter)
    import prompts
    from agents.llm_critic import LLMCritic
    from agents.llm_drafter import PROMPT, LLMDrafter

    parsed = parse(spec)
    settings = parsed.settings()
    prompt = prompts.read(PROMPT, parsed.prompt) if parsed.prompt else None
    return Drafting(parsed.label, LLMDrafter(settings, prompt), LLMCritic(settings))
