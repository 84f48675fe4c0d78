"""Lambda@Edge fidelity through a real edge: every validation rule in the stage it applies to,
stuck handlers next to 100 other viewers, include-body, origin switching, and the shapes that
must survive the trip. Each test asserts what the viewer got (status, X-Cache) and whether
the origin was contacted."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from conftest import (
    OriginResponse,
    RecordingOrigin,
    StartEdge,
    distribution,
    handler,
    start_recording_origin,
)

from edgeproxy.errors import validation_answer
from edgeproxy.functions.validation import RULES, Kind
from edgeproxy.stages import Stage

VALIDATION = "LambdaValidationError from cloudfront"
REQUEST_STAGES = (Stage.VIEWER_REQUEST, Stage.ORIGIN_REQUEST)


def with_hooks(origin: RecordingOrigin, *hooks: dict[str, Any], **behavior: Any) -> dict:
    return distribution(origin.port, lambda_function_association=list(hooks), **behavior)


def hook(stage: Stage | str, spec: str, **settings: Any) -> dict[str, Any]:
    return {"event_type": str(stage), "handler": handler(spec), **settings}


# --- every rule of the table, in each stage it can be broken in ------------------------------


def _breakable(rule_name: str, stage: Stage) -> bool:
    """Whether breaks_rule.py can break ``rule_name`` in ``stage`` (the rule applies there to
    a result the handler can return)."""
    rule = next(r for r in RULES if r.name == rule_name)
    if stage not in rule.stages:
        return False
    kinds = {Kind.REQUEST, Kind.GENERATED} if stage in REQUEST_STAGES else {Kind.RESPONSE}
    if not kinds & rule.kinds:
        return False
    # A viewer-response body is ignored, never a generated response (reference 10 #9).
    return not (rule_name == "generated-size" and stage is Stage.VIEWER_RESPONSE)


# Origin fetches after one and after two requests: an origin-response failure is not stored; a
# viewer-response failure is not the object's fault (it is stored; the next hit fails again).
FETCHES_AFTER_TWO = {
    Stage.VIEWER_REQUEST: (0, 0),
    Stage.ORIGIN_REQUEST: (0, 0),
    Stage.ORIGIN_RESPONSE: (1, 2),
    Stage.VIEWER_RESPONSE: (1, 1),
}

RULE_CASES = [
    pytest.param(rule.name, stage, id=f"{rule.name}@{stage.value}")
    for rule in RULES
    for stage in Stage
    if _breakable(rule.name, stage)
]


def test_every_rule_and_every_stage_is_covered_through_the_edge() -> None:
    assert {case.values[0] for case in RULE_CASES} == {rule.name for rule in RULES}
    assert {case.values[1] for case in RULE_CASES} == set(Stage)


@pytest.mark.parametrize(("rule", "stage"), RULE_CASES)
async def test_rule_breach_is_502_validation_error(
    rule: str,
    stage: Stage,
    origin: RecordingOrigin,
    start_edge: StartEdge,
    caplog: pytest.LogCaptureFixture,
) -> None:
    include_body = {"include_body": True} if stage in REQUEST_STAGES else {}
    viewer = await start_edge(with_hooks(origin, hook(stage, "breaks_rule.py", **include_body)))
    path = f"/break/{rule}"
    with caplog.at_level(logging.ERROR, logger="edgeproxy.handler"):
        response = await viewer.get(path)
    assert response.status_code == 502
    assert response.headers["x-cache"] == VALIDATION
    assert "<H1>502 ERROR</H1>" in response.text
    # CloudFront's reason line for the rule (errors.LAMBDA_ANSWERS; the captured lines are
    # checked word for word in test_lambda_error_answers.py)
    assert validation_answer(rule).page_message in response.text
    # Request stages fail before the fetch, response stages after it.
    assert len(origin.requests_for(path)) == FETCHES_AFTER_TWO[stage][0]
    # The log says the stage, the handler file and the rule.
    logged = [r.getMessage() for r in caplog.records if "Validation error" in r.getMessage()]
    assert len(logged) == 1
    assert f"{stage.value} " in logged[0] and "breaks_rule.py:handler" in logged[0]
    assert f"broke rule {rule}:" in logged[0]
    again = await viewer.get(path)
    assert (again.status_code, again.headers["x-cache"]) == (502, VALIDATION)
    assert len(origin.requests_for(path)) == FETCHES_AFTER_TWO[stage][1]


async def test_valid_int_status_and_keyless_entries_are_accepted(
    origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path
) -> None:
    """What CloudFront accepts: an int status, entries without key (title-cased), an entry
    whose key names another header (sent under the map key, reference 10 #10)."""
    (tmp_path / "lenient.py").write_text(
        "def handler(event, context):\n"
        "    return {'status': 201, 'headers': {\n"
        "        'x-no-key': [{'value': 'a'}],\n"
        "        'last-modified': [{'key': 'X-Amz-Meta-Last-Modified', 'value': 'b'}]}}\n"
    )
    viewer = await start_edge(
        with_hooks(
            origin, {"event_type": "viewer-request", "handler": f"{tmp_path}/lenient.py:handler"}
        )
    )
    response = await viewer.get("/x")
    assert response.status_code == 201
    assert response.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    raw = dict(response.headers.raw)
    assert raw[b"X-No-Key"] == b"a" and raw[b"Last-Modified"] == b"b"
    assert origin.seen == []


async def test_handler_exception_is_503_execution_error(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    for stage in Stage:
        spec = "flow_fail.py:raises"
        viewer = await start_edge(with_hooks(origin, hook(stage, spec)))
        path = f"/raise/{stage.value}"
        response = await viewer.get(path)
        assert response.status_code == 503, stage
        assert response.headers["x-cache"] == "LambdaExecutionError from cloudfront"
        assert "Traceback" not in response.text
        assert len(origin.requests_for(path)) == (0 if stage in REQUEST_STAGES else 1)


# --- stuck handlers never stall other viewers --------------------------------------------------


def stuck_document(origin: RecordingOrigin, spec: str, isolation: str) -> dict[str, Any]:
    """``/stuck/*`` runs ``spec`` on viewer-request with a 0.5 s timeout; the rest is plain."""
    document = distribution(origin.port)
    base = dict(document["distribution"]["default_cache_behavior"])
    stuck = hook("viewer-request", spec, timeout=0.5, isolation=isolation)
    document["distribution"]["ordered_cache_behavior"] = [
        {**base, "path_pattern": "/stuck/*", "lambda_function_association": [stuck]}
    ]
    return document


async def hundred_others(viewer: Any, tag: str) -> None:
    """100 concurrent viewers on another behavior all get their normal answer."""
    answers = await asyncio.gather(*(viewer.get(f"/ok/{tag}/{i}") for i in range(100)))
    for i, answer in enumerate(answers):
        assert answer.status_code == 200
        assert answer.text == f"origin body for /ok/{tag}/{i}"
        assert answer.headers["x-cache"] == "Miss from cloudfront"


async def served_while_pending(viewer: Any, pending: Any) -> int:
    """Requests answered on another path while ``pending`` (the stuck request) waits."""
    served = 0
    while not pending.done() and served < 10_000:
        assert (await viewer.get(f"/ok/during/{served}")).status_code == 200
        served += 1
    return served


async def handler_entered(viewer: Any, pid_file: Path, isolation: str) -> None:
    """Wait (bounded) until the stuck handler is running: a thread sets its module's ENTERED,
    a worker process writes its pid."""
    stuck_hook = viewer.running.edge.routes.select("/stuck/a").hooks[Stage.VIEWER_REQUEST]
    for _ in range(1000):
        if isolation == "thread" and stuck_hook.handler.module.ENTERED.is_set():
            return
        if isolation == "process" and pid_file.exists() and pid_file.read_text():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the stuck handler never started")


@pytest.mark.parametrize(
    ("spec", "isolation"),
    [("stuck.py:sleep_60", "thread"), ("stuck.py:spin", "process"), ("stuck.py:spin", "inline")],
)
async def test_stuck_handler_gets_503_and_others_are_served(
    spec: str, isolation: str, origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path
) -> None:
    viewer = await start_edge(stuck_document(origin, spec, isolation))
    pid_file = tmp_path / "pid"
    stuck = asyncio.create_task(viewer.get("/stuck/a", headers={"X-Pid-File": str(pid_file)}))
    if isolation != "inline":  # inline holds the loop itself until the watchdog fires
        await handler_entered(viewer, pid_file, isolation)
        assert await served_while_pending(viewer, stuck) > 0  # the edge kept answering
    response = await stuck
    # The 503 came at the handler's 0.5 s timeout: a 60 s sleep or an endless loop never
    # ended, and the viewer's client (10 s timeout) got its answer.
    assert response.status_code == 503
    # A timeout is an execution error (serverless-next.js#2014: "Task timed out" → 503 page)
    assert response.headers["x-cache"] == "LambdaExecutionError from cloudfront"
    assert origin.requests_for("/stuck/a") == []
    await hundred_others(viewer, isolation)
    if isolation == "process":  # the stuck worker was killed, not left spinning
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)
    if isolation == "thread":  # the thread is still asleep: abandoned, not waited for
        module = viewer.running.edge.routes.select("/stuck/a").hooks[Stage.VIEWER_REQUEST]
        assert not module.handler.module.LEFT.is_set()
    second = await viewer.get("/stuck/b")
    assert second.status_code == 503


# --- include body --------------------------------------------------------------------------------


async def test_form_post_rewritten_by_viewer_request_reaches_the_origin(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    rewrite = hook("viewer-request", "rewrites_form_body.py", include_body=True)
    viewer = await start_edge(with_hooks(origin, rewrite))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for encoding in ("text", "base64"):
        response = await viewer.request(
            "POST",
            f"/form/{encoding}",
            content=b"name=ann&role=user",
            headers={**form, "X-Body-Encoding": encoding},
        )
        assert response.status_code == 200
        assert response.headers["x-cache"] == "Miss from cloudfront"
        (seen,) = origin.requests_for(f"/form/{encoding}")
        assert await seen.read() == b"name=ann&role=admin"
        assert seen.headers["Content-Length"] == str(len(b"name=ann&role=admin"))
        assert "Transfer-Encoding" not in seen.headers


async def test_chunked_upload_rewritten_goes_with_content_length(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    rewrite = hook("viewer-request", "rewrites_form_body.py", include_body=True)
    viewer = await start_edge(with_hooks(origin, rewrite))

    async def chunks() -> Any:
        yield b"name=bo"
        yield b"b&role=user"

    response = await viewer.request("POST", "/chunked", content=chunks())
    assert response.status_code == 200
    (seen,) = origin.requests_for("/chunked")
    assert await seen.read() == b"name=bob&role=admin"
    assert seen.headers["Content-Length"] == "19"
    assert "Transfer-Encoding" not in seen.headers


@asynccontextmanager
async def big_body_origin() -> AsyncIterator[RecordingOrigin]:
    """A RecordingOrigin that accepts request bodies over aiohttp's default 1 MB."""
    recording = RecordingOrigin()
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", recording.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recording.port = runner.addresses[0][1]
    try:
        yield recording
    finally:
        await runner.cleanup()


async def test_viewer_request_sees_40kb_of_a_bigger_body(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    reads = hook("viewer-request", "reads_truncated_body.py", include_body=True)
    viewer = await start_edge(with_hooks(origin, reads))
    for size, truncated in ((40 * 1024, "false"), (40 * 1024 + 1, "true")):
        body = os.urandom(size)
        response = await viewer.request("POST", f"/small/{size}", content=body)
        assert response.status_code == 200
        (seen,) = origin.requests_for(f"/small/{size}")
        assert seen.headers["X-Seen-Length"] == str(40 * 1024)  # cut at 40 KB
        assert seen.headers["X-Input-Truncated"] == truncated
        assert await seen.read() == body


async def test_2mb_body_is_truncated_for_origin_request_but_sent_whole(
    start_edge: StartEdge,
) -> None:
    async with big_body_origin() as origin:
        reads = hook("origin-request", "reads_truncated_body.py", include_body=True)
        viewer = await start_edge(with_hooks(origin, reads))
        body = os.urandom(2 * 1024 * 1024)
        response = await viewer.request("PUT", "/upload", content=body)
        assert response.status_code == 200
        assert response.headers["x-cache"] == "Miss from cloudfront"
        (seen,) = origin.requests_for("/upload")
        assert seen.headers["X-Seen-Length"] == str(1024 * 1024)  # cut at 1 MB
        assert seen.headers["X-Input-Truncated"] == "true"
        assert await seen.read() == body  # read-only: the full original body goes on
        assert seen.headers["Content-Length"] == str(len(body))


# --- the origin a handler chooses ----------------------------------------------------------------


def country_document(origin: RecordingOrigin, eu_port: int, spec: str) -> dict[str, Any]:
    document = with_hooks(
        origin,
        hook("origin-request", spec),
        forwarded_values={
            "query_string": False,
            "headers": ["CloudFront-Viewer-Country"],
            "cookies": {"forward": "none"},
        },
    )
    main = document["distribution"]["origin"][0]
    main["custom_header"] = [{"name": "X-Eu-Port", "value": str(eu_port)}]
    document["edge"]["resolve"] = {"eu.example.com": "127.0.0.1"}
    document["edge"]["geo"] = {"trust_viewer_headers": True}
    return document


@pytest.mark.parametrize(
    ("spec", "eu_host"),
    [
        ("routes_by_country.py:handler", "eu.example.com"),
        ("routes_by_country.py:keeps_host", "127.0.0.1"),  # Host is not rewritten (reference 2.6)
    ],
)
async def test_handler_switches_origin_by_country(
    spec: str, eu_host: str, origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    eu = RecordingOrigin(responses={"/eu/page": OriginResponse(body="served from the EU")})
    async with start_recording_origin(eu):
        viewer = await start_edge(country_document(origin, eu.port, spec))
        german = await viewer.get("/page", headers={"CloudFront-Viewer-Country": "DE"})
        assert german.status_code == 200
        assert german.text == "served from the EU"
        assert german.headers["x-cache"] == "Miss from cloudfront"
        (seen,) = eu.requests_for("/eu/page")  # domain, port, protocol and path switched
        assert seen.headers["Host"] == eu_host
        assert seen.headers["X-Eu-Port"] == str(eu.port)  # the custom headers went along
        assert origin.requests_for("/page") == []
        american = await viewer.get("/page", headers={"CloudFront-Viewer-Country": "US"})
        assert american.text == "origin body for /page"
        assert len(origin.requests_for("/page")) == 1 and len(eu.seen) == 1
        again = await viewer.get("/page", headers={"CloudFront-Viewer-Country": "DE"})
        assert (again.text, again.headers["x-cache"]) == (
            "served from the EU",
            "Hit from cloudfront",
        )


async def test_s3_style_origin_event(origin: RecordingOrigin, start_edge: StartEdge) -> None:
    document = with_hooks(origin, hook("origin-request", "shapes.py:echo"))
    document["distribution"]["origin"][0] = {
        "origin_id": "test",
        "domain_name": "assets.s3.eu-west-1.amazonaws.com",
        "origin_path": "/site",
    }
    # the bucket's name resolves (to loopback here): CloudFront resolves it before
    # origin-request runs (test_origin_dns.py)
    document["edge"]["resolve"] = {"assets.s3.eu-west-1.amazonaws.com": "127.0.0.1"}
    viewer = await start_edge(document)
    response = await viewer.get("/logo.png")
    assert response.status_code == 200
    assert response.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    request = response.json()["request"]
    assert request["origin"] == {
        "s3": {
            "authMethod": "none",
            "customHeaders": {},
            "domainName": "assets.s3.eu-west-1.amazonaws.com",
            "path": "/site",
            "region": "eu-west-1",
        }
    }
    assert request["headers"]["host"] == [
        {"key": "Host", "value": "assets.s3.eu-west-1.amazonaws.com"}
    ]
    assert origin.seen == []


OAI = "origin-access-identity/cloudfront/E127EXAMPLE51Z"


@pytest.mark.parametrize(
    ("access", "auth_method"),
    [
        ({"s3_origin_config": {"origin_access_identity": OAI}}, "origin-access-identity"),
        # origin access control: the event shows CloudFront's authenticated access to the
        # bucket the same way (the audit; the Developer Guide, lambda-event-structure,
        # only says "none if you aren't using OAI" and predates OAC)
        (
            {"s3_origin_config": {}, "origin_access_control_id": "E2QWRUHAPOMQZL"},
            "origin-access-identity",
        ),
        ({"origin_access_control_id": "E2QWRUHAPOMQZL"}, "origin-access-identity"),
        ({"s3_origin_config": {"origin_access_identity": ""}}, "none"),
    ],
)
async def test_s3_origin_access_reaches_the_event(
    origin: RecordingOrigin, start_edge: StartEdge, access: dict[str, Any], auth_method: str
) -> None:
    document = with_hooks(origin, hook("origin-request", "shapes.py:echo"))
    document["distribution"]["origin"][0] = {
        "origin_id": "test",
        "domain_name": "assets.s3.eu-west-1.amazonaws.com",
        **access,
    }
    # the bucket's name resolves (to loopback here): CloudFront resolves it before
    # origin-request runs (test_origin_dns.py)
    document["edge"]["resolve"] = {"assets.s3.eu-west-1.amazonaws.com": "127.0.0.1"}
    viewer = await start_edge(document)
    response = await viewer.get("/logo.png")
    assert response.status_code == 200
    assert response.json()["request"]["origin"]["s3"]["authMethod"] == auth_method


# --- shapes that round-trip --------------------------------------------------------------------


async def test_two_set_cookies_from_origin_response(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    viewer = await start_edge(
        with_hooks(
            origin,
            hook("origin-response", "shapes.py:two_cookies"),
            forwarded_values={"query_string": False, "cookies": {"forward": "all"}},
        )
    )
    for x_cache in ("Miss from cloudfront", "Hit from cloudfront"):
        viewer.client.cookies.clear()  # the same (cookie-less) cache key both times
        response = await viewer.get("/cookies")
        assert response.headers["x-cache"] == x_cache
        assert response.headers.get_list("set-cookie") == [
            "session=abc; Path=/; HttpOnly",
            "theme=dark; Path=/",
        ]
    assert len(origin.requests_for("/cookies")) == 1


async def test_binary_generated_body(origin: RecordingOrigin, start_edge: StartEdge) -> None:
    viewer = await start_edge(with_hooks(origin, hook("viewer-request", "shapes.py:binary")))
    response = await viewer.get("/pixel.png")
    assert response.status_code == 200
    assert response.content == b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(response.content))
    assert origin.seen == []


async def test_request_fields_reach_the_handler_raw(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    viewer = await start_edge(with_hooks(origin, hook("viewer-request", "shapes.py:echo")))
    async with httpx.AsyncClient() as client:
        raw_query = "b=2&a=1&a=%20x&flag&%E2%9C%93=%ZZ"
        url = viewer.running.url("/q/path")
        response = await client.request(
            "DELETE",
            httpx.URL(url, query=raw_query.encode()),
            headers=[("x-MiXeD", "v"), ("X-Multi", "1"), ("X-Multi", "2")],
        )
    assert response.status_code == 200
    event = response.json()
    request, config = event["request"], event["config"]
    assert request["querystring"] == raw_query  # raw and unparsed
    assert (request["method"], request["uri"], request["clientIp"]) == (
        "DELETE",
        "/q/path",
        "127.0.0.1",
    )
    assert request["headers"]["x-mixed"] == [{"key": "x-MiXeD", "value": "v"}]
    assert request["headers"]["x-multi"] == [
        {"key": "X-Multi", "value": "1"},
        {"key": "X-Multi", "value": "2"},
    ]
    assert config["eventType"] == "viewer-request"
    assert config["distributionDomainName"] == "d111111abcdef8.cloudfront.net"
    assert config["distributionId"] == "EDFDVBD6EXAMPLE"
    assert config["requestId"] == response.headers["x-amz-cf-id"]


async def test_report_line_per_invocation(
    origin: RecordingOrigin, start_edge: StartEdge, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = await start_edge(
        with_hooks(
            origin,
            hook("viewer-request", "flow_passthrough.py"),
            hook("viewer-response", "flow_mark.py:viewer_response"),
        )
    )
    with caplog.at_level(logging.INFO, logger="edgeproxy.handler"):
        await viewer.get("/report")
    reports = [r.getMessage() for r in caplog.records if r.getMessage().startswith("REPORT")]
    assert len(reports) == 2
    for line in reports:
        assert "Billed Duration:" in line and "Memory Size: 128 MB" in line
        used = int(line.split("Max Memory Used: ")[1].split(" MB")[0])
        assert used > 0
