"""No handler can split a response: CR, LF, NUL and other control characters in what a
Lambda@Edge handler returns (statusDescription, header names, keys and values, the uri) are
a 502 LambdaValidationError in every stage that can return them, and the viewer's socket
carries exactly one well-formed response with nothing of the attack in it. The handler is
the real file tests/data/handlers/splits_response.py; the edge and origin are real."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import RecordingOrigin, StartEdge, distribution, handler
from viewer_wire import exchange_bytes, single_response

from edgeproxy.stages import Stage

VALIDATION = "LambdaValidationError from cloudfront"
REQUEST_STAGES = (Stage.VIEWER_REQUEST, Stage.ORIGIN_REQUEST)


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n".encode()


def with_hook(origin: RecordingOrigin, stage: Stage) -> dict[str, Any]:
    spec = {"event_type": str(stage), "handler": handler("splits_response.py")}
    return distribution(origin.port, lambda_function_association=[spec])


# attack (a key of splits_response.ATTACKS) → the validation rule that refuses it
REASON_ATTACKS = {
    "reason-crlf": "status-description-chars",
    "reason-second-response": "status-description-chars",
    "reason-lf": "status-description-chars",
    "reason-cr": "status-description-chars",
    "reason-nul": "status-description-chars",
    "reason-escape": "status-description-chars",
    "reason-delete": "status-description-chars",
}
HEADER_ATTACKS = {
    "value-crlf": "header-value-chars",
    "value-lf": "header-value-chars",
    "value-nul": "header-value-chars",
    "name-crlf": "header-name-valid",
    "key-crlf": "header-name-valid",
}
URI_ATTACKS = {
    "uri-crlf": "uri-chars",
    "uri-lf": "uri-chars",
    "uri-nul": "uri-chars",
    "uri-space": "uri-chars",
    "uri-tab": "uri-chars",
    "uri-fragment": "uri-chars",
    "uri-relative": "uri-valid",
    "uri-absolute": "uri-valid",
}
CASES = [
    pytest.param(attack, rule, stage, id=f"{attack}@{stage.value}")
    for attacks, stages in (
        (REASON_ATTACKS, tuple(Stage)),
        (HEADER_ATTACKS, tuple(Stage)),
        (URI_ATTACKS, REQUEST_STAGES),
    )
    for attack, rule in attacks.items()
    for stage in stages
]


@pytest.mark.parametrize(("attack", "rule", "stage"), CASES)
async def test_handler_cannot_split_the_response(
    attack: str,
    rule: str,
    stage: Stage,
    origin: RecordingOrigin,
    start_edge: StartEdge,
    caplog: pytest.LogCaptureFixture,
) -> None:
    viewer = await start_edge(with_hook(origin, stage))
    path = f"/split/{attack}"
    with caplog.at_level(logging.ERROR, logger="edgeproxy.handler"):
        data = await exchange_bytes(viewer.running.ports["http"], get(path))
    answer = single_response(data)
    assert answer.status == 502
    assert answer.header("x-cache") == VALIDATION
    assert b"The Lambda function result failed validation." in answer.body
    assert b"injected" not in data.lower()
    # Request stages fail before the fetch: nothing of the attack reached the origin either.
    assert len(origin.requests_for(path)) == (0 if stage in REQUEST_STAGES else 1)
    logged = [r.getMessage() for r in caplog.records if "Validation error" in r.getMessage()]
    assert len(logged) == 1 and f"broke rule {rule}:" in logged[0], logged


@pytest.mark.parametrize("stage", list(Stage))
async def test_reason_with_tab_and_non_ascii_is_kept(
    stage: Stage, origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    """What the rows still accept (RFC 9110 reason-phrase: HTAB, SP, VCHAR, obs-text)."""
    viewer = await start_edge(with_hook(origin, stage))
    data = await exchange_bytes(viewer.running.ports["http"], get("/split/reason-fine"))
    status_line = data.split(b"\r\n", 1)[0]
    assert status_line == "HTTP/1.1 200 Tr\u00e8s\tbien".encode("latin-1")
    assert single_response(data).status == 200


@pytest.mark.parametrize("stage", REQUEST_STAGES)
async def test_percent_encoded_uri_reaches_the_origin(
    stage: Stage, origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    """A space and a "#" percent-encoded are what a handler should write: they pass."""
    viewer = await start_edge(with_hook(origin, stage))
    response = await viewer.get("/split/uri-encoded")
    assert response.status_code == 200, response.text
    assert [r.raw_path for r in origin.seen] == ["/a%20b%23c"]
