"""The HTTP fakes live in `evals.fakes.http`, where the detection suite uses them too."""

from evals.fakes.http import FakeServer, Fault, Reply, Request, ServedFake

__all__ = ["FakeServer", "Fault", "Reply", "Request", "ServedFake"]
