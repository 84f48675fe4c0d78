"""The pytest plugin (edgeproxy.testing, docs/testing.md) as a user's tests meet it: the
fixtures run_edge and fake_origin, the result that pairs a response with its exchange, and
invoke(); and that the fixture leaves no process or port behind (an inner pytest run)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from edgeproxy.testing import FakeOrigin, LocalEdge, Request, invoke

# Not imported from conftest: the inner pytest session below imports this module without the
# tests folder on its path.
HANDLERS = Path(__file__).parent / "data" / "handlers"


def handler(spec: str) -> str:
    """``"flow_mark.py:viewer_response"`` → an absolute spec under tests/data/handlers."""
    file, _, func = spec.partition(":")
    return f"{HANDLERS / file}:{func or 'handler'}"

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def config(**behavior: Any) -> dict[str, Any]:
    """A distribution in front of one origin (the fake origin replaces it)."""
    default = {
        "target_origin_id": "app",
        "viewer_protocol_policy": "allow-all",
        "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
        "cached_methods": ["GET", "HEAD"],
        "forwarded_values": {"query_string": False, "cookies": {"forward": "none"}},
        **behavior,
    }
    origin = {
        "origin_id": "app",
        "domain_name": "app.internal",
        "custom_origin_config": {
            "http_port": 80,
            "https_port": 443,
            "origin_protocol_policy": "http-only",
            "origin_ssl_protocols": ["TLSv1.2"],
        },
    }
    return {"distribution": {"origin": [origin], "default_cache_behavior": default}}


def associations(**stages: str) -> list[dict[str, str]]:
    return [
        {"event_type": stage.replace("_", "-"), "handler": handler(spec)}
        for stage, spec in stages.items()
    ]


FOUR_STAGES = associations(
    viewer_request="mark_request.py:viewer_request",
    origin_request="origin_request_mark.py:handler",
    origin_response="flow_mark.py:origin_response",
    viewer_response="flow_mark.py:viewer_response",
)


def test_a_response_comes_with_the_stages_that_ran_and_what_the_origin_received(
    run_edge: Any, fake_origin: FakeOrigin
) -> None:
    fake_origin.route("/page", headers={"Cache-Control": "max-age=60"}, body="the page")
    edge: LocalEdge = run_edge(config(lambda_function_association=FOUR_STAGES), origin=fake_origin)

    miss = edge.get("/page")
    assert (miss.status, miss.text, miss.x_cache) == (200, "the page", "Miss from cloudfront")
    assert miss.stages == ["viewer-request", "origin-request", "origin-response", "viewer-response"]
    assert miss.headers["X-Origin-Response"] == "ran"
    assert miss.headers["X-Viewer-Response"] == "ran"
    assert miss.origin_reached
    sent = miss.origin_request
    assert sent is not None and sent.method == "GET" and sent.path == "/page"
    assert sent.headers["X-Viewer-Request"] == "/page"  # what the functions changed
    assert sent.headers["X-Origin-Request-Saw"] == "/page"
    assert sent.headers["X-Amz-Cf-Id"] == miss.headers["X-Amz-Cf-Id"]
    assert miss.exchange is not None and miss.exchange.request_id == sent.request_id

    hit = edge.get("/page")
    assert hit.x_cache == "Hit from cloudfront"
    assert hit.stages == ["viewer-request", "viewer-response"]  # DG: not on cached objects
    assert not hit.origin_reached and hit.origin_request is None
    assert len(fake_origin.requests_for("/page")) == 1
    assert [e.x_cache for e in edge.exchanges()] == [miss.x_cache, hit.x_cache]


def test_a_response_generated_at_viewer_request_never_reaches_the_origin(
    run_edge: Any, fake_origin: FakeOrigin
) -> None:
    generating = associations(viewer_request="flow_generate.py:viewer_request")
    edge = run_edge(config(lambda_function_association=generating), origin=fake_origin)

    answer = edge.get("/anything")

    # DG lambda-generating-http-responses: a viewer-request response is not cached
    assert (answer.status, answer.text) == (200, "generated at viewer-request")
    assert answer.x_cache == "LambdaGeneratedResponse from cloudfront"
    assert answer.stages == ["viewer-request"]
    assert not answer.origin_reached and fake_origin.received == []


def test_the_fake_origin_answers_as_scripted_and_records_what_it_received(
    run_edge: Any, fake_origin: FakeOrigin
) -> None:
    fake_origin.route("/api/*", status=201, headers={"X-From": "api"}, body=b"created")
    fake_origin.route("/api/slow", body="late", delay=0.3)
    edge = run_edge(config(), origin=fake_origin)

    created = edge.post("/api/items?x=1", body='{"name": "a"}', headers={"X-Test": "1"})
    started = time.monotonic()
    slow = edge.get("/api/slow")
    waited = time.monotonic() - started
    unscripted = edge.get("/elsewhere")

    assert (created.status, created.headers["X-From"], created.text) == (201, "api", "created")
    posted = fake_origin.requests_for("/api/items")[0]
    assert (posted.method, posted.body) == ("POST", b'{"name": "a"}')
    assert posted.query_string == ""  # forwarded_values.query_string: false
    assert (slow.text, waited >= 0.3) == ("late", True)
    assert (unscripted.status, unscripted.text) == (404, "fake origin: no route for /elsewhere")
    assert [r.path for r in fake_origin.received] == ["/api/items", "/api/slow", "/elsewhere"]


def test_invoke_derives_the_cloudfront_headers_the_behavior_forwards_as_the_edge_does(
    run_edge: Any, fake_origin: FakeOrigin
) -> None:
    # CloudFront-Is-*-Viewer come from the User-Agent, CloudFront-Viewer-Country from the
    # address, and only when the behavior forwards them (DG adding-cloudfront-headers).
    forwarded = ["CloudFront-Is-Mobile-Viewer", "CloudFront-Viewer-Country"]
    document = config(
        forwarded_values={
            "query_string": False,
            "headers": forwarded,
            "cookies": {"forward": "none"},
        },
        lambda_function_association=associations(
            origin_request="reports_cloudfront_headers.py:handler"
        ),
    )
    document["edge"] = {"geo": {"default": {"country": "FR"}}}

    stage = "origin-request"
    phone = invoke(None, stage, Request("/x", headers={"User-Agent": IPHONE}), document)
    desktop = invoke(None, stage, Request("/y", headers={"User-Agent": DESKTOP}), document)
    through_edge = run_edge(document, origin=fake_origin).get("/x", headers={"User-Agent": IPHONE})

    assert phone.ok and phone.event_header("CloudFront-Is-Mobile-Viewer") == "true"
    assert desktop.event_header("CloudFront-Is-Mobile-Viewer") == "false"
    assert phone.header("x-saw") == "cloudfront-is-mobile-viewer=true;cloudfront-viewer-country=FR"
    assert through_edge.origin_request is not None
    assert through_edge.origin_request.headers["X-Saw"] == phone.header("x-saw")
    # At origin-request the Host is the origin's and the User-Agent CloudFront's (DG
    # RequestAndResponseBehaviorCustomOrigin), in invoke() as through the edge.
    assert phone.event_header("Host") == "app.internal"
    assert phone.event_header("User-Agent") == "Amazon CloudFront"


def test_invoke_at_viewer_request_shows_no_cloudfront_header_yet() -> None:
    # CloudFront adds them after viewer-request (DG lambda-cloudfront-trigger-events).
    document = config(
        forwarded_values={
            "query_string": False,
            "headers": ["CloudFront-Is-Mobile-Viewer"],
            "cookies": {"forward": "none"},
        }
    )
    seen = invoke(
        handler("reports_cloudfront_headers.py:handler"),
        "viewer-request",
        Request("/x", headers={"User-Agent": IPHONE}),
        document,
    )
    assert seen.ok and seen.header("x-saw") == "-"


def test_invoke_reports_what_the_viewer_would_get_from_a_failing_function() -> None:
    # a function that raises: 503 (DG lambda-edge-testing-debugging, "Lambda execution error")
    failed = invoke(handler("raises.py:handler"), "viewer-request", Request("/x"))
    broken = invoke(handler("adds_disallowed_header.py:handler"), "viewer-request")

    assert not failed.ok and failed.error is not None and failed.error.status == 503
    assert not broken.ok and broken.error is not None
    with pytest.raises(AssertionError, match="viewer-request function failed"):
        failed.raise_for_error()


# --- what the fixture leaves behind --------------------------------------------------------------


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        # SO_REUSEADDR: a closed connection's TIME_WAIT does not count, a listener does
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _descendants() -> list[int]:
    """Every process below this one (function runtimes are their spawner's children)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [os.getpid()]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


# The inner session: the first test runs the demo (Python functions in their runtime
# processes, Node.js functions, CloudFront Functions) through the fixtures; the second runs
# after their teardown, in the same process, and notes what is still there. (Checked from
# outside, the end of the inner process would hide a leak: its children die with it.)
INNER_TEST = """
import json
from pathlib import Path
from tests.test_testing_plugin import _alive, _descendants, _listening

SEEN = {}

def test_demo(run_edge, fake_origin):
    fake_origin.route("*", headers={"Cache-Control": "max-age=60"}, body="ok")
    edge = run_edge(CONFIG, origin=fake_origin)
    for path in ("/", "/members/a", "/node/query/a?B=1", "/node/b", "/cf/docs/"):
        assert edge.get(path).status == 200, path
    SEEN.update(ports=[*edge.ports.values(), fake_origin.port], pids=_descendants())

def test_after_teardown():
    left = {
        "ports": [p for p in SEEN["ports"] if _listening(p)],
        "pids": [p for p in SEEN["pids"] if _alive(p)],
    }
    Path("report.json").write_text(json.dumps({"seen": SEEN, "left": left}))
"""


def _plugin_args() -> list[str]:
    """The plugin by its entry point when edgeproxy is installed with it, else by name."""
    if entry_points(group="pytest11", name="edgeproxy"):
        return []
    return ["-p", "edgeproxy.testing.plugin"]


def test_the_fixture_leaves_no_process_or_port_behind(pytester: pytest.Pytester) -> None:
    demo = ROOT / "config" / "distribution.yaml"
    pytester.makepyfile(test_inner=f"CONFIG = {str(demo)!r}\n" + INNER_TEST)
    env_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    pytester._monkeypatch.setenv("PYTHONPATH", env_path)

    outcome = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider")

    outcome.assert_outcomes(passed=2)
    report = json.loads((pytester.path / "report.json").read_text())
    # the edge, its admin API and the demo's origin listened; function runtimes ran
    assert len(report["seen"]["ports"]) >= 4 and report["seen"]["pids"], report
    assert report["left"] == {"ports": [], "pids": []}


def test_importing_edgeproxy_needs_no_pytest() -> None:
    blocked = (
        "import sys\n"
        "class NoPytest:\n"
        "    def find_spec(self, name, *args):\n"
        "        if name.split('.')[0] in ('pytest', '_pytest'):\n"
        "            raise ImportError('pytest is a test dependency')\n"
        "sys.meta_path.insert(0, NoPytest())\n"
        "import edgeproxy.cli, edgeproxy.testing\n"
    )
    done = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    plugins = project["project"]["entry-points"]["pytest11"]
    assert plugins == {"edgeproxy": "edgeproxy.testing.plugin"}
