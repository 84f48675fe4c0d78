"""Real config objects for unit tests. The models validate what a test builds (unknown keys
refused), so a renamed or mistyped field fails here instead of slipping through a stand-in
object that merely has attributes of the old names."""

from __future__ import annotations

from typing import Any

from edgeproxy.config.behaviors import CacheBehavior, Cookies, ForwardedValues

ALL_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")


def cache_behavior(**fields: Any) -> CacheBehavior:
    """A CacheBehavior with the required fields filled in; ``fields`` are its own arguments.
    Built without a load context, so it may lack both cache key sources (as code may)."""
    required: dict[str, Any] = {
        "target_origin_id": "origin",
        "viewer_protocol_policy": "allow-all",
        "allowed_methods": ALL_METHODS,
        "cached_methods": ("GET", "HEAD"),
    }
    return CacheBehavior.model_validate({**required, **fields})


def forwarded_values(
    *,
    query_string: bool = False,
    query_string_cache_keys: tuple[str, ...] = (),
    headers: tuple[str, ...] = (),
    cookies: str = "none",
    cookie_names: tuple[str, ...] = (),
) -> ForwardedValues:
    """Legacy ``forwarded_values`` with its ``cookies`` block flattened into two arguments."""
    return ForwardedValues(
        query_string=query_string,
        query_string_cache_keys=query_string_cache_keys,
        headers=headers,
        cookies=Cookies.model_validate({"forward": cookies, "whitelisted_names": cookie_names}),
    )
