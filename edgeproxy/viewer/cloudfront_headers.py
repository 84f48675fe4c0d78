"""The viewer side: protocol policy redirects and the ``CloudFront-*`` headers CloudFront
derives from the viewer (protocol, device, geo, address, TLS), reference sections 6.1 and 7.2.

CloudFront adds these headers only when a cache key or origin request setting names them,
and only after viewer-request has run. ``CloudFront-*`` headers a viewer sends itself are
shown to viewer-request as sent, then give way to CloudFront's own (``toward_origin``), so
nobody can spoof them toward the origin; trusted as simulated values
(``edge.geo.trust_viewer_headers``) they count as CloudFront's own instead: hidden from
viewer-request and added after it. Where a viewer is comes from ``viewer/geo.py``; what
device it is comes from its User-Agent, parsed by ``ua-parser`` (uap-core's regexes) and
sorted into CloudFront's device classes by the tables below.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from edgeproxy.errors import ProtocolNotAllowed
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, header_value, title_case
from edgeproxy.viewer.geo import COUNTRY_HEADER, Location, country_location

_REDIRECT_BODY = (
    b"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
    b"<center><h1>{status}</h1></center>\r\n<hr><center>CloudFront</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_REDIRECT_STATUS = {301: b"301 Moved Permanently", 307: b"307 Temporary Redirect"}
# RFC 9110 Host: uri-host [":" port], the host an IP-literal or a reg-name (RFC 3986:
# unreserved, sub-delims, pct-encoded). The viewer parser lets more through (spaces, tabs,
# "/", "@", obs-text), which would point a redirect's Location elsewhere or break it.

@dataclass(frozen=True, slots=True)
class ViewerFacts:
    """What the edge knows about a viewer, from which ``CloudFront-*`` values are made."""

    request: EdgeRequest
    location: Location | None
    trusted: Mapping[str, str] = field(default_factory=dict)


# -- device classes (CloudFront-Is-*-Viewer) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Device:
    """CloudFront's device flags for one User-Agent. Several may be true: a tablet is also
    a mobile viewer; desktop is what is neither mobile, tablet nor smart TV (curl too)."""

    mobile: bool = False
    tablet: bool = False
    smarttv: bool = False
    ios: bool = False
    android: bool = False

    @property
    def desktop(self) -> bool:
        return not (self.mobile or self.tablet or self.smarttv)


# ua-parser's device / OS / browser families, sorted into CloudFront's classes.
_TV_DEVICE_FAMILIES = frozenset({"AppleTV", "Chromecast", "Roku", "Samsung SMART-TV"})
_TV_OS_FAMILIES = frozenset({"ATV OS X", "tvOS", "Chromecast Linux", "Roku", "Web0S"})
_TABLET_DEVICE_FAMILIES = frozenset(
    {"iPad", "Kindle", "Kindle Fire", "Kindle Fire HD", "Galaxy Tab", "Xoom", "Dell Streak"}
    | {"BlackBerry Playbook", "Blackberry Playbook", "Nexus 7", "Nexus 9", "Nexus 10"}
)
_TABLET_BRANDS = frozenset({"Generic_Android_Tablet"})
_PHONE_DEVICE_FAMILIES = frozenset(
    {"iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone", "iOS-Device"}
)
_MOBILE_OS_FAMILIES = frozenset(
    {"Android", "iOS", "Windows Phone", "BlackBerry OS", "Symbian OS", "Firefox OS", "KaiOS"}
    | {"Windows Mobile", "Windows CE", "Bada", "Maemo", "MeeGo", "Tizen", "Sailfish"}
)
_IOS_DEVICE_FAMILIES = frozenset({"iPhone", "iPad", "iPod"})
# What uap-core's device regexes leave unclassified but a TV's User-Agent says of itself.
_TV_MARKERS = re.compile(
    r"Smart-?TV|SMART-TV|HbbTV|GoogleTV|Android ?TV|AppleTV|CrKey|Roku|BRAVIA|NetCast|"
    r"\bAFT[A-Z]|Web0S|Opera TV|PhilipsTV|AQUOSBrowser|\bTV Safari\b",
    re.I,
)


@functools.lru_cache(maxsize=4096)
def device_of(user_agent: str) -> Device:
    """The device classes of a User-Agent. Parsing costs tens of microseconds with
    ua-parser's Rust resolver, a few hundred without it, so results are memoised: a bounded
    LRU of pure results (viewers send the same few User-Agents again and again)."""
    if not user_agent:
        return Device()
    import ua_parser

    parsed = ua_parser.parse(user_agent)
    device = parsed.device.family if parsed.device else ""
    brand = parsed.device.brand if parsed.device else None
    os = parsed.os.family if parsed.os else ""
    browser = parsed.user_agent.family if parsed.user_agent else ""
    tv = (
        device in _TV_DEVICE_FAMILIES
        or os in _TV_OS_FAMILIES
        or _TV_MARKERS.search(user_agent) is not None
    )
    # Android tablets are told from phones by the missing "Mobile" token (Google's advice).
    tablet = not tv and (
        device in _TABLET_DEVICE_FAMILIES
        or brand in _TABLET_BRANDS
        or (os == "Android" and "Mobile" not in user_agent)
    )
    mobile = not tv and (
        tablet
        or device in _PHONE_DEVICE_FAMILIES
        or os in _MOBILE_OS_FAMILIES
        or "Mobile" in browser
        or "Mobi" in user_agent
    )
    ios = os == "iOS" or device in _IOS_DEVICE_FAMILIES
    return Device(mobile=mobile, tablet=tablet, smarttv=tv, ios=ios, android=os == "Android")


def warm_device_parser() -> None:
    """Build ua-parser's matchers now (a few hundred ms), not on a viewer's first request."""
    import ua_parser

    ua_parser.parse("Mozilla/5.0")


# -- the headers -------------------------------------------------------------------------


def _device(f: ViewerFacts) -> Device:
    return device_of(header_value(f.request.headers, "user-agent") or "")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _geo(part: Callable[[Location], str]) -> Callable[[ViewerFacts], str | None]:
    """A geo header's value: ``part`` of the viewer's location, None when nobody knows it."""

    def value(f: ViewerFacts) -> str | None:
        return (part(f.location) or None) if f.location is not None else None

    return value


def _address(f: ViewerFacts) -> str:
    # ip:port, an IPv6 address written without brackets (reference 6.1).
    return f"{f.request.client_ip}:{f.request.client_port}"


# Header (lower-case) → how its value is made. A value of None means "not added".
VIEWER_HEADERS: dict[str, Callable[[ViewerFacts], str | None]] = {
    "cloudfront-forwarded-proto": lambda f: f.request.scheme,
    "cloudfront-is-desktop-viewer": lambda f: _flag(_device(f).desktop),
    "cloudfront-is-mobile-viewer": lambda f: _flag(_device(f).mobile),
    "cloudfront-is-tablet-viewer": lambda f: _flag(_device(f).tablet),
    "cloudfront-is-smarttv-viewer": lambda f: _flag(_device(f).smarttv),
    "cloudfront-is-ios-viewer": lambda f: _flag(_device(f).ios),
    "cloudfront-is-android-viewer": lambda f: _flag(_device(f).android),
    "cloudfront-viewer-country": _geo(lambda g: g.country),
    "cloudfront-viewer-country-name": _geo(lambda g: g.country_name),
    "cloudfront-viewer-country-region": _geo(lambda g: g.region),
    "cloudfront-viewer-country-region-name": _geo(lambda g: g.region_name),
    "cloudfront-viewer-city": _geo(lambda g: g.city),
    "cloudfront-viewer-postal-code": _geo(lambda g: g.postal_code),
    "cloudfront-viewer-time-zone": _geo(lambda g: g.time_zone),
    "cloudfront-viewer-latitude": _geo(lambda g: g.latitude),
    "cloudfront-viewer-longitude": _geo(lambda g: g.longitude),
    "cloudfront-viewer-metro-code": _geo(lambda g: g.metro_code),
    "cloudfront-viewer-asn": _geo(lambda g: g.asn),
    "cloudfront-viewer-address": _address,
    "cloudfront-viewer-http-version": lambda f: f.request.http_version,
    "cloudfront-viewer-tls": lambda f: f.request.tls or None,  # HTTPS viewers only
}

# Headers CloudFront adds only when an origin request policy names them: a cache key
# (cache policy or legacy forwarded_values) cannot hold them (reference 6.1).
ORIGIN_REQUEST_POLICY_ONLY = frozenset(
    {"cloudfront-viewer-asn", "cloudfront-viewer-address", "cloudfront-viewer-tls"}
)

_DEVICE_HEADERS = frozenset(name for name in VIEWER_HEADERS if name.startswith("cloudfront-is-"))


def names_device_headers(names: Iterable[str]) -> bool:
    """Whether any of ``names`` (lower-case) is a CloudFront-Is-*-Viewer header."""
    return any(name in _DEVICE_HEADERS for name in names)


# How CloudFront spells these words in the CloudFront-* names: CloudFront-Viewer-TLS.
_WORDS = {
    "cloudfront": "CloudFront", "tls": "TLS", "asn": "ASN", "ios": "IOS", "smarttv": "SmartTV"
}  # fmt: skip
_CANONICAL = {name: title_case(name, _WORDS) for name in VIEWER_HEADERS}


NOTHING_SENT: frozenset[str] = frozenset()


def sent_cf_headers(headers: Headers) -> frozenset[str]:
    """The names (lower-case) of the ``CloudFront-*`` headers the edge adds that the viewer
    sent itself."""
    return frozenset(lname for key, _ in headers if (lname := key.lower()) in VIEWER_HEADERS)


def split_viewer_cf_headers(headers: Headers) -> tuple[Headers, dict[str, str]]:
    """Trusted simulated values (``edge.geo.trust_viewer_headers``): the ``CloudFront-*``
    headers the edge adds, taken out of what the viewer sent and kept aside as CloudFront's
    own."""
    kept: Headers = []
    trusted: dict[str, str] = {}
    for key, value in headers:
        lname = key.lower()
        if lname in VIEWER_HEADERS:
            trusted.setdefault(lname, value)
            continue
        kept.append((key, value))
    return kept, trusted


def toward_origin(headers: Headers, sent: frozenset[str], added: Iterable[str]) -> Headers:
    """After viewer-request: the viewer's own values of the headers CloudFront adds
    (``sent``), and any value of those it adds for this behavior (``added``), give way to
    CloudFront's, which ``viewer_cf_headers`` makes."""
    replaced = sent.union(added)
    if not replaced:
        return headers
    return [(key, value) for key, value in headers if key.lower() not in replaced]


def viewer_cf_headers(names: Iterable[str], facts: ViewerFacts) -> Headers:
    """The ``CloudFront-*`` headers among ``names`` (lower-case), trusted values first. A
    trusted country that differs from the located one moves the viewer to that country:
    the located city, region... no longer apply, and the country name follows."""
    sent_country = facts.trusted.get(COUNTRY_HEADER)
    located = facts.location
    if sent_country and (located is None or located.country != sent_country):
        facts = ViewerFacts(facts.request, country_location(sent_country), facts.trusted)
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
    """CloudFront's redirect-to-https answer: 301 for GET/HEAD, 307 for other methods; an
    HTTP/1.0 viewer, which may not know 307, gets 403 for those (reference 7.2). Only a
    well-formed Host the distribution serves gets here (``request_checks.check_limits``)."""
    if request.method in ("GET", "HEAD"):
        status = 301
    elif request.http_version == "1.0":
        raise ProtocolNotAllowed(f"{request.method} over HTTP/1.0 to a redirect-to-https path")
    else:
        status = 307
    host = header_value(request.headers, "host") or "localhost"
    host = host_without_port(host)
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
