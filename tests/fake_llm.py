"""The scripted LLM lives in `evals.fakes.llm`, where the safety suite uses it too."""

from evals.fakes.llm import API_KEY, CRITIQUE, USAGE, FakeLLM, Scripted, block

__all__ = ["API_KEY", "CRITIQUE", "USAGE", "FakeLLM", "Scripted", "block"]
