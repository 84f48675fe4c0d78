"""The normalised Accept-Encoding (reference 7.9): what the cache key holds, what the
origin gets, and what the edge may compress with."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

ENCODINGS = ("br", "gzip")  # normalised order, as CloudFront writes it
# (accepts br, accepts gzip) → the normalised value
_NORMALISED: Mapping[tuple[bool, bool], str] = {
    (True, True): "br,gzip",
    (True, False): "br",
    (False, True): "gzip",
    (False, False): "",
}


@lru_cache(maxsize=512)  # viewers send few distinct values; this is on every hit
def accepted_encodings(accept_encoding: str | None) -> str:
    """Normalised Accept-Encoding: ``br,gzip``, ``gzip``, ``br`` or "" (7.9)."""
    if not accept_encoding:
        return ""
    lowered = accept_encoding.lower()
    if ";" in lowered:  # parameters: drop codings refused with q=0
        items = (item.partition(";") for item in lowered.split(","))
        tokens = [coding.strip() for coding, _, params in items if not _zero_q(params)]
    else:
        tokens = [item.strip() for item in lowered.split(",")]
    return _NORMALISED["br" in tokens, "gzip" in tokens]


def _zero_q(params: str) -> bool:
    name, _, value = params.strip().partition("=")
    if name.strip() != "q":
        return False
    try:
        return float(value) == 0.0
    except ValueError:
        return False
