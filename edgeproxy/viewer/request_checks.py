"""Checks on a viewer request that need no I/O: CloudFront's size and method refusals, the
Host names the distribution serves, what it removes from a request as it takes it in, and
whether a request can take the quick hit path or needs the full flow."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import replace

from edgeproxy.config.config_model import Config
from edgeproxy.errors import BadRequest, BodyNotAllowed, RequestTooLarge, UnknownHost
from edgeproxy.limits import MAX_URL_LENGTH
from edgeproxy.messages import EdgeRequest, Headers, header_value, without_headers

# Viewer headers after which only the full flow answers: the edge answers conditionals and
# ranges itself (``_from_object``), and CloudFront-* headers are trusted or removed.
FULL_FLOW_HEADERS = frozenset(
    {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"}
)


def url_too_long(request: EdgeRequest) -> bool:
    """Path plus ``?query`` over 8,192 bytes: CloudFront's 413 (reference 1, step 1)."""
    query = len(request.querystring)
    return len(request.uri) + (query + 1 if query else 0) > MAX_URL_LENGTH


def needs_full_flow(request: EdgeRequest) -> bool:
    """Whether anything but the cache lookup could apply to this request's answer."""
    # a WebSocket is never looked up; 1.0: see ``as_received``
    if url_too_long(request) or request.websocket or request.http_version == "1.0":
        return True
    for name, _ in request.headers:
        first = name[0]
        if first in "iIrR" and name.lower() in FULL_FLOW_HEADERS:
            return True
        if first in "cC" and len(name) > 11 and name[:11].lower() == "cloudfront-":
            return True
    return False


NOTHING_TRUSTED: dict[str, str] = {}  # never written: split_viewer_cf_headers makes its own


def names_cloudfront_header(headers: Headers) -> bool:
    """Whether the viewer sent any ``CloudFront-*`` header (cheap: most never do)."""
    for name, _ in headers:
        if len(name) > 11 and name[0] in "cC" and name[:11].lower() == "cloudfront-":
            return True
    return False


_ACCEPT_ENCODING = frozenset({"accept-encoding"})


def as_received(request: EdgeRequest) -> EdgeRequest:
    """The request as CloudFront takes it in: an HTTP/1.0 viewer's Accept-Encoding removed
    (reference 7.9, DG ServingCompressedFiles), before anything reads it, so the cache key,
    the request to the origin and compression all see a viewer that accepts no encoding:
    the origin is never asked for a compressed body that would be stored under the identity
    key. Whether viewer-request sees the header CloudFront does not say [inf]: here not."""
    if request.http_version != "1.0":
        return request
    return replace(request, headers=without_headers(request.headers, _ACCEPT_ENCODING))


def check_limits(request: EdgeRequest, hosts: ServedHosts) -> None:
    """CloudFront's refusals before anything runs (reference 1, step 1), and its 403 for a
    Host the distribution does not serve (the quick hit path asks ``hosts.serves`` too)."""
    if url_too_long(request):
        raise RequestTooLarge("URL over 8,192 bytes")
    if request.method == "GET" and request.has_body:
        raise BodyNotAllowed("a GET request with a body")
    host = header_value(request.headers, "host") or ""
    if hosts.serves(host):
        return
    if not well_formed_host(host):  # RFC 9112 3.2; never a Location or a key built from it
        raise BadRequest(f"the Host header is not a host: {host[:100]!r}")
    raise UnknownHost(
            f"Host {host[:100]!r} is not a name of this distribution; it serves "
            f"{hosts.describe()} (add a name under distribution.aliases)"
        )


# -- the Host names served ------------------------------------------------------------------

# RFC 9110 ``uri-host [":" port]``: a reg-name (unreserved, sub-delims, pct-encoded) or an
# IP literal. The viewer parser refuses CR, LF and NUL; spaces, "/", "@", "#" or obs-text
# would make a redirect's Location point elsewhere.
_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::[0-9]*)?"
)


def well_formed_host(host: str) -> bool:
    return _HOST.fullmatch(host) is not None


_WILDCARD_LISTENERS = frozenset({"0.0.0.0", "::", ""})
_REMEMBERED = 1024  # Host values whose answer is kept: the hit path decides with one lookup


def viewer_names(config: Config) -> tuple[str, ...]:
    """The names viewers reach this distribution by, besides localhost and loopback
    addresses: its domain name (``edge.distribution_domain_name``), its ``aliases``, and the
    listener's own address when it is a specific one. The HTTPS certificate is for these."""
    dist_names = [config.edge.distribution_domain_name, *config.distribution.aliases]
    host = config.edge.listeners.host
    if host not in _WILDCARD_LISTENERS:
        dist_names.append(host)
    return tuple(dict.fromkeys(dist_names))


class ServedHosts:
    """Which viewer Host values the edge answers: a configured name (``*.example.com`` is every
    name under example.com, not example.com itself, as CloudFront's wildcard aliases),
    ``localhost`` or a loopback address, with or without a port; or no Host at all (HTTP/1.0:
    the viewer named no other site). CloudFront answers any other Host 403 (``UnknownHost``),
    so a foreign name never reaches the cache key, the origin or a redirect's Location."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        canonical = [_canonical(name) for name in self.names]
        self._exact = frozenset(n for n in canonical if not n.startswith("*."))
        self._under = tuple(n[1:] for n in canonical if n.startswith("*."))
        self._answers: dict[str, bool] = {"": True}

    @classmethod
    def from_config(cls, config: Config) -> ServedHosts:
        return cls(viewer_names(config))

    def serves(self, host: str) -> bool:
        """Whether a request with this raw Host value is answered (the one rule, for the
        quick hit path and the full flow alike)."""
        answer = self._answers.get(host)
        if answer is None:
            answer = self._decide(host)
            if len(self._answers) < _REMEMBERED:  # bounded: random Hosts cannot grow it
                self._answers[host] = answer
        return answer

    def describe(self) -> str:
        return ", ".join([*self.names, "localhost", "loopback addresses"])

    def _decide(self, host: str) -> bool:
        name = _host_name(host)
        if name is None:
            return False
        if name in self._exact or name == "localhost" or name.endswith(self._under):
            return True
        address = _address(name)
        return address is not None and address.is_loopback


def _host_name(host: str) -> str | None:
    """The name in a Host value (``name``, ``name:port``, ``[v6]``, ``[v6]:port``; a bare
    IPv6 address is taken too), canonical; None when the value is not one of these."""
    host = host.strip()
    if host.startswith("["):
        name, sep, rest = host[1:].partition("]")
        if not sep or not (rest == "" or (rest[0] == ":" and _is_port(rest[1:]))):
            return None
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
        if not _is_port(port):
            return None
    else:
        name = host
    return _canonical(name) if name else None


def _is_port(digits: str) -> bool:
    return digits == "" or (len(digits) <= 5 and digits.isascii() and digits.isdigit())


def _canonical(name: str) -> str:
    """Lower case without a trailing dot; an IP address in its short form."""
    name = name.lower().rstrip(".")
    address = _address(name)
    return str(address) if address is not None else name


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None
