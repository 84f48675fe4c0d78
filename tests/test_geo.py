"""Where a viewer is (config ranges, the offline database, the default), the value formats
of the geo headers, and geo restriction through a real edge, both ways."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import RecordingOrigin, StartEdge, distribution

from edgeproxy.config.distribution import GeoRestriction
from edgeproxy.config.edge_settings import GeoLocation, GeoRange, GeoSettings
from edgeproxy.messages import EdgeRequest
from edgeproxy.viewer.geo import (
    CountryDatabase,
    GeoGate,
    GeoLocator,
    Location,
    country_name,
    header_safe,
    location_from_settings,
)

BERLIN = {
    "cidr": "127.0.0.2/32",
    "country": "DE",
    "region": "BE",
    "city": "Berlin",
    "postal_code": "10115",
    "time_zone": "Europe/Berlin",
    "latitude": 52.52,
    "longitude": 13.405,
    "asn": 3320,
}


def locator(
    ranges: tuple[dict[str, Any], ...] = (),
    default: dict[str, Any] | None = None,
    restriction: dict[str, Any] | None = None,
) -> GeoLocator:
    settings = GeoSettings(
        ranges=tuple(GeoRange(**r) for r in ranges),
        default=GeoLocation(**default) if default else None,
    )
    return GeoLocator.from_settings(
        settings, GeoRestriction(**restriction) if restriction else None
    )


# -- value formats -------------------------------------------------------------------------


def test_config_values_become_cloudfront_header_values():
    location = location_from_settings(GeoRange(**BERLIN))
    assert location == Location(
        country="DE",
        country_name="Germany",  # filled in from ISO 3166
        region="BE",
        region_name="Berlin",  # the subdivision DE-BE
        city="Berlin",
        postal_code="10115",
        time_zone="Europe/Berlin",
        latitude="52.52000",  # five decimals, as CloudFront writes them
        longitude="13.40500",
        asn="3320",
    )


def test_negative_coordinates_keep_five_decimals():
    location = location_from_settings(
        GeoLocation(country="US", region="OH", latitude=41.5882, longitude=-81.5492)
    )
    assert (location.latitude, location.longitude) == ("41.58820", "-81.54920")
    assert location.country_name == "United States"  # the common name, as CloudFront's
    assert location.region_name == "Ohio"


def test_non_ascii_values_are_percent_encoded():
    location = location_from_settings(
        GeoLocation(country="DE", city="München", region_name="Bayern")
    )
    assert location.city == "M%C3%BCnchen"
    assert header_safe("São Paulo") == "S%C3%A3o Paulo"  # spaces stay, like "United States"
    assert header_safe("Cleveland") == "Cleveland"
    assert location_from_settings(GeoLocation(country="CI")).country_name == "C%C3%B4te d'Ivoire"


def test_config_names_win_over_iso_names():
    location = location_from_settings(GeoLocation(country="GB", country_name="Britain"))
    assert location.country_name == "Britain"


def test_country_names_are_the_common_ones():
    assert country_name("KR") == "South Korea"
    assert country_name("DE") == "Germany"
    assert country_name("XX") == ""


# -- sources and their precedence ----------------------------------------------------------


def test_range_then_default():
    geo = locator(ranges=(BERLIN,), default={"country": "US", "city": "Cleveland"})
    found = geo.locate("127.0.0.2")
    assert found is not None and (found.country, found.city) == ("DE", "Berlin")
    other = geo.locate("127.0.0.1")
    assert other is not None and (other.country, other.city) == ("US", "Cleveland")


def test_the_most_specific_range_wins_whatever_the_order():
    geo = locator(
        ranges=(
            {"cidr": "127.0.0.0/8", "country": "FR"},
            {"cidr": "127.0.0.2/32", "country": "DE"},
            {"cidr": "::1/128", "country": "JP"},
        )
    )
    found = [geo.locate(ip) for ip in ("127.0.0.2", "127.0.0.9", "::1")]
    assert [f.country if f else None for f in found] == ["DE", "FR", "JP"]


def test_an_ipv4_viewer_on_a_dual_stack_socket_matches_ipv4_ranges():
    geo = locator(ranges=(BERLIN,))
    found = geo.locate("::ffff:127.0.0.2")
    assert found is not None and found.country == "DE"


def test_database_locates_public_addresses_before_the_default():
    geo = locator(default={"country": "US", "city": "Cleveland"})
    for address, country in (("1.0.16.1", "JP"), ("81.169.145.105", "DE"), ("2001:200::1", "JP")):
        found = geo.locate(address)
        assert found is not None
        assert found.country == country
        assert found.country_name == country_name(country)
        assert found.city == ""  # the database knows countries only: no default city mixed in


def test_a_range_wins_over_the_database():
    geo = locator(ranges=({"cidr": "1.0.16.0/24", "country": "NZ"},))
    found = geo.locate("1.0.16.1")
    assert found is not None and found.country == "NZ"


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.7", "::1", "203.0.113.5"])
def test_local_private_and_unallocated_addresses_get_the_default(address: str):
    geo = locator(default={"country": "US"})
    found = geo.locate(address)
    assert found is not None and found.country == "US"


def test_nothing_known_is_none():
    assert locator().locate("127.0.0.1") is None
    assert locator().locate("not an address") is None


def test_database_skips_what_is_not_public():
    import ipaddress

    database = CountryDatabase()
    assert database.locate(ipaddress.ip_address("10.0.0.1")) is None
    found = database.locate(ipaddress.ip_address("8.8.8.8"))
    assert found is not None and (found.country, found.country_name) == ("US", "United States")


# -- geo restriction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "country", "allowed"),
    [
        ("whitelist", "DE", True),
        ("whitelist", "US", False),
        ("blacklist", "DE", False),
        ("blacklist", "US", True),
        ("whitelist", None, True),  # nobody knows the country: it passes
        ("blacklist", None, True),
        ("none", "DE", True),
    ],
)
def test_gate(kind: str, country: str | None, allowed: bool):
    gate = GeoGate(kind, frozenset({"DE"}) if kind != "none" else frozenset())
    assert gate.allows(country) is allowed


def request_from(ip: str, *headers: tuple[str, str]) -> EdgeRequest:
    return EdgeRequest("GET", "/", "", list(headers), ip)


def test_restriction_judges_the_located_country_or_a_trusted_viewer_value():
    geo = locator(
        ranges=(BERLIN,),
        default={"country": "US"},
        restriction={"restriction_type": "blacklist", "locations": ["DE"]},
    )
    assert not geo.admits(request_from("127.0.0.2"), trust_viewer_headers=False)
    assert geo.admits(request_from("127.0.0.1"), trust_viewer_headers=False)
    spoofed = request_from("127.0.0.1", ("CloudFront-Viewer-Country", "de"))
    assert not geo.admits(spoofed, trust_viewer_headers=True)
    assert geo.admits(spoofed, trust_viewer_headers=False)  # untrusted: the located US counts


def geo_distribution(origin: RecordingOrigin, kind: str, locations: list[str]) -> dict[str, Any]:
    document = distribution(origin.port)
    document["distribution"]["restrictions"] = {
        "geo_restriction": {"restriction_type": kind, "locations": locations}
    }
    document["edge"]["geo"] = {"ranges": [BERLIN], "default": {"country": "US"}}
    return document


async def test_blacklist_answers_cloudfronts_403_to_listed_countries(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(geo_distribution(origin, "blacklist", ["US"]))
    blocked = await viewer.get("/page")  # 127.0.0.1: the default, US
    assert blocked.status_code == 403
    assert blocked.headers["x-cache"] == "Error from cloudfront"
    assert "configured to block access from your country" in blocked.text
    assert blocked.headers["server"] == "CloudFront"
    assert origin.requests_for("/page") == []
    records = await viewer.exchanges()
    assert records[-1]["stages"] == []


async def test_blacklist_serves_other_countries(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(geo_distribution(origin, "blacklist", ["DE"]))
    response = await viewer.get("/page")
    assert response.status_code == 200
    assert response.headers["x-cache"] == "Miss from cloudfront"


async def test_whitelist_serves_listed_countries_only(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(geo_distribution(origin, "whitelist", ["US"]))
    assert (await viewer.get("/page")).status_code == 200
    viewer = await start_edge(geo_distribution(origin, "whitelist", ["DE"]))
    response = await viewer.get("/page")
    assert response.status_code == 403
    assert "block access from your country" in response.text


async def test_a_viewer_nobody_can_place_passes_a_whitelist(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = geo_distribution(origin, "whitelist", ["DE"])
    document["edge"]["geo"] = {}  # no range, no default; loopback is not in the database
    viewer = await start_edge(document)
    assert (await viewer.get("/page")).status_code == 200


async def test_a_trusted_viewer_country_is_judged_too(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = geo_distribution(origin, "blacklist", ["DE"])
    document["edge"]["geo"]["trust_viewer_headers"] = True
    viewer = await start_edge(document)
    blocked = await viewer.get("/page", headers={"CloudFront-Viewer-Country": "DE"})
    assert blocked.status_code == 403
    assert (await viewer.get("/page")).status_code == 200
