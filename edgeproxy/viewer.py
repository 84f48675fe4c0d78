"""The viewer side: protocol policy redirects and the ``CloudFront-*`` headers CloudFront
derives from the viewer (protocol, device, geo, address), reference sections 6.1 and 7.2.

CloudFront adds these headers only when a cache key or origin request setting names them,
and only after viewer-request has run. Viewer-sent ``CloudFront-*`` headers are either
trusted as simulated values (``edge.geo.trust_viewer_headers``: then they count as
CloudFront's own, hidden from viewer-request and added after it) or removed, so nobody can
spoof them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .messages import EdgeRequest, EdgeResponse, Headers, header_value

CF_PREFIX = "cloudfront-"

_REDIRECT_BODY = (
    b"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
    b"<center><h1>{status}</h1></center>\r\n<hr><center>CloudFront</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_REDIRECT_STATUS = {301: b"301 Moved Permanently", 307: b"307 Temporary Redirect"}


@dataclass(frozen=True, slots=True)
class Location:
    """A viewer's simulated location; empty strings are fields the source does not know."""

    country: str
    country_name: str = ""
    region: str = ""
    region_name: str = ""
    city: str = ""
    postal_code: str = ""
    time_zone: str = ""
    latitude: str = ""
    longitude: str = ""
    metro_code: str = ""
    asn: str = ""


@dataclass(frozen=True, slots=True)
class GeoLocator:
    """IP ranges mapped to locations, then a default location (``edge.geo``)."""

    ranges: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Location], ...] = ()
    default: Location | None = None

    @classmethod
    def from_settings(cls, geo: Any) -> GeoLocator:
        """Built from ``edge.geo`` (GeoSettings: ``ranges`` with ``cidr``, ``default``)."""
        ranges = tuple(
            (ipaddress.ip_network(r.cidr, strict=False), _location(r)) for r in geo.ranges
        )
        default = _location(geo.default) if geo.default is not None else None
        return cls(ranges, default)

    def locate(self, ip: str) -> Location | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return self.default
        for network, location in self.ranges:
            if address in network:
                return location
        return self.default


def _location(settings: Any) -> Location:
    fields = Location.__dataclass_fields__
    values = {name: getattr(settings, name, None) for name in fields}
    return Location(**{k: "" if v is None else str(v) for k, v in values.items()})


@dataclass(frozen=True, slots=True)
class ViewerFacts:
    """What the edge knows about a viewer, from which ``CloudFront-*`` values are made."""

    request: EdgeRequest
    location: Location | None
    trusted: Mapping[str, str] = field(default_factory=dict)


# Device detection from User-Agent, as CloudFront's CloudFront-Is-*-Viewer headers.
_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android.*Mobile|Windows Phone", re.I)
_TABLET = re.compile(r"iPad|Tablet|Android(?!.*Mobile)|Kindle|Silk", re.I)
_SMARTTV = re.compile(r"SmartTV|SMART-TV|AppleTV|GoogleTV|HbbTV|BRAVIA|Roku", re.I)
_IOS = re.compile(r"iPhone|iPad|iPod", re.I)
_ANDROID = re.compile(r"Android", re.I)


def _ua(f: ViewerFacts) -> str:
    return header_value(f.request.headers, "user-agent") or ""


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _is_desktop(f: ViewerFacts) -> str:
    ua = _ua(f)
    return _flag(not (_MOBILE.search(ua) or _TABLET.search(ua) or _SMARTTV.search(ua)))


def _geo(attr: str) -> Callable[[ViewerFacts], str | None]:
    def value(f: ViewerFacts) -> str | None:
        return (getattr(f.location, attr) or None) if f.location is not None else None

    return value


def _address(f: ViewerFacts) -> str:
    return f"{f.request.client_ip}:{f.request.client_port}"


# Header (lower-case) → how its value is made. A value of None means "not added".
VIEWER_HEADERS: dict[str, Callable[[ViewerFacts], str | None]] = {
    "cloudfront-forwarded-proto": lambda f: f.request.scheme,
    "cloudfront-is-desktop-viewer": _is_desktop,
    "cloudfront-is-mobile-viewer": lambda f: _flag(bool(_MOBILE.search(_ua(f)))),
    "cloudfront-is-tablet-viewer": lambda f: _flag(bool(_TABLET.search(_ua(f)))),
    "cloudfront-is-smarttv-viewer": lambda f: _flag(bool(_SMARTTV.search(_ua(f)))),
    "cloudfront-is-ios-viewer": lambda f: _flag(bool(_IOS.search(_ua(f)))),
    "cloudfront-is-android-viewer": lambda f: _flag(bool(_ANDROID.search(_ua(f)))),
    "cloudfront-viewer-country": _geo("country"),
    "cloudfront-viewer-country-name": _geo("country_name"),
    "cloudfront-viewer-country-region": _geo("region"),
    "cloudfront-viewer-country-region-name": _geo("region_name"),
    "cloudfront-viewer-city": _geo("city"),
    "cloudfront-viewer-postal-code": _geo("postal_code"),
    "cloudfront-viewer-time-zone": _geo("time_zone"),
    "cloudfront-viewer-latitude": _geo("latitude"),
    "cloudfront-viewer-longitude": _geo("longitude"),
    "cloudfront-viewer-metro-code": _geo("metro_code"),
    "cloudfront-viewer-asn": _geo("asn"),
    "cloudfront-viewer-address": _address,
    "cloudfront-viewer-http-version": lambda f: f.request.http_version,
}


def title_case(name: str) -> str:
    """``cloudfront-viewer-country`` → ``CloudFront-Viewer-Country``, as CloudFront writes."""
    words = [w.capitalize() for w in name.split("-")]
    if words and words[0] == "Cloudfront":
        words[0] = "CloudFront"
    return "-".join(words)


_CANONICAL = {name: title_case(name) for name in VIEWER_HEADERS}


def split_viewer_cf_headers(headers: Headers, trust: bool) -> tuple[Headers, dict[str, str]]:
    """Remove the ``CloudFront-*`` headers the edge itself adds from what the viewer sent.
    With ``trust`` their values are kept aside, to be used as CloudFront's own."""
    kept: Headers = []
    trusted: dict[str, str] = {}
    for key, value in headers:
        lname = key.lower()
        if lname in VIEWER_HEADERS:
            if trust:
                trusted.setdefault(lname, value)
            continue
        kept.append((key, value))
    return kept, trusted


def viewer_cf_headers(names: Iterable[str], facts: ViewerFacts) -> Headers:
    """The ``CloudFront-*`` headers among ``names`` (lower-case), trusted values first."""
    out: Headers = []
    for name in names:
        make = VIEWER_HEADERS.get(name)
        if make is None:
            continue
        value = facts.trusted.get(name) or make(facts)
        if value is not None:
            out.append((_CANONICAL[name], value))
    return out


def https_redirect(request: EdgeRequest, https_port: int | None) -> EdgeResponse:
    """CloudFront's redirect-to-https answer: 301 for GET/HEAD, 307 for other methods."""
    status = 301 if request.method in ("GET", "HEAD") else 307
    host = host_without_port(header_value(request.headers, "host") or "localhost")
    port = "" if https_port in (None, 443) else f":{https_port}"
    location = f"https://{host}{port}{request.target}"
    body = _REDIRECT_BODY.replace(b"{status}", _REDIRECT_STATUS[status])
    headers = [("Content-Type", "text/html"), ("Location", location), ("Server", "CloudFront")]
    return EdgeResponse(status, headers, body)


def host_without_port(host: str) -> str:
    """``example.com:8080`` → ``example.com``; ``[::1]:8080`` → ``[::1]``."""
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.split(":", 1)[0]
