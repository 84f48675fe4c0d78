"""An origin whose domain name does not resolve: CloudFront resolves it before the
origin-request function runs, answers 502 and does not invoke the function.

Source: Developer Guide "Restrictions on Lambda@Edge", DNS resolution
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-at-edge-function-restrictions.html):
the resolution happens before origin-request; when it fails the function is not invoked and
the viewer gets 502 (DNS error, NonS3OriginDnsError); X-Cache ``Error from cloudfront``
(reference 4.7, 6.5).
"""

from __future__ import annotations

from typing import Any

from conftest import RecordingOrigin, StartEdge, distribution, handler


def unresolvable(origin: RecordingOrigin, domain: str) -> dict[str, Any]:
    document = distribution(
        origin.port,
        lambda_function_association=[
            {"event_type": "origin-request", "handler": handler("rewrites_origin.py")}
        ],
    )
    main = document["distribution"]["origin"][0]
    main["domain_name"] = domain
    main["custom_header"] = [{"name": "X-Port", "value": str(origin.port)}]
    document["edge"]["handlers"] = {"isolation": "thread"}
    return document


async def test_an_unresolvable_origin_is_502_before_origin_request(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    viewer = await start_edge(unresolvable(origin, "placeholder.invalid"))
    response = await viewer.get("/page")
    assert response.status_code == 502
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert origin.seen == []  # the function, which would have reached it, never ran
    assert await viewer.last_stages() == []
    assert (await viewer.exchanges())[-1]["origin_fetches"] == 0


async def test_a_name_in_edge_resolve_runs_origin_request(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    """The control: the same distribution with the name in ``edge.resolve``."""
    document = unresolvable(origin, "origin.example")
    document["edge"]["resolve"] = {"origin.example": "127.0.0.1"}
    viewer = await start_edge(document)
    response = await viewer.get("/page")
    assert (response.status_code, response.text) == (200, "origin body for /page")
    assert await viewer.last_stages() == ["origin-request"]
