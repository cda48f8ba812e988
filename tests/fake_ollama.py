"""The fake Ollama lives in `evals.fakes.ollama`, where the detection suite uses it too."""

from evals.fakes.ollama import FakeOllama

__all__ = ["FakeOllama"]
