"""Vary toward the viewer (cache/vary.py): what CloudFront keeps and what it removes
(DG RequestAndResponseBehaviorCustomOrigin, "HTTP response headers that CloudFront removes or
replaces" → Vary; "Content negotiation" for ``*``)."""

from edgeproxy.cache.selection import ALL, WHITELIST, headers_selection
from edgeproxy.cache.vary import VaryRule, viewer_vary

NOTHING = VaryRule(headers_selection(WHITELIST, ()))


def test_accept_encoding_and_cookie_are_always_kept() -> None:
    headers = [("Vary", "Accept-Encoding, X-A"), ("Vary", "cookie"), ("ETag", '"1"')]
    assert viewer_vary(NOTHING, headers) == [
        ("Vary", "Accept-Encoding"),
        ("Vary", "cookie"),
        ("ETag", '"1"'),
    ]


def test_forwarded_headers_are_kept_others_removed_and_an_empty_vary_goes() -> None:
    rule = VaryRule(headers_selection(WHITELIST, ("Accept-Language",)))
    assert viewer_vary(rule, [("Vary", "accept-language,User-Agent")]) == [
        ("Vary", "accept-language")
    ]
    assert viewer_vary(rule, [("Vary", "User-Agent, X-Other"), ("Vary", "")]) == []
    everything = VaryRule(headers_selection(ALL))
    assert viewer_vary(everything, [("Vary", "X-A,X-B")]) == [("Vary", "X-A,X-B")]  # untouched


def test_user_agent_with_a_device_header_and_star_with_min_ttl_0() -> None:
    devices = VaryRule(NOTHING.forwarded, device_headers=True, star=False)
    assert viewer_vary(devices, [("Vary", "User-Agent, *")]) == [("Vary", "User-Agent")]
    assert viewer_vary(NOTHING, [("Vary", "*")]) == [("Vary", "*")]
