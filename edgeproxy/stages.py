"""The four Lambda@Edge stages and the rules that decide where each one leads.

Theory of operation (reference sections 1 and 3; DESIGN section 1)
-------------------------------------------------------------------
An exchange is one viewer request's trip through the edge:

    viewer ──► viewer-request ──► cache lookup ──hit──────────────────────────┐
                   │                   │miss                                  │
                   │generated          ▼                                      ▼
                   │            origin-request ──generated (cached)──► viewer-response ──► viewer
                   │                   │                                      ▲
                   │                   ▼                                      │
                   │            origin fetch ──► origin-response ──stored─────┘
                   ▼
                 viewer (not cached, no viewer-response)

* viewer-request runs on every request, before the cache. A response it returns goes
  straight to the viewer: never cached, viewer-response does not run.
* origin-request and origin-response run only when the edge goes to the origin (a miss or
  a stale object). A response origin-request returns is cached and skips origin-response.
* origin-response runs for every origin answer, errors included; what it returns is what is
  cached.
* viewer-response runs for hits and misses, but not for responses viewer-request generated,
  nor for edge-made errors and redirects, nor when the status is 400 or more. Its changes are
  never cached; it cannot change the status.

``STAGE_RULES`` holds what each stage may do; ``VIEWER_RESPONSE_RUNS`` and ``X_CACHE`` say,
from where a response came (its ``Source``), whether viewer-response runs and what X-Cache
says. The pipeline reads these tables; it holds no stage-specific ``if``s of its own. Each
field and table has one reader, the function that decides (tests/test_rule_tables.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum


class Stage(StrEnum):
    VIEWER_REQUEST = "viewer-request"
    ORIGIN_REQUEST = "origin-request"
    ORIGIN_RESPONSE = "origin-response"
    VIEWER_RESPONSE = "viewer-response"


class Source(Enum):
    """Where the response a viewer gets came from."""

    # Members are singletons: identity hashing keeps the per-request table lookups below
    # in C (Enum's own __hash__ is Python code, measurable on the hit path).
    __hash__ = object.__hash__

    ORIGIN = "origin"  # fetched now (a miss)
    CACHE = "cache"  # a stored object (a hit)
    REGIONAL = "regional"  # a stored object of the regional tier, missed by this PoP's cache
    REFRESHED = "refreshed"  # a stored object the origin confirmed with 304
    VIEWER_REQUEST_GENERATED = "viewer-request-generated"
    ORIGIN_REQUEST_GENERATED = "origin-request-generated"  # made now; cached copies are CACHE
    EDGE = "edge"  # an error page the edge made itself
    REDIRECT = "redirect"  # the viewer protocol policy's HTTP -> HTTPS redirect
    PREFLIGHT = "preflight"  # a CORS preflight answered by a response headers policy
    FUNCTION_GENERATED = "function-generated"  # a CloudFront Function's at viewer-request


@dataclass(frozen=True, slots=True)
class StageRule:
    """What one stage may do (reference sections 3 and 4)."""

    request_stage: bool  # handler gets and returns a request (or a generated response)
    # What the stage returns (a request stage's generated response, a response stage's
    # response) is stored; read only by ``misses.stored_under``. The viewer stages cannot
    # store (no key before the cache, nothing stored after it): their rows say False.
    generated_is_cached: bool
    has_origin: bool  # the event's request carries the ``origin`` object
    timeout_s: float  # default handler timeout
    generated_size_limit: int  # bytes of headers + body of a returned response
    body_truncate_at: int  # include_body: body bytes exposed to the handler
    read_only_headers: frozenset[str]  # may not be added, changed or deleted


_KB = 1024

STAGE_RULES: dict[Stage, StageRule] = {
    Stage.VIEWER_REQUEST: StageRule(
        request_stage=True,
        generated_is_cached=False,
        has_origin=False,
        timeout_s=5.0,
        generated_size_limit=40 * _KB,
        body_truncate_at=40 * _KB,
        read_only_headers=frozenset({"content-length", "host", "transfer-encoding", "via"}),
    ),
    Stage.ORIGIN_REQUEST: StageRule(
        request_stage=True,
        generated_is_cached=True,
        has_origin=True,
        timeout_s=30.0,
        generated_size_limit=1024 * _KB,
        body_truncate_at=1024 * _KB,
        read_only_headers=frozenset(
            {
                "accept-encoding",
                "content-length",
                "if-modified-since",
                "if-none-match",
                "if-range",
                "if-unmodified-since",
                "transfer-encoding",
                "via",
            }
        ),
    ),
    Stage.ORIGIN_RESPONSE: StageRule(
        request_stage=False,
        generated_is_cached=True,
        has_origin=True,
        timeout_s=30.0,
        generated_size_limit=1024 * _KB,
        body_truncate_at=0,
        read_only_headers=frozenset({"transfer-encoding", "via"}),
    ),
    Stage.VIEWER_RESPONSE: StageRule(
        request_stage=False,
        generated_is_cached=False,
        has_origin=False,
        timeout_s=5.0,
        generated_size_limit=40 * _KB,
        body_truncate_at=0,
        read_only_headers=frozenset({"warning", "via"}),
    ),
}


# Each StageRule field is read by one function here; everything else asks these.


def takes_request(stage: Stage) -> bool:
    """The handler gets and returns a request (or a generated response), not a response."""
    return STAGE_RULES[stage].request_stage


def may_include_body(stage: Stage) -> bool:
    """``include_body`` is allowed on this stage (reference 2.5: request stages only)."""
    return takes_request(stage)


def sees_origin(stage: Stage) -> bool:
    """The event's request carries the ``origin`` object, and a handler may change it."""
    return STAGE_RULES[stage].has_origin


def timeout_limit(stage: Stage) -> float:
    """The longest a function may run at this stage; also its default timeout."""
    return STAGE_RULES[stage].timeout_s


def timeout_for(stage: Stage, configured: float | None) -> float:
    """A function's timeout: as configured, else the stage's limit."""
    return configured if configured is not None else timeout_limit(stage)


def body_shown_up_to(stage: Stage) -> int:
    """Bytes of the body an include_body event shows (reference 4.5)."""
    return STAGE_RULES[stage].body_truncate_at


def read_only_headers(stage: Stage) -> frozenset[str]:
    """Headers a function may not add, change or delete at this stage (reference 4.2)."""
    return STAGE_RULES[stage].read_only_headers


# Does viewer-response run for a response from this source (status < 400 also required)?
VIEWER_RESPONSE_RUNS: dict[Source, bool] = {
    Source.ORIGIN: True,
    Source.CACHE: True,
    Source.REGIONAL: True,
    Source.REFRESHED: True,
    Source.VIEWER_REQUEST_GENERATED: False,
    Source.ORIGIN_REQUEST_GENERATED: True,
    Source.EDGE: False,
    Source.REDIRECT: False,
    Source.PREFLIGHT: False,
    Source.FUNCTION_GENERATED: False,
}

# X-Cache for a response from this source; any status >= 400 from the origin or the cache
# is "Error from cloudfront" instead (reference 6.5), edge errors carry their own value.
X_CACHE: dict[Source, str] = {
    Source.ORIGIN: "Miss from cloudfront",
    Source.CACHE: "Hit from cloudfront",
    # A regional edge cache hit is a hit of CloudFront's: the DG's Server-Timing example
    # pairs cdn-cache-hit with cdn-hit-layer;desc="REC" (understanding-response-headers-
    # policies.html#server-timing-header).
    Source.REGIONAL: "Hit from cloudfront",
    Source.REFRESHED: "RefreshHit from cloudfront",
    Source.VIEWER_REQUEST_GENERATED: "LambdaGeneratedResponse from cloudfront",
    Source.ORIGIN_REQUEST_GENERATED: "LambdaGeneratedResponse from cloudfront",
    Source.EDGE: "Error from cloudfront",
    Source.REDIRECT: "Redirect from cloudfront",
    Source.PREFLIGHT: "Miss from cloudfront",  # undocumented; the edge answers at once
    Source.FUNCTION_GENERATED: "FunctionGeneratedResponse from cloudfront",  # DG functions-tutorial
}

# Sources whose status >= 400 reads "Error from cloudfront" rather than their own X-Cache.
ERROR_X_CACHE_SOURCES = frozenset(
    {Source.ORIGIN, Source.CACHE, Source.REGIONAL, Source.REFRESHED}
)


def response_stages_run(status: int) -> bool:
    """No response stage sees a 101 Switching Protocols (the origin's answer to a WebSocket
    handshake): after it the connection is no longer HTTP, and a function may only return a
    status of 200 to 599 (reference 3)."""
    return status >= 200


def viewer_response_runs(source: Source, status: int) -> bool:
    """Whether the viewer-response stage runs for a response (reference section 1, step 12)."""
    return VIEWER_RESPONSE_RUNS[source] and status < 400 and response_stages_run(status)


def x_cache_for(source: Source, status: int) -> str:
    """The X-Cache value for a response from ``source`` with ``status``."""
    if status >= 400 and source in ERROR_X_CACHE_SOURCES:
        return "Error from cloudfront"
    return X_CACHE[source]
