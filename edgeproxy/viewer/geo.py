"""Where a viewer is, and whether its country may be served (reference 6.1; geo restriction).

A viewer's location comes from the first source that knows it:

1. ``CloudFront-Viewer-*`` values the viewer sent, when ``edge.geo.trust_viewer_headers`` is
   on (``viewer/cloudfront_headers.py`` applies them header by header; they count as
   CloudFront's own);
2. ``edge.geo.ranges``: IP networks mapped to locations in the config (the most specific
   network wins), so a loopback alias such as 127.0.0.2 can be Germany;
3. the offline database of the ``iptocc`` package (country codes from the five Regional
   Internet Registries, shipped inside the wheel, nothing downloaded at run time), for
   public addresses only: it knows the country, and the country's name comes from
   ``pycountry``; it knows no city, region, ASN...;
4. ``edge.geo.default``.

``Location`` holds header-ready values in CloudFront's formats: latitude and longitude with
five decimals, non-ASCII characters percent-encoded (RFC 3986), a missing country name or
region name filled in from ISO 3166. An empty field is one no source knows: its header is
not added.

``GeoGate`` is ``restrictions.geo_restriction``: a whitelist or a blacklist of countries.
A viewer whose country nobody knows passes (CloudFront cannot place it either).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from cachetools import LRUCache

from edgeproxy.config.distribution import GeoRestriction
from edgeproxy.config.edge_settings import GeoLocation, GeoSettings
from edgeproxy.messages import EdgeRequest, header_value

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

COUNTRY_HEADER = "cloudfront-viewer-country"

# Printable ASCII stays as it is (spaces and commas too: "United States", "Korea, Republic
# of"); anything else is percent-encoded as UTF-8, as CloudFront does for geo values.
_ASCII_SAFE = "".join(chr(c) for c in range(0x20, 0x7F))


def header_safe(value: str) -> str:
    """A geo value as CloudFront writes it in a header: non-ASCII percent-encoded."""
    return value if value.isascii() and value.isprintable() else quote(value, safe=_ASCII_SAFE)


@dataclass(frozen=True, slots=True)
class Location:
    """A viewer's location as header values; empty strings are fields nobody knows."""

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


def location_from_settings(settings: GeoLocation) -> Location:
    """``edge.geo.default`` or one of ``edge.geo.ranges`` (a GeoLocation model) as a Location,
    with the country and region names filled in from ISO 3166 when the config omits them."""
    country, region = settings.country, _text(settings.region)
    named_region = region_name(country, settings.region) if settings.region else ""
    return Location(
        country=header_safe(country),
        country_name=_text(settings.country_name) or header_safe(country_name(country)),
        region=region,
        region_name=_text(settings.region_name) or header_safe(named_region),
        city=_text(settings.city),
        postal_code=_text(settings.postal_code),
        time_zone=_text(settings.time_zone),
        latitude=_degrees(settings.latitude),
        longitude=_degrees(settings.longitude),
        metro_code=_text(settings.metro_code),
        asn=str(settings.asn) if settings.asn is not None else "",
    )


def _text(value: str | None) -> str:
    return header_safe(value) if value else ""


def _degrees(value: float | None) -> str:
    return f"{value:.5f}" if value is not None else ""  # five decimals, as CloudFront writes


def country_location(country: str) -> Location:
    """A location known only by its country (a viewer-sent CloudFront-Viewer-Country)."""
    return Location(country, header_safe(country_name(country)))


def country_name(code: str) -> str:
    """The English name of an ISO 3166-1 alpha-2 code, "" when unknown."""
    return _country_names().get(code, "")


@functools.cache
def _country_names() -> Mapping[str, str]:
    """ISO 3166 names from ``pycountry``, read once per process (reference data that never
    changes while we run): the common name where ISO's is formal ("South Korea", not "Korea,
    Republic of"), as CloudFront's Country-Name reads."""
    import pycountry

    # getattr: pycountry records carry ``common_name`` only where one exists (no config here)
    return MappingProxyType(
        {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}
    )


def region_name(country: str, region: str) -> str:
    """The name of a first-level subdivision ("US", "OH" → "Ohio"), "" when unknown. Read
    when a config is loaded, never per request."""
    import pycountry

    lookup: Callable[..., Any] = pycountry.subdivisions.get  # pycountry's get is untyped
    found = lookup(code=f"{country}-{region}")
    return str(found.name) if found is not None else ""


class CountryDatabase:
    """The offline IP-to-country database shipped by ``iptocc`` (RIR allocation data, updated
    with each release of the package). Public addresses only; country code and name."""

    def __init__(self) -> None:
        import iptocc

        self._lookup: Callable[[str], str | None] = iptocc.country_code
        self._found: dict[str, Location] = {}  # one Location per country, at most ~250

    def locate(self, address: IPAddress) -> Location | None:
        if not address.is_global:
            return None
        code = self._lookup(str(address))
        if not code:
            return None
        location = self._found.get(code)
        if location is None:
            location = self._found[code] = country_location(code)
        return location


@dataclass(frozen=True, slots=True)
class GeoGate:
    """``restrictions.geo_restriction``: which countries may be served."""

    restriction_type: str = "none"  # "none" | "whitelist" | "blacklist"
    locations: frozenset[str] = frozenset()

    @classmethod
    def from_restriction(cls, restriction: GeoRestriction) -> GeoGate:
        return cls(restriction.restriction_type, frozenset(restriction.locations))

    @property
    def active(self) -> bool:
        return self.restriction_type != "none"

    def allows(self, country: str | None) -> bool:
        """Whether a viewer from ``country`` is served; an unknown country passes."""
        if not self.active or not country:
            return True
        return (country in self.locations) == (self.restriction_type == "whitelist")


@dataclass(frozen=True, slots=True)
class GeoLocator:
    """The location sources after the viewer's own headers: ranges, database, default; and
    the geo restriction that uses them."""

    ranges: tuple[tuple[Network, Location], ...] = ()  # most specific network first
    default: Location | None = None
    database: CountryDatabase | None = None
    gate: GeoGate = GeoGate()
    # Viewer address → location: parsing an address and testing it against the networks
    # costs microseconds, and a viewer sends many requests from one address.
    _known: LRUCache[str, Location | None] = field(
        default_factory=lambda: LRUCache(maxsize=4096), compare=False, repr=False
    )

    @classmethod
    def from_settings(
        cls, geo: GeoSettings, restriction: GeoRestriction | None = None
    ) -> GeoLocator:
        """From ``edge.geo`` (GeoSettings) and ``restrictions.geo_restriction``."""
        ranges = sorted(
            (
                (ipaddress.ip_network(r.cidr, strict=False), location_from_settings(r))
                for r in geo.ranges
            ),
            key=lambda pair: -pair[0].prefixlen,
        )
        return cls(
            ranges=tuple(ranges),
            default=location_from_settings(geo.default) if geo.default else None,
            database=CountryDatabase(),
            gate=GeoGate.from_restriction(restriction) if restriction else GeoGate(),
        )

    def locate(self, ip: str) -> Location | None:
        """The location of a viewer address: ranges, then the database, then the default."""
        try:
            return self._known[ip]
        except KeyError:
            location = self._known[ip] = self._lookup(ip)
            return location

    def _lookup(self, ip: str) -> Location | None:
        try:
            address = _unmapped(ipaddress.ip_address(ip))
        except ValueError:
            return self.default
        for network, location in self.ranges:
            if address in network:
                return location
        if self.database is not None:
            found = self.database.locate(address)
            if found is not None:
                return found
        return self.default

    def viewer_country(self, request: EdgeRequest, trust_viewer_headers: bool) -> str | None:
        """The country geo restriction judges: a trusted viewer-sent value first."""
        if trust_viewer_headers:
            sent = header_value(request.headers, COUNTRY_HEADER)
            if sent:
                return sent.strip().upper()
        location = self.locate(request.client_ip)
        return location.country if location is not None else None

    def admits(self, request: EdgeRequest, trust_viewer_headers: bool) -> bool:
        """Whether geo restriction lets this viewer in (no lookup when there is none)."""
        if not self.gate.active:
            return True
        return self.gate.allows(self.viewer_country(request, trust_viewer_headers))


def _unmapped(address: IPAddress) -> IPAddress:
    """``::ffff:127.0.0.2`` (an IPv4 viewer on a dual-stack socket) → ``127.0.0.2``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
