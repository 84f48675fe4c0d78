"""The example handlers in config/handlers, run as Lambda@Edge would run them.

Each handler file is loaded from its path (no package import) and called with an event of
the shape CloudFront sends (reference 2.7). Besides what each example is for, every result
is checked against the rules CloudFront enforces on function output: no disallowed header
(reference 4.1), no read-only header added, changed or removed (4.2), well-formed header
entries (2.4, 4.3), a JSON object (2.8).
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from test_demo import demo_copy

from edgeproxy.config.loading import load_config
from edgeproxy.functions.hooks import Hook, HookRunner, build_hooks
from edgeproxy.runtime import running_edge
from edgeproxy.stages import Stage

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "distribution.yaml"
HANDLERS = ROOT / "config" / "handlers"

Event = dict[str, Any]
Handler = Callable[[Event, object], Any]

# Reference 4.1: never present in events, may never be added (lower-case; "*" = prefix).
DISALLOWED = {
    "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "trailer", "upgrade", "x-accel-buffering", "x-accel-charset",
    "x-accel-limit-rate", "x-accel-redirect", "x-amz-cf-*", "x-amzn-auth",
    "x-amzn-cf-billing", "x-amzn-cf-id", "x-amzn-cf-xff", "x-amzn-errortype",
    "x-amzn-fle-profile", "x-amzn-header-count", "x-amzn-header-order",
    "x-amzn-lambda-integration-tag", "x-amzn-requestid", "x-cache", "x-edge-*",
    "x-forwarded-proto", "x-real-ip",
}  # fmt: skip

# Reference 4.2: may not be added, changed or deleted, per stage.
READ_ONLY = {
    "viewer-request": {"content-length", "host", "transfer-encoding", "via"},
    "origin-request": {
        "accept-encoding", "content-length", "if-modified-since", "if-none-match",
        "if-range", "if-unmodified-since", "transfer-encoding", "via",
    },
    "origin-response": {"transfer-encoding", "via"},
    "viewer-response": {"warning", "via"},
}  # fmt: skip

# What each example is for: the stage it is written for (and wired to in the demo config).
EXAMPLE_STAGES = {
    "processed_by.py": "origin-response",
    "security_headers.py": "viewer-response",
    "www_redirect.py": "viewer-request",
    "country_block.py": "origin-request",
    "https_redirect.py": "origin-request",
    "normalize_query.py": "viewer-request",
}

# Each example's Node.js twin: its function folder under config/handlers (index.js, named
# handler: index.handler with code: handlers/<folder> in the demo config).
NODE_TWINS = {name: f"node/{name.removesuffix('.py')}" for name in EXAMPLE_STAGES}

VIA = "2.0 2afae0d44e2540f472c0635ab62c232b.cloudfront.net (CloudFront)"


# ---------------------------------------------------------------------------- helpers


def load_handler(file_name: str, function: str = "handler") -> Handler:
    """Import a handler file from its path, as a fresh module, and return the function."""
    path = HANDLERS / file_name
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = getattr(module, function)
    return handler


def cf_headers(*pairs: tuple[str, str]) -> dict[str, list[dict[str, str]]]:
    """Lambda@Edge header map: lower-case name -> [{key, value}, ...] in order (ref 2.4)."""
    headers: dict[str, list[dict[str, str]]] = {}
    for name, value in pairs:
        headers.setdefault(name.lower(), []).append({"key": name, "value": value})
    return headers


def make_event(
    stage: str,
    *,
    host: str = "d111111abcdef8.cloudfront.net",
    uri: str = "/",
    querystring: str = "",
    extra_request_headers: tuple[tuple[str, str], ...] = (),
    response_headers: tuple[tuple[str, str], ...] = (),
    status: str = "200",
) -> Event:
    """A CloudFront event for ``stage`` shaped like the examples in reference 2.7."""
    origin_side = stage.startswith("origin-")
    if origin_side:  # what CloudFront will send to the origin
        request_headers = [
            ("X-Forwarded-For", "203.0.113.178"),
            ("User-Agent", "Amazon CloudFront"),
            ("Via", VIA),
            ("Host", host),
            ("Accept-Encoding", "gzip"),
        ]
    else:  # the viewer's own headers
        request_headers = [("Host", host), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*")]
    request: dict[str, Any] = {
        "clientIp": "203.0.113.178",
        "headers": cf_headers(*request_headers, *extra_request_headers),
        "method": "GET",
        "querystring": querystring,
        "uri": uri,
    }
    if origin_side:
        request["origin"] = {
            "custom": {
                "customHeaders": {},
                "domainName": "localhost",
                "keepaliveTimeout": 5,
                "path": "",
                "port": 8081,
                "protocol": "http",
                "readTimeout": 30,
                "sslProtocols": ["TLSv1.2"],
            }
        }
    cf: dict[str, Any] = {
        "config": {
            "distributionDomainName": "d111111abcdef8.cloudfront.net",
            "distributionId": "EDFDVBD6EXAMPLE",
            "eventType": stage,
            "requestId": "ErBax5417C_eI5vdOk6h384wAGWb4VPsg1r-9O_qe2EoeGER8BwR-g==",
        },
        "request": request,
    }
    if stage.endswith("-response"):
        cf["response"] = {
            "status": status,
            "statusDescription": "OK",
            "headers": cf_headers(*response_headers),
        }
    return {"Records": [{"cf": cf}]}


def origin_response_headers() -> tuple[tuple[str, str], ...]:
    return (
        ("Server", "demo-origin"),
        ("Date", "Mon, 03 Mar 2025 10:00:00 GMT"),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Transfer-Encoding", "chunked"),
        ("Via", "1.1 upstream-proxy"),
    )


def viewer_response_headers() -> tuple[tuple[str, str], ...]:
    return (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "1234"),
        ("Age", "2402"),
        ("Via", VIA),
        ("Warning", '110 - "Response is Stale"'),
    )


def is_disallowed(name: str) -> bool:
    name = name.lower()
    return any(
        name.startswith(rule[:-1]) if rule.endswith("*") else name == rule for rule in DISALLOWED
    )


def run(file_name: str, event: Event, language: str = "python") -> tuple[Event, Any]:
    """Call the example (or its Node.js twin) with ``event``; return (a copy of the event as
    sent, the result)."""
    sent = copy.deepcopy(event)
    if language == "node":
        return sent, asyncio.run(invoke_twin(file_name, event))[0]
    result = load_handler(file_name)(event, None)
    return sent, result


def twin_hook(file_name: str) -> Hook:
    """The Node.js twin of ``file_name`` as the demo distribution wires it."""
    config = load_config(CONFIG).config
    code = f"handlers/{NODE_TWINS[file_name]}"
    for behavior in config.distribution.behaviors:
        for association in behavior.lambda_function_association:
            if association.handler_code == code:
                stage = Stage(association.event_type)
                return build_hooks([association], config.base_dir)[stage]
    raise AssertionError(f"{code} is not wired in {CONFIG}")


async def invoke_twin(file_name: str, *events: Event) -> list[Any]:
    """Call the Node.js twin once per event, in its runtime, as the edge calls it."""
    hook = twin_hook(file_name)
    runner = HookRunner(reload=False)
    try:
        return [await runner.invoke(hook, event) for event in events]
    finally:
        await runner.close()


@pytest.fixture(params=["python", "node"])
def language(request: pytest.FixtureRequest) -> str:
    """Each example runs as written (Python) and as its Node.js twin."""
    value: str = request.param
    return value


def is_generated_response(stage: str, result: dict[str, Any]) -> bool:
    return stage.endswith("-request") and "status" in result


def assert_headers_well_formed(headers: dict[str, Any]) -> None:
    for name, entries in headers.items():
        assert name == name.lower(), f"map key {name!r} must be lower-case"
        assert isinstance(entries, list) and entries, f"{name}: must be a non-empty list"
        for entry in entries:
            assert isinstance(entry["value"], str), f"{name}: value must be a string"
            assert "\r" not in entry["value"] and "\n" not in entry["value"]
            assert entry.get("key", name).lower() == name, f"{name}: key disagrees with map key"


def assert_follows_cloudfront_rules(stage: str, sent: Event, result: Any) -> None:
    """The checks CloudFront makes on a function's result (reference 2.8, 3, 4.1-4.3)."""
    assert isinstance(result, dict), "the result must be a JSON object"
    json.dumps(result)  # must serialise: Lambda returns JSON
    cf = sent["Records"][0]["cf"]
    if is_generated_response(stage, result):
        assert 200 <= int(result["status"]) <= 599
        headers = result.get("headers", {})
        assert not (set(headers) & READ_ONLY[stage]), "generated response sets a read-only name"
    else:
        before = cf["request"] if stage.endswith("-request") else cf["response"]
        headers = result["headers"]
        for name in READ_ONLY[stage]:
            assert headers.get(name) == before["headers"].get(name), f"read-only {name} changed"
        if stage.endswith("-response"):
            assert str(result["status"]) == before["status"], "a response function kept status"
    assert_headers_well_formed(headers)
    bad = [name for name in headers if is_disallowed(name)]
    assert not bad, f"disallowed headers added: {bad}"


# -------------------------------------------------------------------- the examples


def test_processed_by_marks_the_origin_response(language: str) -> None:
    event = make_event("origin-response", response_headers=origin_response_headers())
    sent, result = run("processed_by.py", event, language)

    assert result["headers"]["x-processed-by"] == [{"key": "X-Processed-By", "value": "edgeproxy"}]
    original = sent["Records"][0]["cf"]["response"]["headers"]
    assert {k: v for k, v in result["headers"].items() if k != "x-processed-by"} == original
    assert_follows_cloudfront_rules("origin-response", sent, result)


def test_security_headers_are_added_to_the_viewer_response(language: str) -> None:
    event = make_event(
        "viewer-response",
        response_headers=(*viewer_response_headers(), ("X-Frame-Options", "SAMEORIGIN")),
    )
    sent, result = run("security_headers.py", event, language)

    headers = result["headers"]
    assert headers["strict-transport-security"] == [
        {
            "key": "Strict-Transport-Security",
            "value": "max-age=63072000; includeSubDomains; preload",
        }
    ]
    assert headers["x-content-type-options"] == [
        {"key": "X-Content-Type-Options", "value": "nosniff"}
    ]
    # the origin's SAMEORIGIN is replaced, not doubled
    assert headers["x-frame-options"] == [{"key": "X-Frame-Options", "value": "DENY"}]
    assert headers["referrer-policy"] == [{"key": "Referrer-Policy", "value": "same-origin"}]
    assert (
        headers["content-type"] == sent["Records"][0]["cf"]["response"]["headers"]["content-type"]
    )
    assert_follows_cloudfront_rules("viewer-response", sent, result)


def test_www_redirect_sends_a_bare_host_to_www_keeping_the_query(language: str) -> None:
    event = make_event("viewer-request", host="example.com", uri="/www/a b", querystring="x=1&y=2")
    sent, result = run("www_redirect.py", event, language)

    assert result["status"] == "301"
    assert result["statusDescription"] == "Moved Permanently"
    assert result["headers"]["location"] == [
        {"key": "Location", "value": "https://www.example.com/www/a b?x=1&y=2"}
    ]
    assert result["headers"]["cache-control"][0]["key"] == "Cache-Control"
    assert_follows_cloudfront_rules("viewer-request", sent, result)


def test_www_redirect_without_a_query_has_no_question_mark(language: str) -> None:
    _, result = run("www_redirect.py", make_event("viewer-request", host="example.com"), language)

    assert result["headers"]["location"][0]["value"] == "https://www.example.com/"


@pytest.mark.parametrize("host", ["www.example.com", "WWW.Example.com"])
def test_www_redirect_lets_a_www_host_through_unchanged(host: str, language: str) -> None:
    event = make_event("viewer-request", host=host, uri="/www/", querystring="x=1")
    sent, result = run("www_redirect.py", event, language)

    assert result == sent["Records"][0]["cf"]["request"]
    assert_follows_cloudfront_rules("viewer-request", sent, result)


def country_event(country: str | None) -> Event:
    extra = (("CloudFront-Viewer-Country", country),) if country else ()
    return make_event("origin-request", host="localhost", uri="/members/",
                      extra_request_headers=extra)  # fmt: skip


@pytest.mark.parametrize("country", ["DE", "KP"])
def test_country_block_answers_403_for_a_blocked_country(country: str, language: str) -> None:
    sent, result = run("country_block.py", country_event(country), language)

    assert result["status"] == "403"
    assert result["statusDescription"] == "Forbidden"
    assert result["headers"]["content-type"] == [
        {"key": "Content-Type", "value": "text/html; charset=utf-8"}
    ]
    assert "<h1>403 Forbidden</h1>" in result["body"]
    assert f"({country})" in result["body"]
    assert len(result["body"].encode()) < 1024  # small, far below the 1 MB origin-event limit
    assert_follows_cloudfront_rules("origin-request", sent, result)


@pytest.mark.parametrize("country", ["US", "GB", None])
def test_country_block_passes_other_viewers_through(country: str | None, language: str) -> None:
    sent, result = run("country_block.py", country_event(country), language)

    assert result == sent["Records"][0]["cf"]["request"]
    assert_follows_cloudfront_rules("origin-request", sent, result)


def proto_event(proto: str | None, querystring: str = "") -> Event:
    extra = (("CloudFront-Forwarded-Proto", proto),) if proto else ()
    return make_event("origin-request", host="www.example.com", uri="/secure/",
                      querystring=querystring, extra_request_headers=extra)  # fmt: skip


def test_https_redirect_redirects_http_viewers(language: str) -> None:
    sent, result = run("https_redirect.py", proto_event("http"), language)

    assert result["status"] == "301"
    assert result["headers"]["location"] == [
        {"key": "Location", "value": "https://www.example.com/secure/"}
    ]
    assert_follows_cloudfront_rules("origin-request", sent, result)


def test_https_redirect_keeps_a_forwarded_query_string(language: str) -> None:
    _, result = run("https_redirect.py", proto_event("http", querystring="page=2"), language)

    assert result["headers"]["location"][0]["value"] == "https://www.example.com/secure/?page=2"


@pytest.mark.parametrize("proto", ["https", None])
def test_https_redirect_passes_https_viewers_through(proto: str | None, language: str) -> None:
    sent, result = run("https_redirect.py", proto_event(proto), language)

    assert result == sent["Records"][0]["cf"]["request"]
    assert_follows_cloudfront_rules("origin-request", sent, result)


def query_event(querystring: str) -> Event:
    return make_event("viewer-request", uri="/query/", querystring=querystring)


@pytest.mark.parametrize(
    ("querystring", "normalised"),
    [
        ("B=2&a=1", "a=1&b=2"),
        ("a=1&b=2", "a=1&b=2"),
        ("Size=XL&color=Red&color=blue", "color=red&color=blue&size=xl"),
        ("q=two%20words&empty=", "empty=&q=two%20words"),
        ("", ""),
    ],
)
def test_normalize_query_sorts_and_lower_cases_the_query(
    querystring: str, normalised: str, language: str
) -> None:
    # The Developer Guide's "Normalizing query string parameters to improve the cache hit
    # ratio": names and values lower-cased, names in alphabetical order.
    # https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-examples.html
    sent, result = run("normalize_query.py", query_event(querystring), language)

    assert result["querystring"] == normalised
    before = sent["Records"][0]["cf"]["request"]
    assert {k: v for k, v in result.items() if k != "querystring"} == {
        k: v for k, v in before.items() if k != "querystring"
    }
    assert_follows_cloudfront_rules("viewer-request", sent, result)


def warm_event(stage: str) -> Event:
    return make_event(stage, host="example.com", response_headers=origin_response_headers(),
                      querystring="B=2&a=1",
                      extra_request_headers=(("CloudFront-Viewer-Country", "DE"),
                                             ("CloudFront-Forwarded-Proto", "http")))  # fmt: skip


@pytest.mark.parametrize("file_name", sorted(EXAMPLE_STAGES))
def test_handlers_keep_working_when_called_again(file_name: str, language: str) -> None:
    """Module globals persist between calls (a warm container): a second call on the same
    module must give the same answer as the first."""
    stage = EXAMPLE_STAGES[file_name]
    if language == "node":
        results = asyncio.run(invoke_twin(file_name, warm_event(stage), warm_event(stage)))
    else:
        handler = load_handler(file_name)
        results = [handler(warm_event(stage), None) for _ in range(2)]
    assert results[0] == results[1]
    assert isinstance(results[0], dict)


# ------------------------------------------------------------- wiring in the config


def associations(node: Any) -> Iterator[dict[str, Any]]:
    """Every lambda_function_association entry anywhere under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "lambda_function_association":
                yield from value
            else:
                yield from associations(value)
    elif isinstance(node, list):
        for item in node:
            yield from associations(item)


def demo_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return loaded


def configured_handlers() -> list[tuple[str, str]]:
    """(event_type, handler spec) for every association in the demo config that names a
    file (the Python examples)."""
    return [
        (a["event_type"], a["handler"])
        for a in associations(demo_config()["distribution"])
        if "code" not in a
    ]


def configured_twins() -> list[tuple[str, str, str]]:
    """(event_type, handler, code) for every association in Lambda's form (the Node.js
    twins)."""
    return [
        (a["event_type"], a["handler"], a["code"])
        for a in associations(demo_config()["distribution"])
        if "code" in a
    ]


def test_the_demo_config_wires_handlers() -> None:
    assert len(configured_handlers()) >= len(EXAMPLE_STAGES)
    assert len(configured_twins()) >= len(NODE_TWINS)


@pytest.mark.parametrize("event_type, spec", configured_handlers())
def test_every_configured_handler_exists_and_takes_event_and_context(
    event_type: str, spec: str
) -> None:
    file_part, _, function = spec.rpartition(":")
    path = CONFIG.parent / file_part
    assert path.is_file(), f"{spec}: no file {path}"
    handler = load_handler(path.name, function)
    assert callable(handler)
    assert list(inspect.signature(handler).parameters) == ["event", "context"]
    assert EXAMPLE_STAGES[path.name] == event_type, f"{spec} is written for another stage"


@pytest.mark.parametrize("event_type, handler, code", configured_twins())
def test_every_configured_twin_is_an_index_js_written_for_its_stage(
    event_type: str, handler: str, code: str
) -> None:
    assert handler == "index.handler"  # as Lambda's console writes it
    assert (CONFIG.parent / code / "index.js").is_file()
    python_twin = {f"handlers/{folder}": name for name, folder in NODE_TWINS.items()}[code]
    assert EXAMPLE_STAGES[python_twin] == event_type, f"{code} is written for another stage"


def test_every_example_handler_is_wired_in_the_demo_config() -> None:
    wired = {Path(spec.rpartition(":")[0]).name for _, spec in configured_handlers()}
    on_disk = {path.name for path in HANDLERS.glob("*.py")}
    assert on_disk == set(EXAMPLE_STAGES)
    assert wired == on_disk
    twins_on_disk = {f"node/{path.parent.name}" for path in HANDLERS.glob("node/*/index.js")}
    assert twins_on_disk == set(NODE_TWINS.values())
    assert {code.removeprefix("handlers/") for _, _, code in configured_twins()} == twins_on_disk


# ------------------------------------------------------------- through the demo distribution


@pytest.mark.parametrize("prefix", ["", "/node"])
async def test_each_example_and_its_twin_answer_through_the_demo(
    prefix: str, tmp_path: Path
) -> None:
    """The demo serves each example on its path and each Node.js twin on /node/<path>, with
    the same answers."""
    config = load_config(demo_copy(tmp_path)).config
    async with running_edge(config, use_dns=False) as demo, httpx.AsyncClient() as client:
        page = await client.get(demo.url(f"{prefix}/"))
        assert page.status_code == 200
        assert page.headers["x-processed-by"] == "edgeproxy"
        assert page.headers["x-frame-options"] == "DENY"

        www = await client.get(demo.url(f"{prefix}/www/?x=1"), headers={"Host": "example.com"})
        assert www.status_code == 301
        assert www.headers["location"] == f"https://www.example.com{prefix}/www/?x=1"

        members = f"{prefix}/members/"
        blocked = await client.get(demo.url(members), headers={"CloudFront-Viewer-Country": "DE"})
        assert blocked.status_code == 403 and "(DE)" in blocked.text
        assert (await client.get(demo.url(members))).status_code == 200

        secure = await client.get(demo.url(f"{prefix}/secure/"))
        assert secure.status_code == 301
        assert secure.headers["location"].startswith("https://")

        first = await client.get(demo.url(f"{prefix}/query/?B=2&a=1"))
        second = await client.get(demo.url(f"{prefix}/query/?a=1&b=2"))
        assert first.status_code == second.status_code == 200
        assert first.headers["x-cache"] == "Miss from cloudfront"
        assert second.headers["x-cache"] == "Hit from cloudfront"  # one key once normalised
