from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeproxy.errors import (
    ConfigError,
    HandlerExecutionError,
    HandlerLoadError,
    HandlerTimeout,
    HandlerValidationError,
)
from edgeproxy.functions.events import EventMeta
from edgeproxy.functions.hooks import Hook, HookRunner, Isolation, LambdaContext, build_hooks
from edgeproxy.functions.loader import LoadedHandler, load_handler
from edgeproxy.messages import EdgeRequest, EdgeResponse, OriginTarget, header_value
from edgeproxy.stages import Stage

HANDLERS = Path(__file__).parent / "data" / "handlers"
META = EventMeta("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE")
RID = "ErBax5417C_eI5vdOk6h384wAGWb4VPsg1r-9O_qe2EoeGER8BwR-g=="


@pytest.fixture
async def runner() -> AsyncIterator[HookRunner]:
    hook_runner = HookRunner()
    yield hook_runner
    await hook_runner.close()


def hook(
    spec: str,
    stage: Stage = Stage.VIEWER_REQUEST,
    timeout: float = 5.0,
    isolation: Isolation = "thread",
    include_body: bool = False,
    base_dir: Path = HANDLERS,
) -> Hook:
    return Hook(stage, load_handler(spec, base_dir), timeout, include_body, isolation)


def request(*extra: tuple[str, str]) -> EdgeRequest:
    return EdgeRequest(
        method="GET",
        uri="/",
        querystring="a=1",
        headers=[("Host", "d111111abcdef8.cloudfront.net"), ("Accept", "*/*"), *extra],
        client_ip="203.0.113.178",
        origin=OriginTarget("example.org", 443, "https"),
    )


def response() -> EdgeResponse:
    return EdgeResponse(
        200, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")], b"x", "OK"
    )


@pytest.mark.parametrize("isolation", ["thread", "inline", "process"])
async def test_passthrough_returns_the_same_request(
    runner: HookRunner, isolation: Isolation
) -> None:
    sent = request()
    for stage in (Stage.VIEWER_REQUEST, Stage.ORIGIN_REQUEST):
        got = await runner.run_request(
            hook("passthrough.py:handler", stage, isolation=isolation), sent, META, RID
        )
        assert got == sent


@pytest.mark.parametrize("isolation", ["thread", "inline", "process"])
async def test_response_passthrough(runner: HookRunner, isolation: Isolation) -> None:
    sent = response()
    for stage in (Stage.ORIGIN_RESPONSE, Stage.VIEWER_RESPONSE):
        h = hook("passthrough.py:response_handler", stage, isolation=isolation)
        assert await runner.run_response(h, request(), sent, META, RID) == sent


async def test_async_handlers_are_awaited(runner: HookRunner) -> None:
    got = await runner.run_request(hook("async_passthrough.py:handler"), request(), META, RID)
    assert isinstance(got, EdgeRequest) and header_value(got.headers, "x-async") == "yes"
    h = hook("async_passthrough.py:response_handler", Stage.ORIGIN_RESPONSE)
    resp = await runner.run_response(h, request(), response(), META, RID)
    assert header_value(resp.headers, "X-Async") == "yes"


async def test_generated_response_with_int_status(runner: HookRunner) -> None:
    got = await runner.run_request(hook("generates_response.py:redirect"), request(), META, RID)
    assert got == EdgeResponse(302, [("Location", "https://example.com/new")], b"", "Found")


async def test_generated_binary_body(runner: HookRunner) -> None:
    h = hook("generates_response.py:binary", Stage.ORIGIN_REQUEST)
    got = await runner.run_request(h, request(), META, RID)
    assert isinstance(got, EdgeResponse) and got.body == b"GIF89a\x01\x00"


async def test_handler_exception_is_execution_error_with_user_traceback(
    runner: HookRunner, caplog: pytest.LogCaptureFixture
) -> None:
    for spec in ("raises.py:handler", "raises.py:async_handler"):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="edgeproxy.handler"):
            with pytest.raises(HandlerExecutionError) as info:
                await runner.run_request(hook(spec), request(), META, RID)
        assert info.value.detail == "ValueError: cannot parse '/'"
        assert (info.value.stage, info.value.handler) == ("viewer-request", spec)
        assert info.value.status == 503
        text = "\n".join(record.getMessage() for record in caplog.records)
        assert 'raises.py", line' in text and "in _parse" in text
        assert f"in {spec.partition(':')[2]}" in text
        assert "functions/hooks.py" not in text
        assert "asyncio" not in text and "threading" not in text


async def test_users_own_timeout_error_is_an_execution_error(runner: HookRunner) -> None:
    with pytest.raises(HandlerExecutionError, match="upstream api timed out"):
        await runner.run_request(hook("raises.py:raises_timeout_error"), request(), META, RID)


async def test_process_isolation_reports_user_exception(
    runner: HookRunner, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="edgeproxy.handler"):
        with pytest.raises(HandlerExecutionError, match="ValueError: cannot parse"):
            await runner.run_request(
                hook("raises.py:handler", isolation="process"), request(), META, RID
            )
    assert "in _parse" in caplog.text


async def test_process_timeout_stops_the_worker(runner: HookRunner) -> None:
    h = hook("counter.py:handler", isolation="process")
    first = await runner.run_request(h, request(), META, RID)
    assert header_value(first.headers, "x-calls") == "1"
    slow = hook("sleeps.py:handler", timeout=0.2, isolation="process")
    with pytest.raises(HandlerTimeout):
        await runner.run_request(slow, request(("X-Sleep", "30")), META, RID)
    # The stuck worker was killed; a fresh one serves the next call at once.
    got = await runner.run_request(slow, request(("X-Sleep", "0")), META, RID)
    assert isinstance(got, EdgeRequest)


async def test_process_worker_crash_is_execution_error(runner: HookRunner, tmp_path: Path) -> None:
    (tmp_path / "crash.py").write_text("import os\ndef handler(e, c):\n    os._exit(3)\n")
    h = hook("crash.py:handler", isolation="process", base_dir=tmp_path)
    with pytest.raises(HandlerExecutionError, match="Runtime.ExitError: Runtime exited"):
        await runner.run_request(h, request(), META, RID)


async def test_none_result_is_validation_error(runner: HookRunner) -> None:
    with pytest.raises(HandlerValidationError, match="The JSON output must be an object type"):
        await runner.run_request(hook("returns_none.py:handler"), request(), META, RID)


async def test_disallowed_header_is_validation_error(runner: HookRunner) -> None:
    with pytest.raises(HandlerValidationError, match="blacklisted header .* connection"):
        await runner.run_request(hook("adds_disallowed_header.py:handler"), request(), META, RID)
    h = hook("adds_disallowed_header.py:response_handler", Stage.VIEWER_RESPONSE)
    with pytest.raises(HandlerValidationError, match="x-amz-cf-pop"):
        await runner.run_response(h, request(), response(), META, RID)


async def test_read_only_header_is_validation_error(runner: HookRunner) -> None:
    with pytest.raises(HandlerValidationError, match="change read-only header, headerName : Host"):
        await runner.run_request(hook("changes_read_only_header.py:handler"), request(), META, RID)
    h = hook("changes_read_only_header.py:delete_transfer_encoding", Stage.ORIGIN_RESPONSE)
    with pytest.raises(HandlerValidationError, match="delete read-only header.*Transfer-Encoding"):
        await runner.run_response(h, request(), response(), META, RID)


@pytest.mark.parametrize(
    ("spec", "isolation"),
    [
        ("sleeps.py:handler", "thread"),
        ("sleeps.py:async_handler", "thread"),
        ("sleeps.py:handler", "process"),
    ],
)
async def test_timeout(runner: HookRunner, spec: str, isolation: Isolation) -> None:
    h = hook(spec, timeout=0.2, isolation=isolation)
    # A warm runtime first: as on Lambda, starting one (init) is not the call's time.
    await runner.run_request(h, request(("X-Sleep", "0")), META, RID)
    start = time.monotonic()
    with pytest.raises(HandlerTimeout) as info:
        await runner.run_request(h, request(("X-Sleep", "1")), META, RID)
    # The viewer gets its 503 at the timeout, not when the handler finishes.
    assert time.monotonic() - start < 0.8
    assert info.value.detail == "Task timed out after 0.20 seconds"
    assert info.value.status == 503


async def test_inline_timeout_is_checked_after_the_call(runner: HookRunner) -> None:
    h = hook("sleeps.py:handler", timeout=0.2, isolation="inline")
    with pytest.raises(HandlerTimeout):
        await runner.run_request(h, request(("X-Sleep", "0.3")), META, RID)


async def test_thread_isolation_keeps_the_loop_running(runner: HookRunner) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    got = await runner.run_request(
        hook("sleeps.py:handler"), request(("X-Sleep", "0.5")), META, RID
    )
    ticker.cancel()
    assert isinstance(got, EdgeRequest)
    assert ticks >= 20


async def test_concurrent_slow_handlers_run_in_parallel(runner: HookRunner) -> None:
    h = hook("sleeps.py:handler")
    start = time.monotonic()
    await asyncio.gather(
        *(runner.run_request(h, request(("X-Sleep", "0.3")), META, RID) for _ in range(8))
    )
    assert time.monotonic() - start < 1.0


async def test_context_remaining_time_and_names(runner: HookRunner) -> None:
    got = await runner.run_request(hook("remaining_time.py:handler"), request(), META, RID)
    assert isinstance(got, EdgeRequest)
    remaining = int(header_value(got.headers, "x-remaining-ms") or "0")
    assert 4000 < remaining <= 5000
    assert header_value(got.headers, "x-function-name") == "us-east-1.remaining_time"
    request_id = header_value(got.headers, "x-request-id") or ""
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", request_id
    )


def test_lambda_context_fields() -> None:
    context = LambdaContext("us-east-1.index", 128, 0.05, "2024/01/01/[1]abc")
    assert context.function_version == "1"
    assert context.invoked_function_arn == (
        "arn:aws:lambda:us-east-1:123456789012:function:us-east-1.index:1"
    )
    assert context.memory_limit_in_mb == "128"  # a string, as in Lambda's Python runtime
    assert context.log_group_name == "/aws/lambda/us-east-1.index"
    assert context.log_stream_name == "2024/01/01/[1]abc"
    assert 0 < context.get_remaining_time_in_millis() <= 50
    time.sleep(0.06)
    assert context.get_remaining_time_in_millis() == 0


@pytest.mark.parametrize("isolation", ["thread", "inline", "process"])
async def test_module_globals_persist(runner: HookRunner, isolation: Isolation) -> None:
    h = hook("counter.py:handler", isolation=isolation)
    counts = []
    for _ in range(3):
        got = await runner.run_request(h, request(), META, RID)
        counts.append(int(header_value(got.headers, "x-calls") or "0"))
    assert counts[1] == counts[0] + 1 and counts[2] == counts[0] + 2


async def test_report_line(runner: HookRunner, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="edgeproxy.handler"):
        await runner.run_request(hook("passthrough.py:handler"), request(), META, RID)
    reports = [r for r in caplog.records if r.getMessage().startswith("REPORT RequestId: ")]
    assert len(reports) == 1
    assert re.fullmatch(
        r"REPORT RequestId: [0-9a-f-]{36} Duration: \d+\.\d\d ms Billed Duration: [1-9]\d* ms "
        r"Memory Size: 128 MB Max Memory Used: [1-9]\d* MB",
        reports[0].getMessage(),
    )
    assert reports[0].handler == "passthrough.py:handler"  # type: ignore[attr-defined]


async def test_changed_file_is_reloaded(runner: HookRunner, tmp_path: Path) -> None:
    path = tmp_path / "live.py"
    source = "def handler(event, context):\n    return {{'status': {}}}\n"
    path.write_text(source.format(201))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    h = hook("live.py:handler", base_dir=tmp_path)
    assert (await runner.run_request(h, request(), META, RID)).status == 201  # type: ignore[union-attr]
    path.write_text(source.format(202))
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert (await runner.run_request(h, request(), META, RID)).status == 202  # type: ignore[union-attr]


async def test_include_body_reaches_the_handler(runner: HookRunner, tmp_path: Path) -> None:
    (tmp_path / "body.py").write_text(
        "import base64\n"
        "def handler(event, context):\n"
        "    req = event['Records'][0]['cf']['request']\n"
        "    data = base64.b64decode(req['body']['data']).upper()\n"
        "    req['body'] = {'action': 'replace', 'encoding': 'text', 'data': data.decode()}\n"
        "    return req\n"
    )
    sent = request()
    sent.method, sent.body = "POST", b"hello"
    h = hook("body.py:handler", include_body=True, base_dir=tmp_path)
    got = await runner.run_request(h, sent, META, RID)
    assert isinstance(got, EdgeRequest) and got.body == b"HELLO"


# --- build_hooks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assoc:
    event_type: Stage | str
    handler_spec: str
    include_body: bool = False
    timeout: float | None = None
    isolation: str | None = None


def test_build_hooks_defaults_and_sharing() -> None:
    hooks = build_hooks(
        [
            Assoc("viewer-request", "counter.py:handler"),
            Assoc(Stage.ORIGIN_REQUEST, "counter.py:handler", True, 1.5, "inline"),
            Assoc("viewer-response", "passthrough.py:response_handler"),
        ],
        HANDLERS,
        "thread",
    )
    assert set(hooks) == {Stage.VIEWER_REQUEST, Stage.ORIGIN_REQUEST, Stage.VIEWER_RESPONSE}
    vr, orq = hooks[Stage.VIEWER_REQUEST], hooks[Stage.ORIGIN_REQUEST]
    assert (vr.timeout_s, vr.isolation, vr.include_body) == (5.0, "thread", False)
    assert (orq.timeout_s, orq.isolation, orq.include_body) == (1.5, "inline", True)
    assert vr.handler is orq.handler  # one module, one set of globals
    assert (
        build_hooks([Assoc("origin-response", "passthrough.py:response_handler")], HANDLERS)[
            Stage.ORIGIN_RESPONSE
        ].timeout_s
        == 30.0
    )


def test_build_hooks_shares_handlers_across_behaviors() -> None:
    loaded: dict[str, LoadedHandler] = {}
    first = build_hooks([Assoc("viewer-request", "counter.py:handler")], HANDLERS, loaded=loaded)
    second = build_hooks([Assoc("origin-request", "counter.py:handler")], HANDLERS, loaded=loaded)
    assert first[Stage.VIEWER_REQUEST].handler is second[Stage.ORIGIN_REQUEST].handler
    assert list(loaded) == ["counter.py:handler"]


@pytest.mark.parametrize(
    ("assocs", "message"),
    [
        ([Assoc("viewer-response", "passthrough.py:handler", include_body=True)], "IncludeBody"),
        ([Assoc("viewer-request", "passthrough.py:handler", isolation="fork")], "isolation"),
        (
            [Assoc("viewer-request", "passthrough.py:handler")] * 2,
            "a second viewer-request association",
        ),
    ],
)
def test_build_hooks_refuses(assocs: list[Assoc], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_hooks(assocs, HANDLERS, "thread")


def test_build_hooks_load_error_names_the_file() -> None:
    with pytest.raises(HandlerLoadError, match="syntax_error.py"):
        build_hooks([Assoc("viewer-request", "syntax_error.py:handler")], HANDLERS, "thread")
