"""The fake Hub with discussions lives in `evals.fakes.hub_discussions`, where the safety suite uses it too."""

from evals.fakes.hub_discussions import FakeHubWithDiscussions

__all__ = ["FakeHubWithDiscussions"]
