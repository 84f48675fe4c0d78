"""``CloudFront-*`` headers a viewer sends itself: a viewer-request function sees them as the
viewer sent them; CloudFront adds its own values only after viewer-request, and they replace
the viewer's toward the origin.

Source: Developer Guide "Restrictions on Lambda@Edge", section CloudFront headers
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-at-edge-function-restrictions.html):
when a viewer sends these headers and CloudFront is set to add them, CloudFront overwrites
them; viewer-side functions see the viewer's value, origin-side functions CloudFront's
(reference 4.3); "Adding CloudFront request headers": added after viewer-request (6.1).
"""

from __future__ import annotations

from typing import Any

from conftest import RecordingOrigin, StartEdge, distribution, handler

NAMED = ["CloudFront-Viewer-Country", "CloudFront-Is-Mobile-Viewer"]
SENT = {
    "CloudFront-Viewer-Country": "DE",
    "CloudFront-Is-Mobile-Viewer": "true",
    "CloudFront-Forwarded-Proto": "https",
}


def reporting(origin: RecordingOrigin, trust: bool) -> dict[str, Any]:
    document = distribution(
        origin.port,
        forwarded_values={"query_string": False, "headers": NAMED, "cookies": {"forward": "none"}},
        lambda_function_association=[
            {"event_type": "viewer-request", "handler": handler("reports_cloudfront_headers.py")}
        ],
    )
    document["edge"]["handlers"] = {"isolation": "thread"}
    document["edge"]["geo"] = {"trust_viewer_headers": trust, "default": {"country": "US"}}
    return document


async def test_viewer_request_sees_the_viewers_values_and_the_origin_cloudfronts(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    viewer = await start_edge(reporting(origin, trust=False))
    response = await viewer.get("/page", headers=SENT)
    assert response.status_code == 200
    (seen,) = origin.requests_for("/page")
    assert seen.headers["X-Saw"] == (
        "cloudfront-forwarded-proto=https;cloudfront-is-mobile-viewer=true;"
        "cloudfront-viewer-country=DE"
    )
    # Toward the origin, CloudFront's own values replace the viewer's; one no policy names
    # is not sent at all.
    assert seen.headers.getall("CloudFront-Viewer-Country") == ["US"]
    assert seen.headers.getall("CloudFront-Is-Mobile-Viewer") == ["false"]
    assert "CloudFront-Forwarded-Proto" not in seen.headers


async def test_simulated_values_stay_cloudfronts_own(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    """``edge.geo.trust_viewer_headers``: what the viewer sends stands for what CloudFront
    would add, so viewer-request does not see it, and the origin gets it."""
    viewer = await start_edge(reporting(origin, trust=True))
    response = await viewer.get("/page", headers=SENT)
    assert response.status_code == 200
    (seen,) = origin.requests_for("/page")
    assert seen.headers["X-Saw"] == "-"
    assert seen.headers.getall("CloudFront-Viewer-Country") == ["DE"]
    assert seen.headers.getall("CloudFront-Is-Mobile-Viewer") == ["true"]
