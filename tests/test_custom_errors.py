"""custom_error_response rules: only those naming a page replace the origin's error."""

from __future__ import annotations

from edgeproxy.config.custom_error_pages import ErrorPageRule, ErrorPages
from edgeproxy.config.distribution import CustomErrorResponse


def rule(code: int, path: str | None, response: int | None) -> CustomErrorResponse:
    return CustomErrorResponse(error_code=code, response_page_path=path, response_code=response)


def test_rules_by_status():
    pages = ErrorPages([rule(404, "/404.html", 200), rule(503, None, None)])
    assert pages.rule_for(404) == ErrorPageRule(404, "/404.html", 200)
    assert pages.rule_for(503) is None  # only an error caching TTL: no page
    assert pages.rule_for(500) is None
