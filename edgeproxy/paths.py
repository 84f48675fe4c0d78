"""The path cache behaviors are matched against (reference 7.1): the viewer's path
normalised the way CloudFront documents it, "consistent with RFC 3986", before it picks a
behavior; the origin (and every handler) still gets the raw path [DGnow
DownloadDistValuesCacheBehavior, "Path normalization"].

The steps, in RFC 3986 section 6.2.2's order:

1. Percent-encoded unreserved characters are decoded (section 6.2.2.2): ``%61`` is ``a``,
   ``%2e`` and ``%2E`` are both ``.`` (hex digits are case-insensitive, section 2.1). Every
   other escape stays: ``%2F`` is data, not a separator.
2. Dot segments are removed (section 5.2.4): ``/x/../a`` is ``/a``, ``/a/.`` is ``/a/``, a
   ``..`` above the root stays at the root. CloudFront also removes repeated slashes, which
   RFC 3986 does not: ``//a//b`` is ``/a/b``, and ``/a//../b`` is ``/b``.

So ``/%2e%2e/account/`` is ``/account/``, and ``/account/../public`` is not under
``/account/*``. Each step is linear in the path, and a path needing none costs two
substring checks.
"""

from __future__ import annotations

import re

# RFC 3986 section 2.3: the characters whose escapes are decoded.
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _spellings(code: int) -> set[str]:
    """``2e``, ``2E`` …: every case of the two hex digits of ``code``."""
    digits = f"{code:02X}"
    return {h + lo for h in {digits[0], digits[0].lower()} for lo in {digits[1], digits[1].lower()}}


# The two hex digits after a '%' → the unreserved character they encode.
_DECODED = {spelling: char for char in UNRESERVED for spelling in _spellings(ord(char))}


def _escape_regex() -> re.Pattern[str]:
    """``%`` and the hex digits of an unreserved character, one character class per first
    digit: ``%(2[DEde]|3[0-9]|…)``. Fixed three-character tokens, no repetition."""
    lows: dict[str, set[str]] = {}
    for spelling in _DECODED:
        lows.setdefault(spelling[0], set()).add(spelling[1])
    classes = (f"{high}[{''.join(sorted(low))}]" for high, low in sorted(lows.items()))
    return re.compile("%(" + "|".join(classes) + ")")


# The regexes here are fixed and linear (no nested repetition): they only cut the path into
# tokens in one C pass. Configured path patterns never become regexes (``behaviors``).
_UNRESERVED_ESCAPE = _escape_regex()
_REPEATED_SLASHES = re.compile("//+")
_DOT_SEGMENT = re.compile(r"/\.(?=/)")  # a "." segment, with the slash before it


def normalise_path(path: str) -> str:
    """``path`` (starting with ``/``) as CloudFront matches it against path patterns."""
    if "%" in path:
        path = decode_unreserved(path)
    if "/." in path or "//" in path:
        path = remove_dot_segments(path)
    return path


def decode_unreserved(path: str) -> str:
    """Escapes of unreserved characters decoded, in one pass: what a decode makes is not
    decoded again (``%%341`` is ``%41``), and ``%25`` (``%``, reserved) stays."""
    parts = _UNRESERVED_ESCAPE.split(path)  # text, hex digits, text, hex digits, …, text
    parts[1::2] = map(_DECODED.__getitem__, parts[1::2])
    return "".join(parts)


def remove_dot_segments(path: str) -> str:
    """Repeated slashes and ``.`` segments removed, ``..`` segments resolved; a path that
    ended in a dot segment ends in ``/``. Only a path with a ``..`` segment is walked
    segment by segment (the rest are single regex passes)."""
    path = _REPEATED_SLASHES.sub("/", path)
    if path.endswith("/."):
        path = path[:-1]
    path = _DOT_SEGMENT.sub("", path)
    if "/../" not in path and not path.endswith("/.."):
        return path
    segments = path.split("/")
    kept: list[str] = []
    keep, drop = kept.append, kept.pop
    for segment in segments[1:]:
        if segment != "..":
            keep(segment)
        elif kept:
            drop()
    trailing = "/" if kept and segments[-1] == ".." else ""
    return "/" + "/".join(kept) + trailing
