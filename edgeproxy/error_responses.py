"""What the viewer gets for an error (DESIGN section 1, the exits of steps 3-9): the
distribution's custom error page (``custom_error_response``, reference 7.11) or the edge's
own error page (reference 6.5).

``page_rule`` is the one place that decides whether a custom page replaces a response: the
full flow asks it before viewer-response and for every edge error that allows a page, the
quick hit path (``Edge.hit``) asks it to know that a stored error needs the full flow.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from edgeproxy.config.custom_error_pages import ErrorPageRule, ErrorPages
from edgeproxy.errors import EdgeError, HandlerError
from edgeproxy.exchange import Exchange
from edgeproxy.messages import EdgeRequest, EdgeResponse, header_value
from edgeproxy.routes import Route, Routes
from edgeproxy.stages import Source
from edgeproxy.viewer.error_page import error_page

error_log = logging.getLogger("edgeproxy.error")

# The flow's cache lookup or origin fetch for a page request (``Edge._cached_or_fetched``).
PageFetch = Callable[[Exchange, Route, EdgeRequest], Awaitable[EdgeResponse]]

# Responses that never get a custom error page: handler-generated ones and redirects.
NO_ERROR_PAGE_SOURCES = frozenset(
    {
        Source.VIEWER_REQUEST_GENERATED,
        Source.ORIGIN_REQUEST_GENERATED,
        Source.FUNCTION_GENERATED,  # DG functions-event-structure
        Source.REDIRECT,
    }
)


def page_rule(pages: ErrorPages, source: Source, status: int) -> ErrorPageRule | None:
    """The custom error page that replaces a response from ``source`` with ``status``."""
    if source in NO_ERROR_PAGE_SOURCES:
        return None
    return pages.rule_for(status)


class ErrorResponses:
    """Custom error pages fetched through the flow, and the edge's own error responses."""

    def __init__(self, pages: ErrorPages, routes: Routes, fetch: PageFetch) -> None:
        self.pages = pages
        self.routes = routes
        self.fetch = fetch

    async def for_error(self, ex: Exchange, err: EdgeError) -> EdgeResponse:
        """An edge-made error, or the distribution's custom error page for its status when
        the error allows one (origin failures, geo blocks; not handler failures)."""
        if err.custom_page:
            page = await self.custom_page(ex, err.status, None)
            if page is not None:
                ex.error, ex.error_type = str(err), type(err)
                return page
        return error_response(ex, err)

    async def custom_page(
        self, ex: Exchange, status: int, viewer: EdgeRequest | None
    ) -> EdgeResponse | None:
        """``custom_error_response``: the page at its path, fetched through the behavior
        that matches that path (cached like any object), with the configured status. Its
        X-Cache is the table's for an edge-made response (stages.X_CACHE)."""
        rule = page_rule(self.pages, ex.source, status)
        if rule is None:
            return None
        page_request = _page_request(rule.page_path, viewer)
        try:
            response = await self.fetch(ex, self.routes.select(rule.page_path), page_request)
        except EdgeError as err:
            error_log.warning(
                "%s custom error page %s failed: %s", ex.request_id, rule.page_path, err
            )
            return None
        ex.source = Source.EDGE
        response.status = rule.response_code or status
        response.reason = ""
        return response


def error_response(ex: Exchange, err: EdgeError) -> EdgeResponse:
    """The edge's own error page; the error carries its status and X-Cache (errors.py)."""
    ex.source = Source.EDGE
    ex.error, ex.error_type = str(err), type(err)
    ex.x_cache = err.x_cache
    if isinstance(err, HandlerError):
        error_log.error("%s %s", ex.request_id, err)
    else:
        error_log.warning("%s %s: %s", ex.request_id, type(err).__name__, err)
    return error_page(err, ex.request_id)


def _page_request(path: str, viewer: EdgeRequest | None) -> EdgeRequest:
    """The edge's own GET for a custom error page; viewer-request does not run for it."""
    headers = [("Host", header_value(viewer.headers, "host") or "")] if viewer else []
    client = viewer.client_ip if viewer else "127.0.0.1"
    scheme = viewer.scheme if viewer else "http"
    return EdgeRequest("GET", path, "", headers, client, scheme=scheme)
