"""Config loading: real YAML files, every problem reported with its key path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from edgeproxy.config import tfschema
from edgeproxy.config.behaviors import INCLUDE_BODY_TEXT, CacheBehavior
from edgeproxy.config.config_model import Config
from edgeproxy.config.distribution import Distribution, Origin
from edgeproxy.config.loading import LoadedConfig, load_config
from edgeproxy.config.overrides import ConfigOverrides
from edgeproxy.errors import ConfigError
from edgeproxy.stages import Stage

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "config" / "distribution.yaml"
CONFIGS = Path(__file__).resolve().parent / "data" / "configs"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:auth:3"


def minimal() -> dict[str, Any]:
    """The smallest config CloudFront (and we) accept."""
    return {
        "distribution": {
            "origin": [
                {
                    "origin_id": "web",
                    "domain_name": "web.example.com",
                    "custom_origin_config": {"origin_protocol_policy": "http-only"},
                }
            ],
            "default_cache_behavior": {
                "target_origin_id": "web",
                "viewer_protocol_policy": "allow-all",
                "allowed_methods": ["GET", "HEAD"],
                "cached_methods": ["GET", "HEAD"],
                "forwarded_values": {"query_string": False},
            },
        }
    }


def write(tmp_path: Path, document: Any, name: str = "edge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def load(tmp_path: Path, document: Any, **kwargs: Any) -> LoadedConfig:
    return load_config(write(tmp_path, document), **kwargs)


def problems(tmp_path: Path, document: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, document)
    return dict(caught.value.problems)


def behavior(document: dict[str, Any]) -> dict[str, Any]:
    return document["distribution"]["default_cache_behavior"]  # type: ignore[no-any-return]


def origin(document: dict[str, Any]) -> dict[str, Any]:
    return document["distribution"]["origin"][0]  # type: ignore[no-any-return]


# --- the demo and the fixtures ----------------------------------------------------------------


def test_demo_config_loads_cleanly() -> None:
    loaded = load_config(DEMO)
    config = loaded.config
    assert loaded.warnings == []
    assert config.base_dir == DEMO.parent
    assert [b.path_pattern for b in config.distribution.behaviors] == [
        "/www/*",
        "/members/*",
        "/secure/*",
        "/account/*",
        "/query/*",
        "/cf/*",
        "/go/*",
        "/node/www/*",
        "/node/members/*",
        "/node/secure/*",
        "/node/query/*",
        "/node/*",
        "*",
    ]
    default = config.distribution.default_cache_behavior
    hook = default.association(Stage.VIEWER_RESPONSE)
    assert hook is not None and hook.handler_spec == "handlers/security_headers.py:handler"
    assert config.edge.demo_origin is not None and config.edge.demo_origin.port == 8081
    assert config.edge.listeners.http_port == 8080
    assert config.path("demo-site") == DEMO.parent / "demo-site"


def test_terraform_json_form_loads(tmp_path: Path) -> None:
    loaded = load_config(CONFIGS / "terraform-json.yaml")
    dist = loaded.config.distribution
    assert dist.default_cache_behavior.target_origin_id == "app-group"
    assert dist.origin[0].custom_origin_config is not None
    assert dist.origin[0].custom_origin_config.origin_read_timeout == 60
    cookies = dist.default_cache_behavior.forwarded_values
    assert cookies is not None and cookies.cookies.whitelisted_names == ("session",)
    assert dist.restrictions.geo_restriction.locations == ("KP",)
    assert dist.origin_group[0].member[1].origin_id == "backup"
    assert dist.target_origin("app-group") is dist.origin_by_id("app")  # the primary
    assert dist.custom_error_response[0].error_caching_min_ttl == 30
    shield = dist.origin[0].origin_shield
    assert shield is not None and shield.origin_shield_region == "us-east-1"
    # One warning names every ignored key; empty blocks ([]) are not worth a mention. The
    # shield is read: without a regional tier to be it, it has a warning of its own.
    assert len(loaded.warnings) == 2
    assert "distribution.price_class" in loaded.warnings[0]
    assert "origin_shield" not in loaded.warnings[0]
    assert loaded.warnings[1].startswith("distribution.origin[0].origin_shield: no regional")
    assert "s3_origin_config" not in loaded.warnings[0]
    assert "logging_config" not in loaded.warnings[0]


def test_every_problem_reported_in_one_run() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(CONFIGS / "many-problems.yaml")
    found = dict(caught.value.problems)
    behavior_path = "distribution.default_cache_behavior"
    assert found == {
        "distribution.colour": "unknown key",
        "distribution.origin[0].connection_attempts": "must be between 1 and 3",
        "distribution.origin[0].custom_origin_config.origin_keepalive_timeout": (
            "must be between 1 and 120"
        ),
        f"{behavior_path}.target_origin_id": "names no origin or origin group (web)",
        f"{behavior_path}.viewer_protocol_policy": (
            "must be 'allow-all', 'redirect-to-https' or 'https-only'"
        ),
        f"{behavior_path}.min_ttl": "must be 0 or more",
        f"{behavior_path}.lambda_function_association[0].include_body": INCLUDE_BODY_TEXT,
        "edge.listeners.http_port": "must be between 0 and 65535",
        "edge.cache.max_object_bytes": "must not exceed max_bytes",
    }
    assert "distribution.colour: unknown key" in str(caught.value)


# --- the file itself --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert caught.value.problems[0][0] == "<file>"


@pytest.mark.parametrize("text", ["distribution: [unclosed", "", "- a list\n"])
def test_unreadable_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [p for p, _ in caught.value.problems] == ["<file>"]


def test_distribution_is_required(tmp_path: Path) -> None:
    assert problems(tmp_path, {"edge": {}}) == {"distribution": "required"}


def test_empty_edge_section_is_no_edge_section(tmp_path: Path) -> None:
    assert load(tmp_path, {**minimal(), "edge": None}).config.edge.pop == "LHR50-C1"


def test_duplicated_keys_are_reported(tmp_path: Path) -> None:
    text = yaml.safe_dump(minimal()) + "edge:\n  pop: AAA1\n  pop: BBB2\n"
    path = tmp_path / "edge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    line = text.splitlines().index("  pop: BBB2") + 1
    assert caught.value.problems == [("<file>", f"line {line}: key 'pop' given twice")]


# --- keys: implemented, known, unknown --------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (lambda d: d, "extra"),
        (lambda d: d["distribution"], "distribution.extra"),
        (origin, "distribution.origin[0].extra"),
        (lambda d: origin(d)["custom_origin_config"],
         "distribution.origin[0].custom_origin_config.extra"),
        (behavior, "distribution.default_cache_behavior.extra"),
        (lambda d: behavior(d)["forwarded_values"],
         "distribution.default_cache_behavior.forwarded_values.extra"),
        (lambda d: d.setdefault("edge", {}), "edge.extra"),
        (lambda d: d.setdefault("edge", {}).setdefault("listeners", {}), "edge.listeners.extra"),
    ],
)  # fmt: skip
def test_unknown_key_is_an_error_with_its_path(tmp_path: Path, where: Any, path: str) -> None:
    document = minimal()
    where(document)["extra"] = 1
    assert problems(tmp_path, document) == {path: "unknown key"}


def test_path_pattern_is_unknown_in_the_default_behavior(tmp_path: Path) -> None:
    document = minimal()
    behavior(document)["path_pattern"] = "/x/*"
    assert problems(tmp_path, document) == {
        "distribution.default_cache_behavior.path_pattern": "unknown key"
    }


def _unimplemented(block: tfschema.Block, model: type[pydantic.BaseModel]) -> list[str]:
    return sorted(block.keys - set(model.model_fields))


@pytest.mark.parametrize(
    ("where", "block", "model", "prefix"),
    [
        (lambda d: d["distribution"], tfschema.DISTRIBUTION, Distribution, "distribution"),
        (origin, tfschema.DISTRIBUTION.blocks["origin"], Origin, "distribution.origin[0]"),
        (
            behavior,
            tfschema.DISTRIBUTION.blocks["default_cache_behavior"],
            CacheBehavior,
            "distribution.default_cache_behavior",
        ),
    ],
)
def test_every_terraform_key_loads_with_one_warning(
    tmp_path: Path,
    where: Any,
    block: tfschema.Block,
    model: type[pydantic.BaseModel],
    prefix: str,
) -> None:
    document = minimal()
    keys = _unimplemented(block, model)
    assert keys, "each of these blocks has keys we do not implement"
    for key in keys:
        where(document)[key] = "some value"
    loaded = load(tmp_path, document)
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith("not implemented locally, ignored: ")
    for key in keys:
        assert f"{prefix}.{key}" in loaded.warnings[0]


# --- list or object: Terraform's two spellings of a block -------------------------------------


def test_single_blocks_may_be_one_item_lists(tmp_path: Path) -> None:
    document = minimal()
    origin(document)["custom_origin_config"] = [{"origin_protocol_policy": "https-only"}]
    behavior(document)["forwarded_values"] = [
        {"query_string": True, "cookies": [{"forward": "all"}]}
    ]
    document["distribution"]["default_cache_behavior"] = [behavior(document)]
    dist = load(tmp_path, document).config.distribution
    assert dist.origin[0].custom_origin_config is not None
    assert dist.origin[0].custom_origin_config.origin_protocol_policy == "https-only"
    forwarded = dist.default_cache_behavior.forwarded_values
    assert forwarded is not None and forwarded.cookies.forward == "all"


def test_repeated_blocks_may_be_one_object(tmp_path: Path) -> None:
    document = minimal()
    document["distribution"]["origin"] = origin(document)
    behavior(document)["lambda_function_association"] = {
        "event_type": "origin-request",
        "handler": "handlers/h.py:handler",
    }
    dist = load(tmp_path, document).config.distribution
    assert dist.origin[0].origin_id == "web"
    assert dist.default_cache_behavior.lambda_function_association[0].event_type == (
        Stage.ORIGIN_REQUEST
    )


def test_empty_list_means_an_absent_block(tmp_path: Path) -> None:
    document = minimal()
    origin(document)["custom_origin_config"] = []
    assert load(tmp_path, document).config.distribution.origin[0].custom_origin_config is None


def test_two_items_for_a_single_block_is_an_error(tmp_path: Path) -> None:
    document = minimal()
    cfg = {"origin_protocol_policy": "http-only"}
    origin(document)["custom_origin_config"] = [cfg, cfg]
    assert problems(tmp_path, document) == {
        "distribution.origin[0].custom_origin_config": "takes one block, not 2"
    }


# --- one check per rule, each naming its key path ---------------------------------------------

P_ORIGIN = "distribution.origin[0]"
P_CUSTOM = f"{P_ORIGIN}.custom_origin_config"
P_BEHAVIOR = "distribution.default_cache_behavior"
P_HOOK = f"{P_BEHAVIOR}.lambda_function_association[0]"
# Keys for _set: a digit indexes a list.
K_ORIGIN = "distribution.origin.0"
K_CUSTOM = f"{K_ORIGIN}.custom_origin_config"
K_BEHAVIOR = P_BEHAVIOR
K_HOOKS = f"{K_BEHAVIOR}.lambda_function_association"


def _set(path: str, value: Any) -> Any:
    """A change to minimal(): set a dotted path (digits index lists)."""

    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[last] = value

    return change


HOOK = {"event_type": "viewer-request", "handler": "handlers/h.py:handler"}
ORIGIN_REQUEST = {"event_type": "origin-request", "handler": "h.py:f"}
WEST_ARN = "arn:aws:lambda:eu-west-1:1:function:f:1"

RULES = [
    (f"{K_ORIGIN}.origin_id", "", f"{P_ORIGIN}.origin_id", "must not be empty"),
    (f"{K_ORIGIN}.domain_name", "https://x.com", f"{P_ORIGIN}.domain_name", "host name"),
    (f"{K_ORIGIN}.origin_path", "/a/", f"{P_ORIGIN}.origin_path", "must start with /"),
    (f"{K_ORIGIN}.origin_path", "a", f"{P_ORIGIN}.origin_path", "must start with /"),
    (f"{K_ORIGIN}.connection_timeout", 11, f"{P_ORIGIN}.connection_timeout", "between 1 and 10"),
    (f"{K_ORIGIN}.custom_header", [{"name": "X-Amz-Cf-Id", "value": "forged"}],
     f"{P_ORIGIN}.custom_header[0].name", "CloudFront cannot add"),
    (f"{K_ORIGIN}.custom_header", [{"name": "x-edge-location", "value": "x"}],
     f"{P_ORIGIN}.custom_header[0].name", "CloudFront cannot add"),
    (f"{K_ORIGIN}.custom_header", [{"name": "Via", "value": "x"}],
     f"{P_ORIGIN}.custom_header[0].name", "CloudFront cannot add"),
    (f"{K_CUSTOM}.http_port", 81,
     f"{P_CUSTOM}.http_port", "must be 80, 443 or between 1024 and 65535"),
    (f"{K_CUSTOM}.origin_read_timeout", 121, f"{P_CUSTOM}.origin_read_timeout", "1 and 120"),
    (f"{K_CUSTOM}.origin_ssl_protocols", ["TLSv1.3"],
     f"{P_CUSTOM}.origin_ssl_protocols[0]", "must be 'SSLv3'"),
    (f"{K_CUSTOM}.origin_protocol_policy", None,
     f"{P_CUSTOM}.origin_protocol_policy", "must be 'http-only'"),
    ("distribution.origin", [], "distribution.origin", "needs at least one origin"),
    (f"{K_BEHAVIOR}.target_origin_id", "api", f"{P_BEHAVIOR}.target_origin_id", "names no origin"),
    (f"{K_BEHAVIOR}.allowed_methods", ["GET", "POST"],
     f"{P_BEHAVIOR}.allowed_methods", "must be one of the sets GET,HEAD | GET,HEAD,OPTIONS"),
    (f"{K_BEHAVIOR}.cached_methods", ["GET", "HEAD", "OPTIONS"],
     f"{P_BEHAVIOR}.cached_methods", "must be a subset of allowed_methods"),
    (f"{K_BEHAVIOR}.cached_methods", ["GET"],
     f"{P_BEHAVIOR}.cached_methods", "must be one of the sets GET,HEAD | GET,HEAD,OPTIONS"),
    (f"{K_BEHAVIOR}.min_ttl", "soon", f"{P_BEHAVIOR}.min_ttl", "whole number"),
    (f"{K_BEHAVIOR}.max_ttl", 10, f"{P_BEHAVIOR}.max_ttl", "at least default_ttl"),
    (f"{K_BEHAVIOR}.compress", "maybe", f"{P_BEHAVIOR}.compress", "true or false"),
    (f"{K_BEHAVIOR}.cache_policy_id", "658327ea-f89d-4fab-a63d-7e88639e58f6",
     P_BEHAVIOR, "exactly one of cache_policy_id or forwarded_values"),
    (f"{K_BEHAVIOR}.cache_policy_id", "my-own-policy",
     f"{P_BEHAVIOR}.cache_policy_id", "must be a managed cache policy, by name or ID"),
    (f"{K_BEHAVIOR}.origin_request_policy_id", "AllViewer",
     f"{P_BEHAVIOR}.origin_request_policy_id", "needs cache_policy_id"),
    (f"{K_BEHAVIOR}.forwarded_values.cookies", {"forward": "whitelist"},
     f"{P_BEHAVIOR}.forwarded_values.cookies.whitelisted_names", "required when forward is"),
    (K_HOOKS, [HOOK, HOOK],
     f"{P_BEHAVIOR}.lambda_function_association[1].event_type", "one per event_type"),
    (K_HOOKS, [{"event_type": "viewer-request"}], P_HOOK, "exactly one of handler or lambda_arn"),
    (K_HOOKS, [{**HOOK, "event_type": "on-click"}],
     f"{P_HOOK}.event_type", "must be 'viewer-request'"),
    (K_HOOKS, [{**HOOK, "handler": "h.py"}], f"{P_HOOK}.handler", "path/file.py:function"),
    (K_HOOKS, [{"event_type": "viewer-request", "lambda_arn": ARN.removesuffix(":3")}],
     f"{P_HOOK}.lambda_arn", "numbered version"),
    (K_HOOKS, [{"event_type": "viewer-request", "lambda_arn": ARN}],
     f"{P_HOOK}.lambda_arn", "edge.functions"),
    (K_HOOKS, [{**HOOK, "event_type": "viewer-response", "include_body": True}],
     f"{P_HOOK}.include_body", INCLUDE_BODY_TEXT),
    (K_HOOKS, [{**HOOK, "event_type": "origin-response", "include_body": True}],
     f"{P_HOOK}.include_body", INCLUDE_BODY_TEXT),
    (K_HOOKS, [{**HOOK, "timeout": 6}], f"{P_HOOK}.timeout", "at most 5 seconds for viewer-"),
    (K_HOOKS, [{**ORIGIN_REQUEST, "timeout": 31}],
     f"{P_HOOK}.timeout", "at most 30 seconds for origin-request"),
    (K_HOOKS, [{**HOOK, "timeout": 0}], f"{P_HOOK}.timeout", "more than 0"),
    (K_HOOKS, [{**HOOK, "isolation": "fork"}], f"{P_HOOK}.isolation", "must be 'thread'"),
    ("distribution.ordered_cache_behavior", [{"target_origin_id": "web"}],
     "distribution.ordered_cache_behavior[0].viewer_protocol_policy", "required"),
    ("distribution.default_root_object", "/index.html",
     "distribution.default_root_object", "not start with /"),
    ("distribution.comment", "x" * 129, "distribution.comment", "at most 128 characters"),
    ("distribution.custom_error_response", [{"error_code": 418}],
     "distribution.custom_error_response[0].error_code", "must be one of 400"),
    ("distribution.custom_error_response", [{"error_code": 404, "response_code": 200}],
     "distribution.custom_error_response[0]", "both response_code and response_page_path"),
    ("distribution.restrictions.geo_restriction", {"restriction_type": "whitelist"},
     "distribution.restrictions.geo_restriction.locations", "list countries"),
    ("distribution.viewer_certificate",
     {"acm_certificate_arn": "arn:x", "cloudfront_default_certificate": True},
     "distribution.viewer_certificate", "exactly one of"),
    ("edge.resolve", {"api.example.com": "not-an-ip"},
     'edge.resolve["api.example.com"]', "IP address"),
    ("edge.geo.default", {"city": "Paris"}, "edge.geo.default.country", "required"),
    ("edge.geo.default", {"country": "fr"}, "edge.geo.default.country", "two-letter country"),
    ("edge.geo.ranges", [{"country": "FR", "cidr": "10.0.0.0/40"}],
     "edge.geo.ranges[0].cidr", "IP network"),
    ("edge.geo.default", {"country": "FR", "latitude": 91},
     "edge.geo.default.latitude", "between -90 and 90"),
    ("edge.handlers.isolation", "fiber", "edge.handlers.isolation", "must be 'thread'"),
    ("edge.admin.port", -1, "edge.admin.port", "between 0 and 65535"),
    ("edge.pop", "LHR 50", "edge.pop", "only letters, digits"),
    ("edge.functions", {ARN: "auth"}, f'edge.functions["{ARN}"]', "path/file.py:function"),
    ("edge.functions", {WEST_ARN: "h.py:f"}, f'edge.functions["{WEST_ARN}"]', "us-east-1"),
    ("edge.demo_origin", {"origin_id": "nope", "root": "."},
     "edge.demo_origin.origin_id", "names no origin"),
    ("edge.demo_origin", {"origin_id": "web", "root": "no-such-dir"},
     "edge.demo_origin.root", "no such folder"),
    ("edge.cache.max_bytes", 2.5, "edge.cache.max_bytes", "whole number"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "path", "message"), RULES)
def test_each_rule_names_its_key_path(
    tmp_path: Path, key: str, value: Any, path: str, message: str
) -> None:
    document = minimal()
    _set(key, value)(document)
    found = problems(tmp_path, document)
    assert path in found, found
    assert message in found[path]


def test_ordered_behaviors_need_a_unique_path_pattern(tmp_path: Path) -> None:
    document = minimal()
    ordered = copy.deepcopy(behavior(document))
    document["distribution"]["ordered_cache_behavior"] = [ordered]
    assert problems(tmp_path, document) == {
        "distribution.ordered_cache_behavior[0].path_pattern": "required"
    }
    document["distribution"]["ordered_cache_behavior"] = [
        {**ordered, "path_pattern": "/a/*"},
        {**ordered, "path_pattern": "/a/*"},
    ]
    assert problems(tmp_path, document) == {
        "distribution.ordered_cache_behavior[1].path_pattern": "'/a/*' appears twice"
    }


def test_origin_ids_are_unique(tmp_path: Path) -> None:
    document = minimal()
    document["distribution"]["origin"].append(copy.deepcopy(origin(document)))
    assert problems(tmp_path, document) == {
        "distribution.origin[1].origin_id": "'web' appears twice"
    }


def test_bad_path_pattern(tmp_path: Path) -> None:
    document = minimal()
    ordered = {**copy.deepcopy(behavior(document)), "path_pattern": "/a b/*"}
    document["distribution"]["ordered_cache_behavior"] = [ordered]
    found = problems(tmp_path, document)
    assert "distribution.ordered_cache_behavior[0].path_pattern" in found


# --- defaults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, (0, 86_400, 31_536_000)),
        ({"min_ttl": 100_000}, (100_000, 100_000, 31_536_000)),
        ({"min_ttl": 40_000_000}, (40_000_000, 40_000_000, 40_000_000)),
        ({"default_ttl": 40_000_000}, (0, 40_000_000, 40_000_000)),
        ({"default_ttl": 60}, (0, 60, 31_536_000)),
        ({"min_ttl": 0, "default_ttl": 0, "max_ttl": 0}, (0, 0, 0)),
        ({"default_ttl": None, "max_ttl": None}, (0, 86_400, 31_536_000)),
    ],
)
def test_ttl_defaults_follow_cloudfront(
    tmp_path: Path, given: dict[str, Any], expected: tuple[int, int, int]
) -> None:
    document = minimal()
    behavior(document).update(given)
    got = load(tmp_path, document).config.distribution.default_cache_behavior
    assert (got.min_ttl, got.default_ttl, got.max_ttl) == expected


def test_ttl_order_is_checked(tmp_path: Path) -> None:
    document = minimal()
    behavior(document).update({"min_ttl": 100, "default_ttl": 50})
    assert problems(tmp_path, document) == {
        "distribution.default_cache_behavior.default_ttl": "must be at least min_ttl"
    }


def test_model_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, minimal()).config
    first = config.distribution.origin[0]
    assert (first.connection_attempts, first.connection_timeout, first.origin_path) == (3, 10, "")
    custom = first.custom_origin_config
    assert custom is not None
    assert (custom.http_port, custom.https_port, custom.origin_read_timeout) == (80, 443, 30)
    assert custom.origin_keepalive_timeout == 5
    edge = config.edge
    assert (edge.pop, edge.distribution_id) == ("LHR50-C1", "EDFDVBD6EXAMPLE")
    assert edge.distribution_domain_name == "d111111abcdef8.cloudfront.net"
    assert (edge.cache.max_bytes, edge.cache.max_object_bytes) == (256 << 20, 64 << 20)
    assert edge.handlers.isolation == "process"
    assert edge.listeners.host == "127.0.0.1" and edge.demo_origin is None
    assert config.distribution.restrictions.geo_restriction.restriction_type == "none"
    assert config.distribution.viewer_certificate.cloudfront_default_certificate


def test_methods_in_any_order_are_stored_in_one_order(tmp_path: Path) -> None:
    document = minimal()
    behavior(document)["allowed_methods"] = ["OPTIONS", "HEAD", "GET"]
    behavior(document)["cached_methods"] = ["HEAD", "GET"]
    got = load(tmp_path, document).config.distribution.default_cache_behavior
    assert got.allowed_methods == ("GET", "HEAD", "OPTIONS")
    assert got.cached_methods == ("GET", "HEAD")


def test_managed_policies_by_name_are_kept_as_ids(tmp_path: Path) -> None:
    document = minimal()
    del behavior(document)["forwarded_values"]
    behavior(document)["cache_policy_id"] = "CachingOptimized"
    behavior(document)["origin_request_policy_id"] = "216adef6-5c7f-47e4-b989-5492eafa07d3"
    got = load(tmp_path, document).config.distribution.default_cache_behavior
    assert got.cache_policy_id == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    assert got.origin_request_policy_id == "216adef6-5c7f-47e4-b989-5492eafa07d3"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, minimal()).config
    with pytest.raises(pydantic.ValidationError):
        config.distribution.origin[0].domain_name = "elsewhere"  # type: ignore[misc]


# --- handlers ---------------------------------------------------------------------------------


def test_lambda_arn_maps_through_edge_functions(tmp_path: Path) -> None:
    document = minimal()
    behavior(document)["lambda_function_association"] = [
        {"event_type": "origin-request", "lambda_arn": ARN, "include_body": True},
        {"event_type": "viewer-request", "handler": "pkg.auth:check", "timeout": 2.5},
    ]
    document["edge"] = {"functions": {ARN: "handlers/auth.py:handler"}}
    loaded = load(tmp_path, document).config
    by_arn, by_handler = loaded.distribution.default_cache_behavior.lambda_function_association
    assert by_arn.handler_spec == "handlers/auth.py:handler"
    assert by_arn.lambda_arn == ARN and by_arn.include_body
    assert by_handler.handler_spec == "pkg.auth:check"
    assert by_handler.timeout == 2.5 and by_handler.isolation is None


def test_handler_and_lambda_arn_exclude_each_other(tmp_path: Path) -> None:
    document = minimal()
    behavior(document)["lambda_function_association"] = [{**HOOK, "lambda_arn": ARN}]
    document["edge"] = {"functions": {ARN: "handlers/auth.py:handler"}}
    assert problems(tmp_path, document) == {P_HOOK: "set exactly one of handler or lambda_arn"}


def test_handler_files_are_not_checked_here(tmp_path: Path) -> None:
    document = minimal()
    behavior(document)["lambda_function_association"] = [
        {"event_type": "viewer-request", "handler": "does/not/exist.py:handler"}
    ]
    hook = load(tmp_path, document).config.distribution.default_cache_behavior.association(
        Stage.VIEWER_REQUEST
    )
    assert hook is not None and hook.handler_spec == "does/not/exist.py:handler"


# --- warnings ---------------------------------------------------------------------------------


def test_local_origin_is_allowed_with_a_warning(tmp_path: Path) -> None:
    document = minimal()
    origin(document)["domain_name"] = "127.0.0.1"
    loaded = load(tmp_path, document)
    assert loaded.config.distribution.origin[0].domain_name == "127.0.0.1"
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith("distribution.origin[0].domain_name: 127.0.0.1")


def test_s3_origin_access_settings_are_kept(tmp_path: Path) -> None:
    document = minimal()
    oai = "origin-access-identity/cloudfront/E127EXAMPLE51Z"
    origin(document).pop("custom_origin_config")
    origin(document)["s3_origin_config"] = [{"origin_access_identity": oai}]
    origin(document)["origin_access_control_id"] = "E2QWRUHAPOMQZL"
    loaded = load(tmp_path, document)
    assert loaded.warnings == []
    web = loaded.config.distribution.origin[0]
    assert web.s3_origin_config is not None
    assert web.s3_origin_config.origin_access_identity == oai
    assert web.origin_access_control_id == "E2QWRUHAPOMQZL"


def test_an_origin_is_custom_or_s3_not_both(tmp_path: Path) -> None:
    document = minimal()
    origin(document)["s3_origin_config"] = {"origin_access_identity": ""}
    found = problems(tmp_path, document)["distribution.origin[0].s3_origin_config"]
    assert "custom_origin_config or s3_origin_config" in found


def test_demo_origin_is_local_without_a_warning(tmp_path: Path) -> None:
    document = minimal()
    origin(document)["domain_name"] = "localhost"
    document["edge"] = {"demo_origin": {"origin_id": "web", "root": "."}}
    assert load(tmp_path, document).warnings == []


# --- overrides --------------------------------------------------------------------------------


def test_listener_overrides() -> None:
    overrides = ConfigOverrides(host="0.0.0.0", http_port=0, https_port=8443)
    listeners = load_config(DEMO, overrides=overrides).config.edge.listeners
    assert (listeners.host, listeners.http_port, listeners.https_port) == ("0.0.0.0", 0, 8443)


def test_pop_and_regional_cache_overrides() -> None:
    overrides = ConfigOverrides(pop="FRA56-P2", regional_cache="redis://127.0.0.1:6390/2")
    edge = load_config(DEMO, overrides=overrides).config.edge
    assert edge.pop == "FRA56-P2"
    assert edge.regional_cache is not None
    assert edge.regional_cache.redis == "redis://127.0.0.1:6390/2"
    assert edge.regional_cache.timeout == 0.25  # the key's default


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        (ConfigOverrides(regional_cache="http://127.0.0.1:6379"), "--regional-cache"),
        (ConfigOverrides(pop="LHR\r\n50"), "--pop"),
    ],
)
def test_bad_pop_or_regional_cache_flags_are_refused_by_name(
    overrides: ConfigOverrides, flag: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(DEMO, overrides=overrides)
    assert flag in str(caught.value)


def test_origin_override_replaces_the_demo_origin() -> None:
    overrides = ConfigOverrides(origin_url="https://api.example.com:8443/base/")
    config = load_config(DEMO, overrides=overrides).config
    assert config.edge.demo_origin is None
    demo = config.distribution.origin_by_id("demo")
    assert (demo.domain_name, demo.origin_path) == ("api.example.com", "/base")
    assert demo.custom_origin_config is not None
    assert demo.custom_origin_config.origin_protocol_policy == "https-only"
    assert demo.custom_origin_config.https_port == 8443
    assert isinstance(config, Config)


def test_origin_override_without_demo_targets_the_default_origin(tmp_path: Path) -> None:
    document = minimal()
    document["distribution"]["origin"].insert(
        0, {"origin_id": "other", "domain_name": "other.example.com"}
    )
    overrides = ConfigOverrides(origin_url="http://localhost:3000")
    config = load(tmp_path, document, overrides=overrides).config
    web = config.distribution.origin_by_id("web")
    assert web.domain_name == "localhost" and web.origin_path == ""
    assert web.custom_origin_config is not None
    assert web.custom_origin_config.http_port == 3000
    assert web.custom_origin_config.origin_protocol_policy == "http-only"
    assert config.distribution.origin_by_id("other").domain_name == "other.example.com"


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        (ConfigOverrides(origin_url="ftp://x"), "--origin"),
        (ConfigOverrides(origin_url="localhost:3000"), "--origin"),
        (ConfigOverrides(origin_url="http://x:99999"), "--origin"),
        (ConfigOverrides(http_port=70000), "--port"),  # serve's flag is --port
        (ConfigOverrides(admin_port=-1), "--admin-port"),
        (ConfigOverrides(origin_port=65536), "--origin-port"),
        (ConfigOverrides(origin_port=9000, origin_url="http://127.0.0.1:3000"), "--origin-port"),
    ],
)
def test_bad_overrides_name_their_flag(overrides: ConfigOverrides, flag: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(DEMO, overrides=overrides)
    assert caught.value.problems[0][0] == flag
