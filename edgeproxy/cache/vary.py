"""Vary as CloudFront treats it: a response header it trims, never a way to split objects.

CloudFront's cache key is the distribution's domain, the path and what the cache policy (or
the legacy forwarded values) adds; what only an origin request policy forwards is not in it
(DG understanding-the-cache-key, controlling-origin-requests). So two requests with the same
key share one object whatever the origin's ``Vary`` names: edgeproxy stores no Vary
selection (RFC 9111 4.1 is not CloudFront's rule). ``Vary: *`` with Min TTL 0 sends every
request to the origin, which ``cache/ttl.py`` does by storing the object stale at once, and
without conditional headers ("Content negotiation": the origin returns the whole object every
time), which ``revalidates`` says.

Toward the viewer, ``Vary`` keeps only (DG RequestAndResponseBehaviorCustomOrigin, "HTTP
response headers that CloudFront removes or replaces"; docs/fidelity.md):

* ``Accept-Encoding`` and ``Cookie``, always;
* the headers the behavior forwards to the origin (cache policy ∪ origin request policy, or
  the legacy forwarded headers; "all" keeps every name);
* ``User-Agent`` when a ``CloudFront-Is-*-Viewer`` header is forwarded;
* ``*`` only with Min TTL 0 ("Content negotiation": with any other Min TTL it is processed
  like the other values, so removed).

Every other value is removed, and a ``Vary`` left empty goes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edgeproxy.cache.selection import Selection
from edgeproxy.messages import Header, Headers

ALWAYS_KEPT = frozenset({"accept-encoding", "cookie"})
DEVICE_HEADER_PREFIX = "cloudfront-is-"  # CloudFront-Is-Desktop-/Mobile-/SmartTV-/Tablet-Viewer


@dataclass(frozen=True, slots=True)
class VaryRule:
    """Which ``Vary`` values one behavior passes on; built once per route."""

    forwarded: Selection  # header names the origin gets (KeyPolicy.origin_headers)
    device_headers: bool = False  # a CloudFront-Is-*-Viewer header is forwarded
    star: bool = True  # Min TTL 0: "*" is kept

    def keeps(self, lname: str) -> bool:
        if lname in ALWAYS_KEPT:
            return True
        if lname == "*":
            return self.star
        if lname == "user-agent" and self.device_headers:
            return True
        return self.forwarded.selects(lname)


def revalidates(stored_headers: Iterable[Header]) -> bool:
    """Whether a stale object with these headers is revalidated (If-None-Match /
    If-Modified-Since); one whose Vary, as stored, holds ``*`` is fetched whole again."""
    for name, value in stored_headers:
        if name.lower() == "vary" and any(f.strip() == "*" for f in value.split(",")):
            return False
    return True


def viewer_vary(rule: VaryRule, headers: Iterable[Header]) -> Headers:
    """``headers`` with each ``Vary`` line trimmed to what ``rule`` keeps (see module doc)."""
    out: Headers = []
    for name, value in headers:
        if name.lower() != "vary":
            out.append((name, value))
            continue
        fields = [f.strip() for f in value.split(",") if f.strip()]
        kept = [f for f in fields if rule.keeps(f.lower())]
        if kept:
            out.append((name, value if len(kept) == len(fields) else ", ".join(kept)))
    return out
