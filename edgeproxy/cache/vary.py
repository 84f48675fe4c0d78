"""Vary: a stored response is used only for requests that send the same values for the
headers it names (RFC 9111 4.1); ``Vary: *`` never matches. Accept-Encoding is left out
when the cache key already holds CloudFront's normalised value for it (reference 7.9)."""

from __future__ import annotations

from collections.abc import Iterable

from edgeproxy.messages import Header, Headers

Selecting = tuple[tuple[str, str | None], ...]  # (lower-case name, request value)
NEVER = (("*", None),)


def vary_names(response_headers: Iterable[Header], *, keyed_encoding: bool) -> tuple[str, ...]:
    """The request header names a response varies on, lower-case, in order."""
    names: list[str] = []
    for name, value in response_headers:
        if name.lower() != "vary":
            continue
        for field in value.split(","):
            field = field.strip().lower()
            if field and field not in names:
                names.append(field)
    if keyed_encoding and "accept-encoding" in names:
        names.remove("accept-encoding")
    return tuple(names)


def selecting(names: tuple[str, ...], request_headers: Headers) -> Selecting:
    """The request's values for ``names``: what a later request must match."""
    if "*" in names:
        return NEVER
    return tuple((name, _value(request_headers, name)) for name in names)


def matches(stored: Selecting, request_headers: Headers) -> bool:
    if not stored:
        return True
    if stored == NEVER:
        return False
    return all(_value(request_headers, name) == value for name, value in stored)


def _value(headers: Headers, name: str) -> str | None:
    """All field lines of ``name`` combined, whitespace around commas normalised."""
    values = [v for k, v in headers if k.lower() == name]
    if not values:
        return None
    return ",".join(part.strip() for v in values for part in v.split(","))
