"""Isolation modes: the inline watchdog, worker processes (start-up, JSON results, memory,
reload, concurrency) and what a handler's failures become."""

from __future__ import annotations

import asyncio
import decimal
import json
import logging
import os
import re
import signal
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgeproxy.errors import HandlerExecutionError, HandlerTimeout
from edgeproxy.functions.events import EventMeta
from edgeproxy.functions.hooks import Hook, HookRunner
from edgeproxy.functions.isolation import (
    HandlerThreads,
    LambdaContext,
    Raised,
    call_inline,
    request_id,
)
from edgeproxy.functions.loader import load_handler
from edgeproxy.functions.processes import Worker, marshal
from edgeproxy.functions.protocol import WorkerFailure
from edgeproxy.messages import EdgeRequest, EdgeResponse, header_value
from edgeproxy.stages import Stage

META = EventMeta("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE")
RID = "ErBax5417C_eI5vdOk6h384wAGWb4VPsg1r-9O_qe2EoeGER8BwR-g=="


@pytest.fixture
async def runner() -> AsyncIterator[HookRunner]:
    hook_runner = HookRunner()
    yield hook_runner
    await hook_runner.close()


def write(tmp_path: Path, name: str, source: str, mtime_s: int = 1) -> Path:
    path = tmp_path / name
    path.write_text(source)
    os.utime(path, ns=(mtime_s * 1_000_000_000, mtime_s * 1_000_000_000))
    return path


def make_hook(
    tmp_path: Path,
    name: str,
    stage: Stage = Stage.VIEWER_REQUEST,
    isolation: str = "process",
    timeout: float = 5.0,
) -> Hook:
    handler = load_handler(f"{name}:handler", tmp_path)
    return Hook(stage, handler, timeout, False, isolation)  # type: ignore[arg-type]


def request() -> EdgeRequest:
    return EdgeRequest("GET", "/", "", [("Host", "d111111abcdef8.cloudfront.net")], "192.0.2.1")


def context(timeout: float = 1.0) -> LambdaContext:
    return LambdaContext("us-east-1.t", 128, timeout, "stream")


# --- inline: the watchdog --------------------------------------------------------------------


def spin(event: object, ctx: object) -> None:
    while True:
        pass


def swallow(event: object, ctx: object) -> str:
    """A handler that catches every Exception still cannot stop the watchdog."""
    while True:
        try:
            threading.Event().wait(10)
        except Exception:
            pass


@pytest.mark.parametrize("fn", [spin, swallow])
def test_inline_watchdog_interrupts_a_stuck_handler(fn: object) -> None:
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(TimeoutError):
        call_inline(fn, {}, context(), 0.2)  # type: ignore[arg-type]
    assert signal.getsignal(signal.SIGALRM) is before  # restored
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # disarmed


def test_inline_returns_and_raises_like_the_handler() -> None:
    assert call_inline(lambda e, c: {"ok": e}, 1, context(), 1.0) == {"ok": 1}
    with pytest.raises(Raised) as info:
        call_inline(lambda e, c: 1 / 0, None, context(), 1.0)
    assert isinstance(info.value.original, ZeroDivisionError)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_inline_off_the_main_thread_checks_after_the_call() -> None:
    outcome: list[object] = []

    def run() -> None:
        try:
            call_inline(lambda e, c: threading.Event().wait(0.3), None, context(), 0.1)
        except TimeoutError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)


async def test_inline_timeout_through_the_runner(runner: HookRunner, tmp_path: Path) -> None:
    write(tmp_path, "loop.py", "def handler(event, context):\n    while True:\n        pass\n")
    hook = make_hook(tmp_path, "loop.py", isolation="inline", timeout=0.2)
    with pytest.raises(HandlerTimeout, match="Task timed out after 0.20 seconds"):
        await runner.run_request(hook, request(), META, RID)


# --- results as Lambda marshals them ---------------------------------------------------------


def test_marshal_is_lambdas_json() -> None:
    marshalled = marshal({"a": (1, 2), "d": decimal.Decimal("1.5"), 3: None, "big": 2**70})
    assert json.loads(marshalled) == {"a": [1, 2], "d": 1.5, "3": None, "big": 2**70}
    with pytest.raises(WorkerFailure) as info:
        marshal({"s": {1}})
    assert str(info.value) == (
        "Runtime.MarshalError: Unable to marshal response: Object of type set is not JSON "
        "serializable"
    )


async def test_process_result_crosses_as_json(runner: HookRunner, tmp_path: Path) -> None:
    write(
        tmp_path,
        "shape.py",
        "def handler(event, context):\n"
        "    request = event['Records'][0]['cf']['request']\n"
        "    request['headers']['x-t'] = ({'key': 'X-T', 'value': 'tuple'},)\n"
        "    return request\n",
    )
    got = await runner.run_request(make_hook(tmp_path, "shape.py"), request(), META, RID)
    assert isinstance(got, EdgeRequest) and header_value(got.headers, "x-t") == "tuple"


async def test_process_unmarshallable_result_is_execution_error(
    runner: HookRunner, tmp_path: Path
) -> None:
    write(tmp_path, "bad.py", "def handler(event, context):\n    return {'status': {200}}\n")
    with pytest.raises(HandlerExecutionError, match="Runtime.MarshalError"):
        await runner.run_request(make_hook(tmp_path, "bad.py"), request(), META, RID)


async def test_worker_print_goes_to_the_log_not_the_pipe(
    runner: HookRunner, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "chatty.py",
        "import sys\n"
        "def handler(event, context):\n"
        "    print('hello from the handler')\n"
        "    sys.stdout.write('more' * 1000)\n"
        "    return {'status': 204}\n",
    )
    got = await runner.run_request(make_hook(tmp_path, "chatty.py"), request(), META, RID)
    assert isinstance(got, EdgeResponse) and got.status == 204


# --- worker processes ------------------------------------------------------------------------


async def test_worker_that_cannot_load_reports_the_users_error(tmp_path: Path) -> None:
    write(tmp_path, "broken.py", "import edgeproxy_no_such_module\n")
    with pytest.raises(WorkerFailure) as info:
        await Worker.spawn(f"{tmp_path / 'broken.py'}:handler")
    assert str(info.value).startswith("Runtime.ImportModuleError: cannot load handler file")
    assert "No module named 'edgeproxy_no_such_module'" in info.value.traceback


async def test_cold_start_reports_init_duration_once(
    runner: HookRunner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "ok.py", "def handler(event, context):\n    return {'status': 200}\n")
    hook = make_hook(tmp_path, "ok.py")
    with caplog.at_level(logging.INFO, logger="edgeproxy.handler"):
        for _ in range(2):
            await runner.run_request(hook, request(), META, RID)
    reports = [r.getMessage() for r in caplog.records if r.getMessage().startswith("REPORT")]
    assert len(reports) == 2
    assert re.search(r"Max Memory Used: [1-9]\d* MB Init Duration: \d+\.\d\d ms$", reports[0])
    assert "Init Duration" not in reports[1]


async def test_concurrent_calls_get_workers_of_their_own(
    runner: HookRunner, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "pid.py",
        "import os, time\n"
        "def handler(event, context):\n"
        "    time.sleep(0.3)\n"
        "    return {'status': 200, 'body': str(os.getpid())}\n",
    )
    hook = make_hook(tmp_path, "pid.py")
    answers = await asyncio.gather(
        *(runner.run_request(hook, request(), META, RID) for _ in range(3))
    )
    pids = {a.body for a in answers if isinstance(a, EdgeResponse)}
    assert len(pids) == 3 and str(os.getpid()).encode() not in pids


async def test_viewer_stage_memory_is_bounded(runner: HookRunner, tmp_path: Path) -> None:
    write(
        tmp_path,
        "hungry.py",
        "KEEP = []\n"
        "def handler(event, context):\n"
        "    if event['Records'][0]['cf']['request']['uri'] == '/eat':\n"
        "        KEEP.append(bytearray(200 * 1024 * 1024))\n"
        "    return {'status': 200, 'body': str(len(KEEP))}\n",
    )
    hook = make_hook(tmp_path, "hungry.py")
    eat = request()
    eat.uri = "/eat"
    with pytest.raises(HandlerExecutionError, match="Runtime.OutOfMemory: max memory used"):
        await runner.run_request(hook, eat, META, RID)
    # That container is gone; the next call gets a fresh one, its globals empty.
    got = await runner.run_request(hook, request(), META, RID)
    assert isinstance(got, EdgeResponse) and got.body == b"0"
    # Origin stages have no bound: their memory is whatever the function was given.
    origin_hook = make_hook(tmp_path, "hungry.py", Stage.ORIGIN_REQUEST)
    eat.origin = None
    assert isinstance(await runner.run_request(origin_hook, eat, META, RID), EdgeResponse)


async def test_saved_handler_retires_its_workers(runner: HookRunner, tmp_path: Path) -> None:
    source = (
        "CALLS = 0\n"
        "def handler(event, context):\n"
        "    global CALLS\n"
        "    CALLS += 1\n"
        "    return {{'status': 200, 'body': '{}:' + str(CALLS)}}\n"
    )
    write(tmp_path, "live.py", source.format("one"), mtime_s=1)
    hook = make_hook(tmp_path, "live.py")
    bodies = [(await runner.run_request(hook, request(), META, RID)).body for _ in range(2)]
    assert bodies == [b"one:1", b"one:2"]  # a warm container keeps its globals
    write(tmp_path, "live.py", source.format("two"), mtime_s=2)
    got = await runner.run_request(hook, request(), META, RID)
    assert isinstance(got, EdgeResponse) and got.body == b"two:1"  # new code, globals reset


async def test_broken_save_answers_503_until_fixed(runner: HookRunner, tmp_path: Path) -> None:
    write(tmp_path, "live.py", "def handler(event, context):\n    return {'status': 200}\n", 1)
    for isolation in ("thread", "process"):
        hook = make_hook(tmp_path, "live.py", isolation=isolation)
        write(tmp_path, "live.py", "def handler(event, context)\n    return 1\n", 2)
        with pytest.raises(HandlerExecutionError) as info:
            await runner.run_request(hook, request(), META, RID)
        assert info.value.detail == (
            "Runtime.UserCodeSyntaxError: Syntax error in module 'live': expected ':' "
            "(live.py, line 1)"
        )
        write(tmp_path, "live.py", "def handler(event, context):\n    return {'status': 202}\n", 3)
        got = await runner.run_request(hook, request(), META, RID)
        assert isinstance(got, EdgeResponse) and got.status == 202
        write(tmp_path, "live.py", "def handler(event, context):\n    return {'status': 200}\n", 1)


# --- threads -----------------------------------------------------------------------------------


async def test_stuck_threads_do_not_use_up_the_pool() -> None:
    threads = HandlerThreads(max_threads=1)
    release = threading.Event()
    try:
        for _ in range(3):  # each call is given up at its timeout, its thread left stuck
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await threads.submit(release.wait)
        # One working thread at most, but the stuck ones no longer count: a call still runs.
        async with asyncio.timeout(5):
            assert await threads.submit(lambda: "answered") == "answered"
    finally:
        release.set()
        threads.close()


async def test_busy_threads_queue_calls_up_to_the_limit() -> None:
    threads = HandlerThreads(max_threads=2)
    gate = threading.Event()
    running: list[str] = []

    def call(name: str) -> str:
        running.append(name)
        gate.wait(5)
        return name

    futures = [threads.submit(lambda n=n: call(n)) for n in "abc"]
    for _ in range(500):
        if len(running) == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert sorted(running) == ["a", "b"]  # the third waits for a free thread
    gate.set()
    assert await asyncio.gather(*futures) == ["a", "b", "c"]
    threads.close()


EDGE_THAT_DIES = """
import asyncio, sys
from edgeproxy.functions.isolation import LambdaContext
from edgeproxy.functions.processes import Worker

async def main():
    worker = await Worker.spawn(sys.argv[1])
    print(worker.pid, flush=True)
    await worker.call({}, LambdaContext("f", 128, 60, "s"))

asyncio.run(main())
"""


def test_a_stuck_worker_dies_with_the_edge(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    write(tmp_path, "spin.py", "def handler(event, context):\n    while True:\n        pass\n")
    (tmp_path / "edge.py").write_text(EDGE_THAT_DIES)
    edge = subprocess.Popen(
        [sys.executable, str(tmp_path / "edge.py"), f"{tmp_path / 'spin.py'}:handler"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert edge.stdout is not None
        worker_pid = int(edge.stdout.readline())
        time.sleep(0.2)  # the call reached the handler's loop
        edge.kill()  # SIGKILL: the edge gets no chance to stop its workers
        edge.wait(10)
        for _ in range(500):
            if not _alive(worker_pid):
                return
            time.sleep(0.01)
        os.kill(worker_pid, signal.SIGKILL)
        raise AssertionError("the worker outlived the edge")
    finally:
        edge.kill()
        edge.wait(10)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for whoever adopted it to reap it counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_request_ids_are_random_version_4_uuids() -> None:
    # Lambda's request IDs (context.aws_request_id, the REPORT line's RequestId) are random
    # UUIDs: https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    ids = [request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for made in ids:
        parsed = uuid.UUID(made)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == made  # lower-case, dashed: uuid4()'s own string
