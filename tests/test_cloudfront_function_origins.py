"""The CloudFront Functions 2.0 origin helpers through a real edge: the origin a miss goes to
is the one the viewer-request function chose.

Source: CloudFront Developer Guide, "Helper methods for origin modification"
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/helper-functions-origin-modification.html
(updateRequestOrigin: what is not given is inherited from the assigned origin; in an origin
group only the primary changes; selectRequestOriginById: an origin already in the
distribution, with all its settings; createRequestOriginGroup: two origins and the failover
status codes).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import (
    OriginResponse,
    RecordingOrigin,
    StartEdge,
    start_recording_origin,
)
from tests.test_cloudfront_functions import with_functions


@pytest.fixture
async def second() -> AsyncIterator[RecordingOrigin]:
    async with start_recording_origin(RecordingOrigin()) as recording:
        yield recording


def two_origins(first: int, second: int) -> dict[str, Any]:
    """The test distribution (origin "test") plus origin "second", and a function that picks
    origins as the viewer's x-select / x-update / x-group headers say."""
    document = with_functions(first, {"viewer-request": "origin_helpers.js"})
    document["distribution"]["origin"].append(
        {
            "origin_id": "second",
            "domain_name": "127.0.0.1",
            "custom_origin_config": {
                "http_port": second,
                "https_port": 443,
                "origin_protocol_policy": "http-only",
                "origin_ssl_protocols": ["TLSv1.2"],
            },
            "origin_path": "/second",
            "custom_header": [{"name": "X-Second", "value": "yes"}],
        }
    )
    return document


async def test_select_request_origin_by_id_sends_the_miss_to_that_origin(
    origin: RecordingOrigin, second: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(two_origins(origin.port, second.port))
    chosen = await viewer.get("/a", headers={"x-select": "second"})
    assert chosen.status_code == 200
    assert chosen.text == "origin body for /second/a"
    # the selected origin's own settings: its path and its custom header
    assert [r.path for r in second.seen] == ["/second/a"]
    assert second.seen[0].headers["X-Second"] == "yes"
    assert origin.seen == []
    plain = await viewer.get("/b")
    assert plain.text == "origin body for /b"
    assert [r.path for r in origin.seen] == ["/b"]


async def test_update_request_origin_changes_domain_path_and_headers(
    origin: RecordingOrigin, second: RecordingOrigin, start_edge: StartEdge
):
    document = two_origins(origin.port, second.port)
    # other.test is resolved locally to the second origin's port (edge.resolve)
    document["edge"]["resolve"] = {"other.test": f"127.0.0.1:{second.port}"}
    viewer = await start_edge(document)
    update = {
        "domainName": "other.test",
        "originPath": "/base",
        "customHeaders": {"x-from-function": "1"},
        "timeouts": {"readTimeout": 5, "connectionTimeout": 2},
    }
    response = await viewer.get("/c", headers={"x-update": json.dumps(update)})
    assert response.status_code == 200
    assert response.text == "origin body for /base/c"
    seen = second.seen[-1]
    assert seen.path == "/base/c"
    assert seen.headers["Host"] == "other.test"  # the Host CloudFront sends a custom origin
    assert seen.headers["X-From-Function"] == "1"
    assert origin.seen == []


async def test_update_after_select_changes_only_what_it_names(
    origin: RecordingOrigin, second: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(two_origins(origin.port, second.port))
    update = json.dumps({"customHeaders": {}})  # an empty object removes the origin's own
    await viewer.get("/d", headers={"x-select": "second", "x-update": update})
    seen = second.seen[-1]
    assert seen.path == "/second/d"  # inherited from the selected origin
    assert "X-Second" not in seen.headers


async def test_create_request_origin_group_fails_over_to_the_secondary(
    origin: RecordingOrigin, second: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/e"] = OriginResponse(status=503)
    viewer = await start_edge(two_origins(origin.port, second.port))
    response = await viewer.get("/e", headers={"x-group": "test,second"})
    assert response.status_code == 200
    assert response.text == "origin body for /second/e"
    assert [r.path for r in origin.seen] == ["/e"]
    assert [r.path for r in second.seen] == ["/second/e"]


@pytest.mark.parametrize(
    "headers",
    [
        {"x-select": "nowhere"},
        {"x-group": "test,nowhere"},
        {"x-update": json.dumps({"domainName": "bad name"})},
        {"x-update": json.dumps({"customHeaders": {"host": "x"}})},
        {"x-update": json.dumps({"timeouts": {"connectionTimeout": 60}})},
        {"x-update": json.dumps({"customOriginConfig": {"port": 22}})},
    ],
)
async def test_an_origin_the_distribution_lacks_or_bad_parameters_fail_the_function(
    origin: RecordingOrigin,
    second: RecordingOrigin,
    start_edge: StartEdge,
    headers: dict[str, str],
):
    # The call fails as a function execution error: 503 FunctionExecutionError (docs/functions.md).
    viewer = await start_edge(two_origins(origin.port, second.port))
    response = await viewer.get("/f", headers=headers)
    assert response.status_code == 503
    assert response.headers["x-cache"] == "FunctionExecutionError from cloudfront"
    assert origin.seen == [] and second.seen == []
