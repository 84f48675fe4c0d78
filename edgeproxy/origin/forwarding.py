"""What the edge sends to the origin (reference 6.2): the viewer headers the behavior
forwards, plus the headers CloudFront adds itself (Host, User-Agent, X-Forwarded-For, Via,
the configured CloudFront-* headers; X-Amz-Cf-Id and origin custom headers on the wire)."""

from __future__ import annotations

from edgeproxy.cache.key import KeyPolicy, origin_headers, origin_querystring
from edgeproxy.messages import EdgeRequest, Headers, header_value, title_case, without_headers

AMAZON_USER_AGENT = "Amazon CloudFront"


def origin_request(request: EdgeRequest, policy: KeyPolicy, via: str) -> EdgeRequest:
    """The request as origin-request sees it and the origin receives it (minus the wire-only
    headers added by ``wire_headers``). ``request.origin`` must already be set; the
    CloudFront-* headers the behavior names are already among ``request.headers``."""
    assert request.origin is not None
    viewer = request.headers
    forwarded = origin_headers(policy, viewer, request.method)
    names = {k.lower() for k, _ in forwarded}
    added: Headers = []
    if "host" not in names:
        added.append(("Host", request.origin.domain_name))
    if "user-agent" not in names:
        added.append(("User-Agent", AMAZON_USER_AGENT))
    added.append(("X-Forwarded-For", _forwarded_for(viewer, request.client_ip)))
    previous_via = header_value(viewer, "via")
    added.append(("Via", f"{previous_via}, {via}" if previous_via else via))
    kept = [(k, v) for k, v in forwarded if k.lower() not in _REPLACED]
    forwarded_request = request.copy()
    forwarded_request.headers = [*added, *kept]
    forwarded_request.querystring = origin_querystring(policy, request.querystring)
    return forwarded_request


# Headers the edge writes itself, whatever the viewer sent.
_REPLACED = frozenset({"x-forwarded-for", "via"})


def _forwarded_for(viewer: Headers, client_ip: str) -> str:
    previous = header_value(viewer, "x-forwarded-for")
    return f"{previous},{client_ip}" if previous else client_ip


def wire_headers(request: EdgeRequest, request_id: str) -> Headers:
    """The headers actually sent: the request's own, then the origin's custom headers and
    X-Amz-Cf-Id (which handlers never see: it is a disallowed header). These two replace
    any header of the same name (any case) the viewer or a handler wrote: "If a header is
    present, CloudFront overwrites the header value" [DG add-origin-custom-headers], and the
    request id is always the edge's own, so an origin never sees a forged one. Custom header
    names go title-cased, as CloudFront sends them: configured as ``elb-key``, "at the origin
    it is received as ``Elb-Key``" (awsdocs/amazon-cloudfront-developer-guide#70)."""
    assert request.origin is not None
    custom = [(title_case(name), value) for name, value in request.origin.custom_headers]
    own = [*custom, ("X-Amz-Cf-Id", request_id)]
    names = frozenset(name.lower() for name, _ in own)
    return [*without_headers(request.headers, names), *own]
