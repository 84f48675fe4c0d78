"""Every rule CloudFront enforces on what a Lambda@Edge handler returns, as one table.

``RULES`` lists the rules in the order they are checked; each row says which stages and which
kind of result it applies to, and holds a check that returns the problem (CloudFront's log
wording where the reference gives it) or None. The first problem found raises ``RuleBroken``, a
``HandlerValidationError`` (502, ``LambdaValidationError``) naming the row. Structural rows come
first, so a later row may rely on the shapes an earlier row accepted. The checks themselves
live in ``validation_rules`` (headers, status, body, URL) and ``origin_rules`` (the origin);
what they look at, in ``validation_subject``.

A result is one of three kinds: a ``request`` (returned by viewer-request or origin-request),
a ``generated`` response (a request stage's result with a ``status`` key) or a ``response``
(returned by origin-response or viewer-response).

Read-only headers are compared with the request or response the edge holds, not with the event
dict: handlers usually edit the event in place and return part of it, so the dict no longer
shows what was sent.

Whatever JSON-like value a handler returns, validation raises nothing but
``HandlerValidationError``: every check looks at types before it uses a value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeproxy.errors import HandlerValidationError, validation_answer
from edgeproxy.functions.origin_object_rules import origin_valid
from edgeproxy.functions.validation_rules import (
    body_encoding,
    body_is_string,
    disallowed_header,
    generated_size,
    header_entry_is_array,
    header_name_valid,
    header_value_chars,
    header_value_is_string,
    headers_is_object,
    no_content_body,
    querystring_valid,
    read_only_header,
    request_body,
    result_is_object,
    status_description_chars,
    status_description_string,
    status_unchanged,
    status_valid,
    uri_chars,
    uri_valid,
    url_length,
    viewer_country_added,
)
from edgeproxy.functions.validation_subject import Kind, Subject
from edgeproxy.messages import EdgeRequest, EdgeResponse
from edgeproxy.stages import Stage, takes_request

__all__ = [
    "RULES",
    "Kind",
    "Rule",
    "RuleBroken",
    "Subject",
    "Violation",
    "find_violation",
    "result_kind",
    "validate_request_result",
    "validate_response_result",
]

Check = Callable[[Subject], "str | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    check: Check
    kinds: frozenset[Kind] = frozenset(Kind)
    stages: frozenset[Stage] = frozenset(Stage)


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    detail: str


class RuleBroken(HandlerValidationError):
    """A HandlerValidationError that names the row of ``RULES`` the result broke; its page
    gives CloudFront's reason line for that rule (``errors.LAMBDA_ANSWERS``)."""

    def __init__(self, detail: str, *, rule: str, stage: str = "", handler: str = "") -> None:
        super().__init__(detail, stage=stage, handler=handler)
        self.rule = rule
        self.page_message = validation_answer(rule).page_message


_REQUEST = frozenset({Kind.REQUEST})
_RESPONSES = frozenset({Kind.GENERATED, Kind.RESPONSE})
_GENERATED = frozenset({Kind.GENERATED})

RULES: tuple[Rule, ...] = (
    Rule("result-is-object", result_is_object),
    Rule("headers-is-object", headers_is_object),
    Rule("header-entry-is-array", header_entry_is_array),
    Rule("header-value-is-string", header_value_is_string),
    Rule("header-name-valid", header_name_valid),
    Rule("header-value-chars", header_value_chars),
    Rule("disallowed-header", disallowed_header),
    Rule("read-only-header", read_only_header),
    Rule("viewer-country-added", viewer_country_added, _REQUEST, frozenset({Stage.VIEWER_REQUEST})),
    Rule("status-valid", status_valid, _RESPONSES),
    Rule("status-unchanged", status_unchanged, _RESPONSES, frozenset({Stage.VIEWER_RESPONSE})),
    Rule("status-description-string", status_description_string, _RESPONSES),
    Rule("status-description-chars", status_description_chars, _RESPONSES),
    Rule("body-is-string", body_is_string, _RESPONSES),
    Rule("body-encoding", body_encoding, _RESPONSES),
    Rule("no-content-body", no_content_body, _GENERATED, frozenset({Stage.VIEWER_REQUEST})),
    Rule("generated-size", generated_size, _RESPONSES),
    Rule("uri-valid", uri_valid, _REQUEST),
    Rule("uri-chars", uri_chars, _REQUEST),
    Rule("querystring-valid", querystring_valid, _REQUEST),
    Rule("url-length", url_length, _REQUEST),
    Rule("request-body", request_body, _REQUEST),
    Rule("origin-valid", origin_valid, _REQUEST, frozenset({Stage.ORIGIN_REQUEST})),
)

# The rows that apply to each (stage, kind), in table order: computed once, read per call.
_APPLICABLE: dict[tuple[Stage, Kind], tuple[Rule, ...]] = {
    (stage, kind): tuple(r for r in RULES if stage in r.stages and kind in r.kinds)
    for stage in Stage
    for kind in Kind
}


def result_kind(stage: Stage, result: Any) -> Kind:
    if not takes_request(stage):
        return Kind.RESPONSE
    if isinstance(result, dict) and "status" in result:
        return Kind.GENERATED
    return Kind.REQUEST


def find_violation(subject: Subject) -> Violation | None:
    """The first rule ``subject`` breaks, or None."""
    for rule in _APPLICABLE[subject.stage, subject.kind]:
        detail = rule.check(subject)
        if detail is not None:
            return Violation(rule.name, detail)
    return None


def _raise_first(subject: Subject, handler: str) -> bool:
    violation = find_violation(subject)
    if violation is not None:
        raise RuleBroken(
            violation.detail, rule=violation.rule, stage=subject.stage.value, handler=handler
        )
    return subject.scan().unchanged


def validate_request_result(
    stage: Stage, result: Any, request: EdgeRequest, include_body: bool, *, handler: str = ""
) -> bool:
    """Check what a viewer-request / origin-request handler returned for ``request``; True
    when its ``headers`` are exactly those sent (the caller may keep the request's own)."""
    kind = result_kind(stage, result)
    subject = Subject(stage, kind, result, request.headers, request, None, include_body)
    return _raise_first(subject, handler)


def validate_response_result(
    stage: Stage, result: Any, response: EdgeResponse, *, handler: str = ""
) -> bool:
    """Check what an origin-response / viewer-response handler returned for ``response``;
    True when its ``headers`` are exactly those sent."""
    subject = Subject(stage, Kind.RESPONSE, result, response.headers, None, response)
    return _raise_first(subject, handler)
