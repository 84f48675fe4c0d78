"""The demo's CloudFront Functions (config/functions/*.js) through the edge."""

from __future__ import annotations

from edgeproxy.testing import LocalEdge


def test_a_directory_is_rewritten_to_its_index_and_marked(edge: LocalEdge) -> None:
    answer = edge.get("/cf/docs/")

    assert answer.status == 200
    assert answer.origin_request is not None
    assert answer.origin_request.path == "/cf/docs/index.html"
    assert answer.headers["X-Powered-By-Function"] == "add_headers"
    assert answer.stages == ["viewer-request", "viewer-response"]


def test_a_path_without_extension_gets_index_html(edge: LocalEdge) -> None:
    answer = edge.get("/cf/guide")

    assert answer.origin_request is not None
    assert answer.origin_request.path == "/cf/guide/index.html"


def test_a_known_short_link_redirects_from_the_key_value_store(edge: LocalEdge) -> None:
    answer = edge.get("/go/docs")

    assert (answer.status, answer.headers["Location"]) == (301, "/cf/docs/")
    assert answer.x_cache == "FunctionGeneratedResponse from cloudfront"
    assert not answer.origin_reached


def test_an_unknown_short_link_goes_on_to_the_origin(edge: LocalEdge) -> None:
    answer = edge.get("/go/nowhere")

    assert answer.status == 200
    assert answer.origin_request is not None and answer.origin_request.path == "/go/nowhere"
