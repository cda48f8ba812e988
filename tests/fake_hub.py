"""The fake Hub lives in `evals.fakes.hub`, where the detection suite uses it too."""

from evals.fakes.hub import DISABLED_MESSAGE, INVALID_TOKEN, USER, FakeHub, Repo, _error, _one

__all__ = ["DISABLED_MESSAGE", "INVALID_TOKEN", "USER", "FakeHub", "Repo", "_error", "_one"]
