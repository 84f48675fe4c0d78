"""What a viewer gets when a Lambda@Edge function fails: the status, the X-Cache value and
CloudFront's error page with its message line, as captured from real CloudFront.

Sources (public captures of CloudFront's own pages):
* a function timeout ("Task timed out after 10.01 seconds" in the function's log) answered
  503 with the execution-error page: serverless-nextjs/serverless-next.js#2014, and
  awslabs/cognito-at-edge#86 ("503 ERROR due lambda timeout");
  X-Cache ``LambdaExecutionError from cloudfront``: reference 4.7 (captures).
* throttling (more concurrent executions than the quota) answered 503 "The Lambda function
  associated with the CloudFront distribution was throttled." followed by the can't-connect
  line: https://dev.to/aws-builders/managing-lambdaedge-service-quotas-6od; X-Cache
  ``LambdaLimitExceeded``: Developer Guide http-503-lambda-limit-execeeded-error.
* validation errors, 502 with the reason line then the can't-connect line:
  opennextjs/opennextjs-aws#392 (blacklisted header), aws-samples/react-ssr-lambda#28
  (JSON output must be an object type), reference 4.8 for the other captured lines.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import RecordingOrigin, StartEdge, distribution, handler

CANT_CONNECT = (
    "We can't connect to the server for this app or website at this time. There might be too "
    "much traffic or a configuration error. Try again later, or contact the app or website owner."
)
EXECUTION_LINE = (
    "The Lambda function associated with the CloudFront distribution is invalid or doesn't "
    "have the required permissions."
)
THROTTLED_LINE = "The Lambda function associated with the CloudFront distribution was throttled."


def on_viewer_request(
    origin: RecordingOrigin, spec: str, isolation: str = "thread", **association: Any
) -> dict[str, Any]:
    document = distribution(origin.port)
    document["distribution"]["default_cache_behavior"]["lambda_function_association"] = [
        {"event_type": "viewer-request", "handler": handler(spec), **association}
    ]
    document["edge"]["handlers"] = {"isolation": isolation}
    return document


def message_lines(page: str) -> list[str]:
    """The lines between the page's first rule and the first <BR>: the message."""
    body = page.split('<HR noshade size="1px">\n', 1)[1]
    return body.split("<BR clear=", 1)[0].strip().split("\n")


@pytest.mark.parametrize("isolation", ["thread", "process"])
async def test_a_function_timeout_is_an_execution_error(
    isolation: str, origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    viewer = await start_edge(on_viewer_request(origin, "sleeps.py", isolation, timeout=0.3))
    response = await viewer.get("/slow", headers={"X-Sleep": "2"})
    assert response.status_code == 503
    assert response.headers["x-cache"] == "LambdaExecutionError from cloudfront"
    assert message_lines(response.text) == [EXECUTION_LINE, CANT_CONNECT]
    assert origin.seen == []


async def test_an_exception_page_has_the_cant_connect_line(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    viewer = await start_edge(on_viewer_request(origin, "raises.py"))
    response = await viewer.get("/raise")
    assert (response.status_code, response.headers["x-cache"]) == (
        503,
        "LambdaExecutionError from cloudfront",
    )
    assert message_lines(response.text) == [EXECUTION_LINE, CANT_CONNECT]


async def test_executions_past_the_edge_limit_are_throttled(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    """``edge.handlers.max_concurrent_executions``: 2 executions at once across all
    functions of the edge; a third call meanwhile is refused 503 LambdaLimitExceeded, and
    once they end calls run again."""
    document = on_viewer_request(origin, "sleeps.py", timeout=3)
    document["edge"]["handlers"]["max_concurrent_executions"] = 2
    viewer = await start_edge(document)
    running = [
        asyncio.create_task(viewer.get(f"/slow/{i}", headers={"X-Sleep": "1"})) for i in range(2)
    ]
    await asyncio.sleep(0.4)  # both are in their handler now
    throttled = await viewer.get("/third", headers={"X-Sleep": "0"})
    assert throttled.status_code == 503
    assert throttled.headers["x-cache"] == "LambdaLimitExceeded from cloudfront"
    assert message_lines(throttled.text) == [THROTTLED_LINE, CANT_CONNECT]
    assert [r.status_code for r in await asyncio.gather(*running)] == [200, 200]
    assert (await viewer.get("/fourth", headers={"X-Sleep": "0"})).status_code == 200
    assert origin.requests_for("/third") == []


def test_the_execution_limit_defaults_to_lambdas_concurrency_quota() -> None:
    """1,000 concurrent executions, Lambda's default regional quota (Developer Guide
    cloudfront-limits, "Quotas on Lambda@Edge")."""
    from edgeproxy.config.edge_settings import HandlerSettings

    assert HandlerSettings().max_concurrent_executions == 1000


@pytest.mark.parametrize(
    ("rule", "line"),
    [
        (
            "result-is-object",
            "The Lambda function returned invalid JSON: The JSON output must be an object type.",
        ),
        (
            "header-entry-is-array",
            "The Lambda function returned an invalid entry in the headers object: Each header "
            "entry in the headers object must be an array.",
        ),
        (
            "disallowed-header",
            "The Lambda function result failed validation: The function tried to add a "
            "blacklisted header.",
        ),
        (
            "read-only-header",
            "The Lambda function result failed validation: The function tried to add, delete, "
            "or change a read-only header.",
        ),
        (
            "generated-size",
            "The Lambda function result failed validation: The body is not a string, is not "
            "an object, or exceeds the maximum size.",
        ),
    ],
)
async def test_validation_pages_carry_cloudfronts_reason(
    rule: str, line: str, origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    viewer = await start_edge(on_viewer_request(origin, "breaks_rule.py"))
    response = await viewer.get(f"/break/{rule}")
    assert response.status_code == 502
    assert response.headers["x-cache"] == "LambdaValidationError from cloudfront"
    assert message_lines(response.text) == [line, CANT_CONNECT]


def test_every_validation_row_names_a_rule() -> None:
    """A ``validation/<rule>`` row of the answers table is read only for a rule of
    ``validation.RULES``: a misspelt row would silently give the generic page."""
    from edgeproxy.errors import LAMBDA_ANSWERS, VALIDATION
    from edgeproxy.functions.validation import RULES

    named = {key.split("/", 1)[1] for key in LAMBDA_ANSWERS if key.startswith(f"{VALIDATION}/")}
    assert named <= {rule.name for rule in RULES}
