"""The fake OpenAI API lives in `evals.fakes.openai`, where the detection suite uses it too."""

from evals.fakes.openai import API_KEY, ORG, FakeOpenAI, error, rate_limited

__all__ = ["API_KEY", "ORG", "FakeOpenAI", "error", "rate_limited"]
