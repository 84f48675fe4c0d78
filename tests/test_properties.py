"""Property tests (hypothesis) for what must hold for any input:

- a request or response turned into its Lambda@Edge event and back, unchanged by the handler
  (but through JSON, as Lambda passes it), is exactly what went in: header case, repeated
  and interleaved names, the raw query string, the body, the origin;
- result validation never raises anything but ``HandlerValidationError``: for any JSON-like
  result that is tests/test_validation.py::test_validation_raises_only_its_own_error; here,
  for real events a handler mangled at random places;
- the config loader, given any text, any bytes or any nested YAML structure, raises nothing
  but ``ConfigError``.
"""

from __future__ import annotations

import copy
import json
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeproxy.config import tfschema
from edgeproxy.config.loading import load_config
from edgeproxy.errors import ConfigError, HandlerValidationError
from edgeproxy.functions.events import (
    EventMeta,
    request_event,
    request_stage_result,
    response_event,
    response_from_result,
    status_description,
)
from edgeproxy.functions.validation import validate_request_result, validate_response_result
from edgeproxy.messages import EdgeRequest, EdgeResponse, OriginTarget
from edgeproxy.stages import Stage

META = EventMeta("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE")
REQUEST_STAGES = [Stage.VIEWER_REQUEST, Stage.ORIGIN_REQUEST]
RESPONSE_STAGES = [Stage.ORIGIN_RESPONSE, Stage.VIEWER_RESPONSE]

# -- what a viewer can send (as our HTTP parser hands it over) ---------------------------------

TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# Names a viewer sends, in any case, including ones CloudFront treats specially
# (read-only, disallowed: hidden from the event and put back after it).
KNOWN_NAMES = [
    "Host",
    "Accept",
    "Accept-Encoding",
    "Cookie",
    "Content-Length",
    "Content-Type",
    "Transfer-Encoding",
    "Via",
    "If-None-Match",
    "User-Agent",
    "X-Amz-Cf-Id",
    "X-Forwarded-Proto",
    "X-Edge-Thing",
    "Authorization",
    "X-Custom",
]


def _any_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(
            c.upper() if u else c.lower() for c, u in zip(name, upper, strict=True)
        )
    )


header_names = st.sampled_from(KNOWN_NAMES).flatmap(_any_case) | st.text(
    TCHAR, min_size=1, max_size=12
)
# Field values: visible Latin-1, spaces and tabs inside, no CR, LF or NUL, no edge blanks.
header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=30,
).map(str.strip)
headers = st.lists(st.tuples(header_names, header_values), max_size=10)
uris = st.text(string.ascii_letters + string.digits + "-._~/%!$&'()*+,;=:@", max_size=40).map(
    lambda path: "/" + path
)
querystrings = st.text(string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@/?[]", max_size=40)
origins = st.builds(
    OriginTarget,
    domain_name=st.sampled_from(["example.org", "origin.example.com", "www.example.net"]),
    port=st.sampled_from([80, 443, 8080]),
    protocol=st.sampled_from(["http", "https"]),
    path=st.sampled_from(["", "/prefix", "/a/b"]),
    custom_headers=st.lists(
        st.tuples(st.sampled_from(["X-Origin-Secret", "X-Team"]), header_values), max_size=2
    ),
    read_timeout=st.sampled_from([1.0, 30.0, 60.0]),
    keepalive_timeout=st.sampled_from([1.0, 5.0]),
)
requests = st.builds(
    EdgeRequest,
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]),
    uri=uris,
    querystring=querystrings,
    headers=headers,
    client_ip=st.sampled_from(["203.0.113.9", "2001:db8::1", "127.0.0.1"]),
    body=st.binary(max_size=64),
    origin=origins,
)
statuses = st.integers(200, 599).filter(lambda s: s != 204)


def through_json(value: Any) -> Any:
    """What a handler gets and gives back: Lambda passes events as JSON."""
    return json.loads(json.dumps(value))


# -- round trips --------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(request=requests, stage=st.sampled_from(REQUEST_STAGES), include_body=st.booleans())
def test_request_event_and_back_is_lossless(request: EdgeRequest, stage: Stage, include_body: bool):
    original = copy.deepcopy(request)
    event = request_event(stage, request, META, "rid", include_body)
    result = through_json(event["Records"][0]["cf"]["request"])
    validate_request_result(stage, result, request, include_body)
    back = request_stage_result(stage, result, request, include_body)
    assert back == original
    assert request == original  # building the event changed nothing


@settings(max_examples=100, deadline=None)
@given(
    request=requests,
    status=statuses,
    response_headers=headers,
    body=st.binary(max_size=64),
    custom_reason=st.booleans(),
    stage=st.sampled_from(RESPONSE_STAGES),
)
def test_response_event_and_back_is_lossless(
    request: EdgeRequest,
    status: int,
    response_headers: list[tuple[str, str]],
    body: bytes,
    custom_reason: bool,
    stage: Stage,
):
    reason = "Fine Thanks" if custom_reason else status_description(status)
    response = EdgeResponse(status, response_headers, body, reason)
    original = copy.deepcopy(response)
    event = response_event(stage, request, response, META, "rid")
    result = through_json(event["Records"][0]["cf"]["response"])
    validate_response_result(stage, result, response)
    back = response_from_result(stage, result, response)
    assert back == original


def test_interleaved_repeats_keep_their_places():
    """A header repeated around another comes back where it was (the event groups them)."""
    request = EdgeRequest(
        "GET", "/", "", [("X-A", "1"), ("Host", "h"), ("x-a", "2")], "203.0.113.9"
    )
    event = request_event(Stage.VIEWER_REQUEST, request, META, "rid", False)
    result = through_json(event["Records"][0]["cf"]["request"])
    assert result["headers"]["x-a"] == [{"key": "X-A", "value": "1"}, {"key": "x-a", "value": "2"}]
    back = request_stage_result(Stage.VIEWER_REQUEST, result, request, False)
    assert back.headers == request.headers


# -- validation of mangled real events ------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (dict keys and list indexes)."""
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _places(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _places(inner, (*path, index))


def _mangled(result: Any, data: st.DataObject) -> Any:
    """``result`` with a few values replaced by random JSON or deleted."""
    for _ in range(data.draw(st.integers(1, 3))):
        places = [p for p in _places(result) if p]
        if not places:
            break
        place = data.draw(st.sampled_from(places))
        parent = result
        for step in place[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[place[-1]]
        else:
            parent[place[-1]] = data.draw(json_values)
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests, stage=st.sampled_from(list(Stage)), data=st.data())
def test_validation_of_mangled_events_raises_only_its_own_error(
    request: EdgeRequest, stage: Stage, data: st.DataObject
):
    response = EdgeResponse(200, [("Content-Type", "text/html"), ("ETag", '"x"')], b"body")
    if stage in REQUEST_STAGES:
        cf = request_event(stage, request, META, "rid", True)["Records"][0]["cf"]["request"]
    else:
        cf = response_event(stage, request, response, META, "rid")["Records"][0]["cf"]["response"]
    result = _mangled(through_json(cf), data)
    try:
        if stage in REQUEST_STAGES:
            validate_request_result(stage, result, request, True)
            request_stage_result(stage, result, request, True)
        else:
            validate_response_result(stage, result, response)
            response_from_result(stage, result, response)
    except HandlerValidationError:
        pass


# -- the config loader on malformed input --------------------------------------------------------

# Real key names, so random structures reach deep into validation, not only "unknown key".
VOCABULARY = sorted(
    {
        "distribution",
        "edge",
        "origin",
        "origin_id",
        "domain_name",
        "custom_origin_config",
        "http_port",
        "https_port",
        "origin_protocol_policy",
        "origin_read_timeout",
        "connection_attempts",
        "default_cache_behavior",
        "ordered_cache_behavior",
        "path_pattern",
        "target_origin_id",
        "viewer_protocol_policy",
        "allowed_methods",
        "cached_methods",
        "forwarded_values",
        "query_string",
        "cookies",
        "forward",
        "headers",
        "lambda_function_association",
        "event_type",
        "handler",
        "include_body",
        "custom_error_response",
        "error_code",
        "origin_group",
        "member",
        "failover_criteria",
        "status_codes",
        "restrictions",
        "geo_restriction",
        "listeners",
        "admin",
        "host",
        "port",
        "token",
        "resolve",
        "cache",
        "max_bytes",
        "max_object_bytes",
        "geo",
        "ranges",
        "cidr",
        "country",
        "functions",
        "demo_origin",
        "root",
        "cache_policy_id",
        "cache_policy",
        "min_ttl",
        "default_ttl",
        "max_ttl",
        *tfschema.DISTRIBUTION.keys,
    }
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.sampled_from(["http-only", "GET", "*", "/a/*", "127.0.0.1:8080", "viewer-request"])
    | st.text(max_size=12)
)
keys = st.sampled_from(VOCABULARY) | st.text(max_size=8) | st.integers(-3, 3) | st.booleans()
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=40,
)
documents = (
    st.fixed_dictionaries({}, optional={"distribution": structures, "edge": structures})
    | structures
)


def _loads_or_config_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "distribution.yaml"
        path.write_bytes(data)
        try:
            load_config(path)
        except ConfigError:
            pass


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300))
def test_config_loader_on_any_text_raises_only_config_error(text: str):
    _loads_or_config_error(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200))
def test_config_loader_on_any_bytes_raises_only_config_error(data: bytes):
    _loads_or_config_error(data)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents)
def test_config_loader_on_any_structure_raises_only_config_error(document: Any):
    _loads_or_config_error(yaml.safe_dump(document, allow_unicode=True).encode("utf-8"))


@pytest.mark.parametrize(
    "text",
    [
        "distribution: &a [*a]",  # a recursive alias
        "edge: !!python/object:os.system {}",  # an unsafe tag
        "distribution:\n  origin: [{origin_id: x, domain_name: y}]\n" * 2,  # a repeated key
        "\t- a",  # a tab where indentation is expected
        "edge: {resolve: {example.com: '1.2.3.4:99999'}}",
        "edge: {admin: {host: 0.0.0.0}}",
    ],
)
def test_config_loader_on_known_bad_yaml(text: str):
    with pytest.raises(ConfigError):
        _load_text_strictly(text)


def _load_text_strictly(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "distribution.yaml"
        path.write_text(text)
        load_config(path)
