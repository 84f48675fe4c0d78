"""``custom_error_response``: which origin error statuses get a page of the distribution's
own, and with what status (reference 7.11). Error caching TTLs live in cache/ttl.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorPageRule:
    error_code: int
    page_path: str
    response_code: int | None


class ErrorPages:
    """Error status → the page that replaces it; only rules that name a page count."""

    def __init__(self, responses: Iterable[Any]) -> None:
        self._rules = {
            r.error_code: ErrorPageRule(r.error_code, r.response_page_path, r.response_code)
            for r in responses
            if r.response_page_path
        }

    def rule_for(self, status: int) -> ErrorPageRule | None:
        return self._rules.get(status)
