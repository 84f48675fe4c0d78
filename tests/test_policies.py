"""Managed and inline cache / origin request / response headers policies: the tables, the
config rules with their key paths, and a real edge whose origin sees exactly what the two
request policies forward."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RecordingOrigin, StartEdge, distribution

from edgeproxy.cache.key import KeyPolicy, cache_key, origin_headers, origin_querystring
from edgeproxy.cache.ttl import TtlPolicy
from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.config.loading import load_config
from edgeproxy.config.policies import (
    MANAGED_CACHE_POLICIES,
    MANAGED_ORIGIN_REQUEST_POLICIES,
    MANAGED_RESPONSE_HEADERS_POLICIES,
    managed_id,
)
from edgeproxy.errors import ConfigError
from edgeproxy.messages import EdgeRequest
from edgeproxy.routes import Routes

B = "distribution.default_cache_behavior"

CACHE_POLICY: dict[str, Any] = {
    "name": "key-on-x-key",
    "min_ttl": 0,
    "default_ttl": 60,
    "max_ttl": 600,
    "parameters_in_cache_key_and_forwarded_to_origin": {
        "headers_config": {"header_behavior": "whitelist", "headers": {"items": ["X-Key"]}},
        "cookies_config": {"cookie_behavior": "whitelist", "cookies": {"items": ["c"]}},
        "query_strings_config": {
            "query_string_behavior": "whitelist",
            "query_strings": {"items": ["v"]},
        },
        "enable_accept_encoding_gzip": True,
    },
}
ORIGIN_REQUEST_POLICY: dict[str, Any] = {
    "name": "plus-x-extra",
    "headers_config": {"header_behavior": "whitelist", "headers": {"items": ["X-Extra"]}},
    "cookies_config": {"cookie_behavior": "none"},
    "query_strings_config": {"query_string_behavior": "all"},
}


def document(**behavior: Any) -> dict[str, Any]:
    doc = distribution(8000, **behavior)
    doc["distribution"]["default_cache_behavior"].pop("forwarded_values")
    return doc


def load(tmp_path: Path, doc: dict[str, Any]) -> CacheBehavior:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_config(path).config.distribution.default_cache_behavior


def problems(tmp_path: Path, doc: dict[str, Any]) -> dict[str, str]:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return dict(caught.value.problems)


# --- managed tables --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "table", "count"),
    [
        ("cache", MANAGED_CACHE_POLICIES, 7),
        ("origin request", MANAGED_ORIGIN_REQUEST_POLICIES, 7),
        ("response headers", MANAGED_RESPONSE_HEADERS_POLICIES, 5),
    ],
)
def test_every_managed_policy_by_id_name_and_terraform_name(
    kind: str, table: dict[str, Any], count: int
) -> None:
    assert len(table) == count
    for policy_id, policy in table.items():
        assert managed_id(kind, policy_id) == policy_id
        assert managed_id(kind, policy.name) == policy_id
        assert managed_id(kind, f"Managed-{policy.name}") == policy_id
    assert managed_id(kind, "not-a-policy") is None


def test_managed_values_from_the_reference() -> None:
    optimized = MANAGED_CACHE_POLICIES["658327ea-f89d-4fab-a63d-7e88639e58f6"]
    assert (optimized.min_ttl, optimized.default_ttl, optimized.max_ttl) == (1, 86400, 31536000)
    assert optimized.key.encodings == ("br", "gzip")
    media = MANAGED_CACHE_POLICIES["08627262-05a9-4f76-9ded-b50ca2e3a84f"]
    assert media.key.encodings == ("gzip",)
    assert media.key.query_strings_config.names == ("aws.manifestfilter", "start", "end", "m")
    tailor = MANAGED_ORIGIN_REQUEST_POLICIES["775133bc-15f2-49f9-abea-afb2e0bf67d2"]
    assert "X-Forwarded-For" in tailor.headers_config.names
    security = MANAGED_RESPONSE_HEADERS_POLICIES["67f7725c-6f97-4210-82d7-5512b31e9d03"]
    assert security.security_headers_config is not None
    assert security.security_headers_config.content_type_options is not None
    assert security.security_headers_config.content_type_options.override


# --- config: IDs and names -------------------------------------------------------------------


def test_names_are_kept_as_ids(tmp_path: Path) -> None:
    got = load(
        tmp_path,
        document(
            cache_policy_id="Managed-CachingOptimized",
            origin_request_policy_id="AllViewerExceptHostHeader",
            response_headers_policy_id="CORS-With-Preflight",
        ),
    )
    assert got.cache_policy_id == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    assert got.origin_request_policy_id == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert got.response_headers_policy_id == "5cc3b908-e619-4b99-88e5-2cf7f45965bd"
    policies = got.policies()
    assert policies.response_headers is not None
    assert policies.response_headers.name == "CORS-With-Preflight"


def test_unknown_response_headers_policy_is_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path, document(cache_policy_id="CachingDisabled", response_headers_policy_id="Mine")
    )
    assert "must be a managed response headers policy" in found[f"{B}.response_headers_policy_id"]


# --- config: inline blocks -------------------------------------------------------------------


def test_inline_policies_load_in_both_terraform_spellings(tmp_path: Path) -> None:
    listed = copy.deepcopy(CACHE_POLICY)
    listed["parameters_in_cache_key_and_forwarded_to_origin"] = [
        listed["parameters_in_cache_key_and_forwarded_to_origin"]
    ]
    got = load(
        tmp_path,
        document(cache_policy=[listed], origin_request_policy=ORIGIN_REQUEST_POLICY),
    )
    assert got.cache_policy is not None
    assert got.cache_policy.key.headers_config.names == ("X-Key",)
    policies = got.policies()
    assert policies.origin_request is not None
    assert TtlPolicy.from_behavior(got) == TtlPolicy(0, 60, 600)


def _with_key(**change: Any) -> dict[str, Any]:
    policy = copy.deepcopy(CACHE_POLICY)
    policy["parameters_in_cache_key_and_forwarded_to_origin"].update(change)
    return policy


P = f"{B}.cache_policy"
KEY = f"{P}.parameters_in_cache_key_and_forwarded_to_origin"
RULES = [
    (
        {"cache_policy": _with_key(headers_config={"header_behavior": "whitelist"})},
        f"{KEY}.headers_config.headers",
        "list headers items for whitelist",
    ),
    (
        {"cache_policy": _with_key(headers_config={"header_behavior": "allViewer"})},
        f"{KEY}.headers_config.header_behavior",
        "must be 'none' or 'whitelist'",
    ),
    (
        {
            "cache_policy": _with_key(
                query_strings_config={
                    "query_string_behavior": "whitelist",
                    "query_strings": {"items": [f"q{i}" for i in range(11)]},
                }
            )
        },
        f"{KEY}.query_strings_config.query_strings",
        "at most 10 items",
    ),
    (
        {"cache_policy": {**CACHE_POLICY, "min_ttl": 100}},
        f"{P}.default_ttl",
        "at least min_ttl",
    ),
    (
        {"cache_policy": {**CACHE_POLICY, "min_ttl": 0, "default_ttl": 0, "max_ttl": 0}},
        KEY,
        "caching is disabled",
    ),
    (
        {"cache_policy": {**CACHE_POLICY, "colour": "red"}},
        f"{P}.colour",
        "unknown key",
    ),
    (
        {"cache_policy": CACHE_POLICY, "cache_policy_id": "CachingOptimized"},
        f"{B}.cache_policy",
        "not both",
    ),
    (
        {
            "forwarded_values": {"query_string": False},
            "origin_request_policy": ORIGIN_REQUEST_POLICY,
        },
        f"{B}.origin_request_policy",
        "needs cache_policy_id",
    ),
    (
        {
            "cache_policy_id": "CachingOptimized",
            "origin_request_policy": {
                **ORIGIN_REQUEST_POLICY,
                "headers_config": {
                    "header_behavior": "allViewerAndWhitelistCloudFront",
                    "headers": {"items": ["X-Mine"]},
                },
            },
        },
        f"{B}.origin_request_policy.headers_config.headers",
        "only CloudFront-* headers",
    ),
    (
        {
            "cache_policy_id": "CachingOptimized",
            "response_headers_policy": {
                "name": "r",
                "remove_headers_config": {"items": [{"header": "X-Cache"}]},
            },
        },
        f"{B}.response_headers_policy.remove_headers_config.items[0].header",
        "does not let a policy remove X-Cache",
    ),
    (
        {
            "cache_policy_id": "CachingOptimized",
            "response_headers_policy": {
                "name": "r",
                "security_headers_config": {
                    "xss_protection": {
                        "protection": True,
                        "mode_block": True,
                        "report_uri": "https://r.example/",
                        "override": False,
                    }
                },
            },
        },
        f"{B}.response_headers_policy.security_headers_config.xss_protection.report_uri",
        "not both",
    ),
    (
        {
            "cache_policy_id": "CachingOptimized",
            "response_headers_policy": {
                "name": "r",
                "cors_config": {
                    "access_control_allow_credentials": False,
                    "access_control_allow_headers": {"items": []},
                    "access_control_allow_methods": {"items": ["GET", "FETCH"]},
                    "access_control_allow_origins": {"items": ["https://exa*mple.org"]},
                    "origin_override": False,
                },
            },
        },
        f"{B}.response_headers_policy.cors_config.access_control_allow_methods.items[1]",
        "must be one of GET",
    ),
    (
        {
            "cache_policy_id": "CachingOptimized",
            "response_headers_policy": {
                "name": "r",
                "server_timing_headers_config": {"enabled": True, "sampling_rate": 101},
            },
        },
        f"{B}.response_headers_policy.server_timing_headers_config.sampling_rate",
        "between 0 and 100",
    ),
]


@pytest.mark.parametrize(("behavior", "path", "message"), RULES)
def test_each_policy_rule_names_its_key_path(
    tmp_path: Path, behavior: dict[str, Any], path: str, message: str
) -> None:
    found = problems(tmp_path, document(**behavior))
    assert path in found, found
    assert message in found[path]


def test_cors_origin_wildcards(tmp_path: Path) -> None:
    cors = {
        "access_control_allow_credentials": False,
        "access_control_allow_headers": {"items": []},
        "access_control_allow_methods": {"items": ["GET"]},
        "origin_override": False,
    }
    for bad in ("https://exa*mple.org", "example.*", "https://test.*.example.org"):
        policy = {
            "name": "r",
            "cors_config": {**cors, "access_control_allow_origins": {"items": [bad]}},
        }
        found = problems(
            tmp_path, document(cache_policy_id="CachingOptimized", response_headers_policy=policy)
        )
        assert any("leftmost label" in m for m in found.values()), (bad, found)
    good = {"items": ["*", "https://*.example.org", "https://a.example.org:8443"]}
    policy = {"name": "r", "cors_config": {**cors, "access_control_allow_origins": good}}
    assert load(
        tmp_path, document(cache_policy_id="CachingOptimized", response_headers_policy=policy)
    )


# --- what the key holds and what the origin gets ---------------------------------------------


def test_key_holds_exactly_what_the_inline_policy_names(tmp_path: Path) -> None:
    got = load(
        tmp_path, document(cache_policy=CACHE_POLICY, origin_request_policy=ORIGIN_REQUEST_POLICY)
    )
    policy = KeyPolicy.from_behavior(got)
    headers = [
        ("X-Key", "k1"),
        ("X-Extra", "e"),
        ("X-Other", "o"),
        ("Cookie", "c=1; d=2"),
        ("Accept-Encoding", "gzip, br"),
    ]
    request = EdgeRequest("GET", "/p", "v=1&w=2", headers, "192.0.2.1")
    key = cache_key(policy, request, "d.example")
    assert (key.query, key.headers, key.cookies, key.encoding) == ("v=1", ("k1",), "c=1", "gzip")
    sent = origin_headers(policy, headers)
    names = [name.lower() for name, _ in sent]
    assert {"x-key", "x-extra", "cookie", "accept-encoding"} <= set(names)
    assert "x-other" not in names
    assert ("Cookie", "c=1") in sent
    assert origin_querystring(policy, "v=1&w=2") == "v=1&w=2"


async def test_origin_sees_exactly_what_the_policies_forward(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    doc = distribution(
        origin.port, cache_policy=CACHE_POLICY, origin_request_policy=ORIGIN_REQUEST_POLICY
    )
    doc["distribution"]["default_cache_behavior"].pop("forwarded_values")
    viewer = await start_edge(doc)
    headers = {"X-Key": "k1", "X-Extra": "e", "X-Other": "o", "Cookie": "d=2; c=1"}

    first = await viewer.get("/p?v=1&w=2", headers=headers)
    assert first.headers["x-cache"] == "Miss from cloudfront"
    seen = origin.requests_for("/p")[0]
    assert seen.headers["X-Key"] == "k1"
    assert seen.headers["X-Extra"] == "e"
    assert "X-Other" not in seen.headers
    assert seen.headers["Cookie"] == "c=1"
    assert seen.query_string == "v=1&w=2"

    # w is forwarded but not in the key; X-Extra likewise: still a hit
    hit = await viewer.get("/p?v=1&w=3", headers={**headers, "X-Extra": "other"})
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    # v, X-Key and cookie c are in the key: each change is a miss
    for changed in ({"X-Key": "k2"}, {"Cookie": "c=2"}):
        response = await viewer.get("/p?v=1&w=2", headers={**headers, **changed})
        assert response.headers["x-cache"] == "Miss from cloudfront"
    response = await viewer.get("/p?v=2", headers=headers)
    assert response.headers["x-cache"] == "Miss from cloudfront"
    assert len(origin.requests_for("/p")) == 4


def test_routes_carry_policies_and_cloudfront_headers_they_name(tmp_path: Path) -> None:
    doc = document(
        cache_policy_id="Amplify",
        origin_request_policy_id="AllViewerAndCloudFrontHeaders-2022-06",
        response_headers_policy_id="SecurityHeadersPolicy",
    )
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(doc))
    route = Routes(load_config(path).config).routes[0]
    assert "cloudfront-viewer-country" in route.cf_header_names
    assert "cloudfront-viewer-address" in route.cf_header_names
    assert "authorization" not in route.cf_header_names
    assert route.policies.cache is not None and route.policies.cache.name == "Amplify"
    assert route.response_headers is not None
    assert route.response_headers.name == "SecurityHeadersPolicy"
    assert not route.strip_set_cookie  # Amplify keys on all cookies
