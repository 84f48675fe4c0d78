"""Failures through a real edge: handler faults give CloudFront's status and error page,
origin faults give 502/504, nothing wrong is cached, and the edge keeps serving."""

from __future__ import annotations

import socket

from conftest import OriginResponse, RecordingOrigin, StartEdge, distribution, handler


def one_hook(origin: RecordingOrigin, stage: str, spec: str) -> dict:
    return distribution(
        origin.port, lambda_function_association=[{"event_type": stage, "handler": handler(spec)}]
    )


async def test_handler_exception_is_503_and_others_keep_working(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = one_hook(origin, "viewer-request", "flow_fail.py:raises")
    base = dict(document["distribution"]["default_cache_behavior"])
    base.pop("lambda_function_association")
    document["distribution"]["ordered_cache_behavior"] = [{**base, "path_pattern": "/ok/*"}]
    viewer = await start_edge(document)

    failed = await viewer.get("/broken")
    assert failed.status_code == 503
    assert failed.headers["x-cache"] == "LambdaExecutionError from cloudfront"
    assert "<H1>503 ERROR</H1>" in failed.text
    assert failed.headers["x-amz-cf-id"] in failed.text
    assert "Traceback" not in failed.text

    ok = await viewer.get("/ok/page")
    assert ok.status_code == 200
    assert origin.requests_for("/broken") == []


async def test_none_result_is_a_validation_error(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(one_hook(origin, "origin-request", "flow_fail.py:returns_none"))
    response = await viewer.get("/none")
    assert response.status_code == 502
    assert response.headers["x-cache"] == "LambdaValidationError from cloudfront"
    assert origin.seen == []


async def test_disallowed_header_from_origin_response_is_502_not_cached(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(
        one_hook(origin, "origin-response", "flow_fail.py:adds_disallowed_header")
    )
    for _ in range(2):
        response = await viewer.get("/bad")
        assert response.status_code == 502
        assert response.headers["x-cache"] == "LambdaValidationError from cloudfront"
    assert len(origin.requests_for("/bad")) == 2
    assert (await viewer.stats())["cache"]["stores"] == 0


def _refused_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_origin_connection_refused_is_502_not_cached(start_edge: StartEdge):
    document = distribution(_refused_port())
    document["distribution"]["origin"][0]["connection_attempts"] = 1
    viewer = await start_edge(document)
    for _ in range(2):
        response = await viewer.get("/down")
        assert response.status_code == 502
        assert response.headers["x-cache"] == "Error from cloudfront"
        assert "<H1>502 ERROR</H1>" in response.text
    assert (await viewer.stats())["cache"]["stores"] == 0


async def test_origin_5xx_passes_through_as_error(origin: RecordingOrigin, start_edge: StartEdge):
    origin.responses["/err"] = OriginResponse(status=500, headers={}, body="origin broke")
    viewer = await start_edge(distribution(origin.port))
    response = await viewer.get("/err")
    assert response.status_code == 500
    assert response.text == "origin broke"
    assert response.headers["x-cache"] == "Error from cloudfront"


async def test_url_over_8192_bytes_is_413(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(distribution(origin.port))
    response = await viewer.get("/" + "a" * 8200)
    assert response.status_code == 413
    assert origin.seen == []


async def test_get_with_a_body_is_403_and_not_forwarded(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port))
    response = await viewer.request("GET", "/with-body", content=b"surprise")
    assert response.status_code == 403
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert origin.seen == []


async def test_url_of_exactly_8192_bytes_is_served(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(distribution(origin.port))
    path = "/" + "a" * 8191
    await viewer.get(path)  # the test origin itself may refuse so long a line: not our call
    assert (await viewer.exchanges())[-1]["origin_fetches"] == 1  # the edge forwarded it
    assert (await viewer.get(path + "b")).status_code == 413
