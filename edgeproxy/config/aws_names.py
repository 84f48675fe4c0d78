"""CloudFront's own names (the API's and CloudFormation's PascalCase ``DistributionConfig``,
``CachePolicyConfig``, …) as Terraform's, the names our YAML uses.

One walk serves both sources: the API wraps every list as ``{Quantity, Items}`` (unwrapped
first), CloudFormation writes plain lists. Names become snake_case by rule
(``HTTPSPort`` → ``https_port``) except the few in ``RENAMES``; the few blocks whose shape
differs are in ``RESHAPES``. ``where`` collects each key path's JSON path, for messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from edgeproxy.config.source_doc import path_of

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

RENAMES: Mapping[str, str] = MappingProxyType(
    {
        "Origins": "origin",
        "OriginGroups": "origin_group",
        "CacheBehaviors": "ordered_cache_behavior",
        "CustomErrorResponses": "custom_error_response",
        "LambdaFunctionAssociations": "lambda_function_association",
        "LambdaFunctionARN": "lambda_arn",
        "FunctionAssociations": "function_association",
        "FunctionARN": "function_arn",
        "CustomHeaders": "custom_header",
        "HeaderName": "name",
        "HeaderValue": "value",
        "Members": "member",
        "Logging": "logging_config",
        "Locations": "locations",
        "CNAMEs": "aliases",
        "CloudFrontDefaultCertificate": "cloudfront_default_certificate",
    }
)

# Deprecated or console-only fields Terraform has no argument for.
_DROPPED = frozenset({"Certificate", "CertificateSource", "SelectionCriteria", "AliasICPRecordals"})
# Inside these blocks ``Id`` is Terraform's ``origin_id``.
_ID_IS_ORIGIN_ID = frozenset({"origin", "origin_group"})
# Policy lists Terraform keeps as ``{items = [...]}`` blocks.
_ITEMS_BLOCKS = frozenset(
    {
        "cookies",
        "headers",
        "query_strings",
        "access_control_allow_headers",
        "access_control_allow_methods",
        "access_control_allow_origins",
        "access_control_expose_headers",
    }
)


def snake(name: str) -> str:
    return RENAMES.get(name) or _CAMEL.sub("_", name).lower()


def unwrap(value: Any) -> Any:
    """The API's ``{Quantity: n, Items: [...]}`` lists as plain lists, everywhere."""
    if isinstance(value, dict):
        if "Quantity" in value and set(value) <= {"Quantity", "Items", "Enabled"}:
            return [unwrap(v) for v in value.get("Items") or []]
        out = {k: unwrap(v) for k, v in value.items()}
        if "RestrictionType" in out:  # GeoRestriction {RestrictionType, Quantity, Items}
            items = out.pop("Items", [])
            out.pop("Quantity", None)
            out.setdefault("Locations", items)
        return out
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _allowed_methods(block: dict[str, Any], out: dict[str, Any]) -> None:
    """API: ``AllowedMethods {Items, CachedMethods {Items}}`` → two lists; CloudFormation
    already has ``AllowedMethods`` and ``CachedMethods`` side by side."""
    allowed = block.get("AllowedMethods")
    if isinstance(allowed, dict):
        out["allowed_methods"] = allowed.get("Items", [])
        cached = allowed.get("CachedMethods")
        out["cached_methods"] = cached.get("Items", []) if isinstance(cached, dict) else cached


RESHAPES: Mapping[str, Callable[[dict[str, Any], dict[str, Any]], None]] = MappingProxyType(
    {"AllowedMethods": _allowed_methods}
)


def translate(value: Any, where: dict[str, str], loc: tuple[int | str, ...], json_path: str) -> Any:
    """``value`` (PascalCase, lists unwrapped) in Terraform's names; ``where`` gets each key
    path's JSON path."""
    where[path_of(loc)] = json_path
    if isinstance(value, list):
        return [
            translate(item, where, (*loc, i), f"{json_path}[{i}]") for i, item in enumerate(value)
        ]
    if not isinstance(value, dict):
        return value
    block = next((str(part) for part in reversed(loc) if isinstance(part, str)), "")
    out: dict[str, Any] = {}
    for key, item in value.items():
        key = str(key)
        if key in _DROPPED:
            continue
        reshape = RESHAPES.get(key)
        if reshape is not None and isinstance(item, dict):
            reshape({key: item}, out)
            continue
        name = "origin_id" if key == "Id" and block in _ID_IS_ORIGIN_ID else snake(key)
        converted = translate(item, where, (*loc, name), f"{json_path}.{key}")
        if name in _ITEMS_BLOCKS and block.endswith("_config") and isinstance(converted, list):
            converted = {"items": converted}
        out[name] = converted
    return out
