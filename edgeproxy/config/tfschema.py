"""The key names of Terraform's ``aws_cloudfront_distribution`` resource, as data.

The ``distribution:`` section of a config is that resource in Terraform's JSON form. This
table lists every argument and nested block the AWS provider accepts (provider 6.x, with
``grpc_config``, ``vpc_origin_config``, ``response_completion_timeout``, ``ip_address_type``)
plus the attributes Terraform computes, so a pasted ``terraform show -json`` still loads.

``prepare`` walks a document against this table and the config models, block by block:

* a key the models have            -> implemented: kept
* a key only this table has        -> known but not implemented: dropped, noted in ``ignored``
* a key neither has                -> unknown: a problem naming the key path

and turns Terraform's two spellings of a block (``{...}`` or ``[{...}]``; ``[]`` for none)
into the one shape the models take. ``local`` lists the keys edgeproxy adds to a block where
Terraform has no equivalent (a ``handler`` file stands where Terraform has ``lambda_arn``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True, slots=True)
class Block:
    """One block: its attribute names, its nested blocks, and how it nests in its parent."""

    attrs: frozenset[str]
    blocks: Mapping[str, Block] = field(default_factory=lambda: MappingProxyType({}))
    repeated: bool = False  # Terraform nesting mode list/set of many (origin) vs MaxItems 1
    local: frozenset[str] = frozenset()  # edgeproxy-only keys (see module docstring)

    @property
    def keys(self) -> frozenset[str]:
        """Every key Terraform knows in this block."""
        return self.attrs | frozenset(self.blocks)

    def child(self, name: str) -> Block | None:
        return self.blocks.get(name)


def _block(attrs: str, *, repeated: bool = False, local: str = "", **blocks: Block) -> Block:
    """A block from space-separated attribute names; keyword arguments are nested blocks."""
    return Block(
        attrs=frozenset(attrs.split()),
        blocks=MappingProxyType(dict(blocks)),
        repeated=repeated,
        local=frozenset(local.split()),
    )


def _items() -> Block:
    return _block("items")


def _key_configs(attrs: str) -> Block:
    """A block with ``attrs`` plus cookies_config, headers_config and query_strings_config,
    which both key policies share."""
    configs = {
        "cookies_config": _block("cookie_behavior", cookies=_items()),
        "headers_config": _block("header_behavior", headers=_items()),
        "query_strings_config": _block("query_string_behavior", query_strings=_items()),
    }
    return Block(attrs=frozenset(attrs.split()), blocks=MappingProxyType(configs))


# The three policy resources; ``arn etag id`` are computed (terraform show -json has them).
CACHE_POLICY: Block = _block(
    "arn comment default_ttl etag id max_ttl min_ttl name",
    parameters_in_cache_key_and_forwarded_to_origin=_key_configs(
        "enable_accept_encoding_brotli enable_accept_encoding_gzip"
    ),
)
ORIGIN_REQUEST_POLICY: Block = _key_configs("arn comment etag id name")
RESPONSE_HEADERS_POLICY: Block = _block(
    "arn comment etag id name",
    cors_config=_block(
        "access_control_allow_credentials access_control_max_age_sec origin_override",
        access_control_allow_headers=_items(),
        access_control_allow_methods=_items(),
        access_control_allow_origins=_items(),
        access_control_expose_headers=_items(),
    ),
    custom_headers_config=_block("", items=_block("header override value", repeated=True)),
    remove_headers_config=_block("", items=_block("header", repeated=True)),
    security_headers_config=_block(
        "",
        content_security_policy=_block("content_security_policy override"),
        content_type_options=_block("override"),
        frame_options=_block("frame_option override"),
        referrer_policy=_block("override referrer_policy"),
        strict_transport_security=_block(
            "access_control_max_age_sec include_subdomains override preload"
        ),
        xss_protection=_block("mode_block override protection report_uri"),
    ),
    server_timing_headers_config=_block("enabled sampling_rate"),
)


def _cache_behavior(*, ordered: bool) -> Block:
    """default_cache_behavior and ordered_cache_behavior differ only by path_pattern.

    ``cache_policy``, ``origin_request_policy`` and ``response_headers_policy`` are local:
    inline policy blocks where Terraform has only the ``*_id`` arguments."""
    return _block(
        "allowed_methods cached_methods cache_policy_id compress default_ttl"
        " field_level_encryption_id max_ttl min_ttl origin_request_policy_id"
        " realtime_log_config_arn response_headers_policy_id smooth_streaming"
        " target_origin_id trusted_key_groups trusted_signers viewer_protocol_policy"
        + (" path_pattern" if ordered else ""),
        repeated=ordered,
        forwarded_values=_block(
            "headers query_string query_string_cache_keys",
            cookies=_block("forward whitelisted_names"),
        ),
        lambda_function_association=_block(
            "event_type lambda_arn include_body",
            repeated=True,
            local="handler code timeout isolation runtime",
        ),
        function_association=_block("event_type function_arn", repeated=True),
        grpc_config=_block("enabled"),
        local="cache_policy origin_request_policy response_headers_policy",
        cache_policy=CACHE_POLICY,
        origin_request_policy=ORIGIN_REQUEST_POLICY,
        response_headers_policy=RESPONSE_HEADERS_POLICY,
    )


_ORIGIN = _block(
    "connection_attempts connection_timeout domain_name origin_access_control_id origin_id"
    " origin_path response_completion_timeout",
    repeated=True,
    custom_header=_block("name value", repeated=True),
    custom_origin_config=_block(
        "http_port https_port ip_address_type origin_keepalive_timeout origin_protocol_policy"
        " origin_read_timeout origin_ssl_protocols"
    ),
    origin_shield=_block("enabled origin_shield_region"),
    s3_origin_config=_block("origin_access_identity"),
    vpc_origin_config=_block(
        "origin_keepalive_timeout origin_read_timeout owner_account_id vpc_origin_id"
    ),
)

# Attributes Terraform computes; they appear in state exports, never in hand-written config.
_COMPUTED = (
    " arn caller_reference domain_name etag hosted_zone_id id in_progress_validation_batches"
    " last_modified_time logging_v1_enabled status tags_all trusted_key_groups trusted_signers"
)

DISTRIBUTION: Block = _block(
    "aliases anycast_ip_list_id comment continuous_deployment_policy_id default_root_object"
    " enabled http_version is_ipv6_enabled price_class retain_on_delete staging tags"
    " wait_for_deployment web_acl_id" + _COMPUTED,
    custom_error_response=_block(
        "error_caching_min_ttl error_code response_code response_page_path", repeated=True
    ),
    default_cache_behavior=_cache_behavior(ordered=False),
    ordered_cache_behavior=_cache_behavior(ordered=True),
    logging_config=_block("bucket include_cookies prefix"),
    origin=_ORIGIN,
    origin_group=_block(
        "origin_id",
        repeated=True,
        failover_criteria=_block("status_codes"),
        member=_block("origin_id", repeated=True),
    ),
    restrictions=_block("", geo_restriction=_block("locations restriction_type")),
    viewer_certificate=_block(
        "acm_certificate_arn cloudfront_default_certificate iam_certificate_id"
        " minimum_protocol_version ssl_support_method"
    ),
)


# --- the walk: Terraform JSON -> the models' shape ------------------------------------------

Loc = tuple[int | str, ...]  # a key path before formatting, as pydantic writes it
_DROP = object()  # _prepare_field's answer for "leave this key out"
_NAME = re.compile(r"[A-Za-z_][\w-]*")


@dataclass(slots=True)
class Findings:
    """What one walk found: problems as (key path, message), ignored keys as key paths."""

    problems: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def key_path(loc: Iterable[int | str]) -> str:
    """``('distribution', 'origin', 0, 'origin_id')`` -> ``distribution.origin[0].origin_id``;
    keys that are not names (hosts, ARNs) are quoted: ``edge.resolve["api.example.com"]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            continue  # pydantic marks a bad mapping key this way; the path already names it
        elif _NAME.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f'["{part}"]'
    return path


def prepare(raw: Any, block: Block, model: type[BaseModel], loc: Loc, found: Findings) -> Any:
    """``raw`` with unknown and ignored keys removed (and recorded in ``found``) and every
    nested block in the shape ``model`` takes; anything not a mapping is left to pydantic."""
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for key, value in raw.items():
        key_loc = (*loc, str(key))
        if key not in block.keys | block.local:
            found.problems.append((key_path(key_loc), "unknown key"))
        elif key not in model.model_fields:
            if value not in (None, [], {}):  # Terraform JSON writes absent blocks as []
                found.ignored.append(key_path(key_loc))
        else:
            prepared = _prepare_field(value, block, model.model_fields[key], key_loc, found)
            if prepared is not _DROP:
                out[key] = prepared
    return out


def _prepare_field(value: Any, block: Block, info: FieldInfo, loc: Loc, found: Findings) -> Any:
    shape = _block_shape(info.annotation)
    if shape is None:
        return value
    model, repeated = shape
    child = block.child(str(loc[-1])) or Block(attrs=frozenset(model.model_fields))
    if repeated:
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list):
            return value
        return [prepare(item, child, model, (*loc, i), found) for i, item in enumerate(items)]
    if isinstance(value, list):
        if not value:
            return _DROP
        if len(value) > 1:
            found.problems.append((key_path(loc), f"takes one block, not {len(value)}"))
            return _DROP
        value = value[0]
    return prepare(value, child, model, loc, found)


def _block_shape(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """(model, repeated) when a field holds a block or blocks, else None."""
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a not in (NoneType, Ellipsis)]
    if origin is tuple and len(args) == 1:
        inner = _block_shape(args[0])
        return (inner[0], True) if inner else None
    if origin in (Union, UnionType) and len(args) == 1:
        return _block_shape(args[0])
    if origin is None and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None
