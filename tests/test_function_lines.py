"""The functions' log lines written without ``logging``'s per-record machinery
(``log_setup.BufferedLines``, shared with the access log): when the buffer is written out
(timer, a full buffer, configured again, exit, before a runtime process is given a call) and
that the functions' log keeps each call's own output before its REPORT line."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RecordingOrigin, StartEdge, WriteConfig, distribution, handler

from edgeproxy import log_setup
from edgeproxy.config.loading import load_config
from edgeproxy.functions.output import function_lines
from edgeproxy.log_setup import FLUSH_LINES, FLUSH_S, BufferedLines, configure_logs

# logging.Formatter's "%(asctime)s %(name)s %(message)s", as the functions' file had it
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


@pytest.fixture
def reset_logs() -> Iterator[None]:
    """configure_logs changes process-wide logging: undone after the test."""
    try:
        yield
    finally:
        log_setup._uninstall()


def functions_config(write_config: WriteConfig, tmp_path: Path, origin_port: int = 8080) -> Path:
    document = distribution(origin_port)
    document["edge"]["logs"] = {
        "access": {"destination": "off"},
        "functions": str(tmp_path / "functions.log"),
    }
    return write_config(document)


def test_without_a_running_loop_a_line_is_written_at_once() -> None:
    stream = io.StringIO()
    BufferedLines(stream, owned=False, what="test")("one")
    assert stream.getvalue() == "one\n"


async def test_lines_wait_for_the_timer() -> None:
    stream = io.StringIO()
    lines = BufferedLines(stream, owned=False, what="test")
    lines("one")
    lines("two")
    assert stream.getvalue() == ""
    await asyncio.sleep(FLUSH_S * 3)
    assert stream.getvalue() == "one\ntwo\n"


async def test_a_full_buffer_is_written_at_once() -> None:
    stream = io.StringIO()
    lines = BufferedLines(stream, owned=False, what="test")
    for i in range(FLUSH_LINES - 1):
        lines(f"line {i}")
    assert stream.getvalue() == ""
    lines("the last")
    assert stream.getvalue().count("\n") == FLUSH_LINES
    assert stream.getvalue().endswith("line 254\nthe last\n")


async def test_configuring_again_writes_what_waits(
    write_config: WriteConfig, tmp_path: Path, reset_logs: None
) -> None:
    config = load_config(functions_config(write_config, tmp_path)).config
    configure_logs(config)
    lines = function_lines()
    assert lines is not None
    lines.line("edgeproxy.handler", "REPORT RequestId: first")
    # a record through logging (a traceback, a broken rule) joins the same buffer, in order
    logging.getLogger("edgeproxy.handler").error("after the first")
    assert (tmp_path / "functions.log").read_text() == ""
    configure_logs(config)
    written = (tmp_path / "functions.log").read_text().splitlines()
    assert len(written) == 2
    assert re.fullmatch(f"{STAMP} edgeproxy.handler REPORT RequestId: first", written[0])
    assert re.fullmatch(f"{STAMP} edgeproxy.handler after the first", written[1])


def test_lines_waiting_at_exit_are_written(write_config: WriteConfig, tmp_path: Path) -> None:
    config = functions_config(write_config, tmp_path)
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from edgeproxy.config.loading import load_config\n"
        "from edgeproxy.functions.output import function_lines\n"
        "from edgeproxy.log_setup import configure_logs\n"
        "configure_logs(load_config(Path(sys.argv[1])).config)\n"
        "async def main():\n"
        "    function_lines().line('edgeproxy.handler', 'REPORT RequestId: last')\n"
        "asyncio.run(main())\n"  # the loop ends before the timer: atexit writes the line
    )
    subprocess.run([sys.executable, "-c", script, str(config)], check=True, timeout=60)
    (line,) = (tmp_path / "functions.log").read_text().splitlines()
    assert re.fullmatch(f"{STAMP} edgeproxy.handler REPORT RequestId: last", line)


async def test_the_functions_log_keeps_each_calls_output_before_its_report(
    start_edge: StartEdge,
    origin: RecordingOrigin,
    write_config: WriteConfig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    reset_logs: None,
) -> None:
    # Lambda writes a call's own output (print, the runtime's logging handler) to its log
    # stream before the call's REPORT line
    # (https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html). A runtime process
    # writes its output straight to the file while the edge buffers REPORT lines: the buffer
    # is written before each call is handed to a runtime, so sequential calls never mix.
    caplog.set_level(logging.INFO, logger="edgeproxy.handler")  # REPORT lines are INFO
    document = distribution(
        origin.port,
        lambda_function_association=[
            {
                "event_type": "viewer-request",
                "handler": handler("prints_its_id.py"),
                "isolation": "process",
            }
        ],
    )
    document["edge"]["logs"] = {
        "access": {"destination": "off"},
        "functions": str(tmp_path / "functions.log"),
    }
    configure_logs(load_config(write_config(document)).config)
    viewer = await start_edge(document)
    for i in range(6):
        assert (await viewer.get(f"/page{i}")).status_code == 200
    log_setup._uninstall()  # writes out the last REPORT line
    seen = []
    for line in (tmp_path / "functions.log").read_text().splitlines():
        if match := re.search(r"printed by (\S+)", line):
            seen.append(("print", match[1]))
        elif match := re.search(r"\[WARNING\]\t\S+\t(\S+)\twarned by \1", line):
            seen.append(("logging", match[1]))
        elif match := re.search(r"edgeproxy.handler REPORT RequestId: (\S+) Duration", line):
            seen.append(("REPORT", match[1]))
    ids = list(dict.fromkeys(request_id for _, request_id in seen))
    assert len(ids) == 6
    assert seen == [(kind, i) for i in ids for kind in ("print", "logging", "REPORT")]
