"""Refusals before anything runs, what CloudFront removes from a request as it takes it in,
and which requests the quick hit path may answer."""

from __future__ import annotations

import pytest

from edgeproxy.errors import BodyNotAllowed, RequestTooLarge
from edgeproxy.messages import EdgeRequest
from edgeproxy.viewer.request_checks import (
    ServedHosts,
    as_received,
    check_limits,
    names_cloudfront_header,
    needs_full_flow,
)

LOCAL = ServedHosts(())  # localhost and loopback addresses; the requests here send no Host


def req(uri: str = "/", query: str = "", *headers: tuple[str, str], **kw: object) -> EdgeRequest:
    return EdgeRequest("GET", uri, query, list(headers), "127.0.0.1", **kw)  # type: ignore[arg-type]


def test_url_limit_counts_the_question_mark_only_with_a_query():
    check_limits(req("/" + "a" * 8191), LOCAL)
    check_limits(req("/" + "a" * 8189, "b"), LOCAL)
    with pytest.raises(RequestTooLarge):
        check_limits(req("/" + "a" * 8192), LOCAL)
    with pytest.raises(RequestTooLarge):
        check_limits(req("/" + "a" * 8190, "b"), LOCAL)


def test_get_with_a_body_is_refused():
    with pytest.raises(BodyNotAllowed):
        check_limits(req(body=b"x"), LOCAL)
    check_limits(EdgeRequest("POST", "/", "", [], "127.0.0.1", body=b"x"), LOCAL)


@pytest.mark.parametrize(
    ("header", "full"),
    [
        (("Referer", "https://a"), False),
        (("Range", "bytes=0-1"), True),
        (("if-none-match", '"x"'), True),
        (("If-Modified-Since", "x"), True),
        (("CloudFront-Viewer-Country", "DE"), True),
        (("Cookie", "a=1"), False),
        (("Accept-Encoding", "gzip"), False),
    ],
)
def test_which_headers_need_the_full_flow(header: tuple[str, str], full: bool):
    assert needs_full_flow(req("/", "", header)) is full


def test_cloudfront_headers_are_noticed_in_any_case():
    assert names_cloudfront_header([("cloudfront-is-mobile-viewer", "true")])
    assert not names_cloudfront_header([("CloudFrontish", "x"), ("Host", "a")])


def test_an_http10_viewer_loses_its_accept_encoding():
    sent = [("Host", "a"), ("Accept-Encoding", "gzip"), ("accept-encoding", "br")]
    old = req("/", "", *sent, http_version="1.0")
    assert as_received(old).headers == [("Host", "a")]
    assert old.headers == sent  # a new request: the viewer's is left as it came
    assert needs_full_flow(old)  # the quick hit path leaves the change to the full flow
    new = req("/", "", *sent)
    assert as_received(new) is new
    assert not needs_full_flow(new)
def test_the_answer_for_a_host_is_remembered_within_a_bound():
    hosts = ServedHosts(["www.example.com"])
    for n in range(5000):  # random Hosts: each decided, only the first ones remembered
        assert not hosts.serves(f"n{n}.example")
    assert hosts.serves("www.example.com:8080")  # decided even once the memory is full
    assert not hosts.serves("n1.example")
