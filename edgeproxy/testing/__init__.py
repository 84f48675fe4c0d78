"""Testing CloudFront setups and their functions from pytest (docs/testing.md).

The fixtures (``run_edge``, ``fake_origin``) come with the pytest plugin this package
registers (``edgeproxy.testing.plugin``); what they return, and ``invoke`` for unit tests
of one function, are importable from here. Nothing here imports pytest."""

from edgeproxy.testing.edge import LocalEdge, prepared_config
from edgeproxy.testing.invoking import Invoked, OriginAnswer, Request, invoke
from edgeproxy.testing.origin import FakeOrigin, ReceivedRequest, Reply
from edgeproxy.testing.records import EdgeResult, ExchangeRecord, Response, StageRun

__all__ = [
    "EdgeResult",
    "ExchangeRecord",
    "FakeOrigin",
    "Invoked",
    "LocalEdge",
    "OriginAnswer",
    "ReceivedRequest",
    "Reply",
    "Request",
    "Response",
    "StageRun",
    "invoke",
    "prepared_config",
]
