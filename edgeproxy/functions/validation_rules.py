"""The checks behind ``validation.RULES``: one function per rule, named after its row, each
taking the ``Subject`` (the result and what the edge sent the handler) and returning the problem
in CloudFront's log wording where the reference gives it, or None.

Rows run in table order and the structural ones come first, so a later check may rely on the
shapes an earlier one accepted (header maps are dicts of lists of dicts with string values).
Every check looks at types before it uses a value: whatever JSON-like value a handler returns,
nothing here raises. The origin object's rules live in ``origin_rules``; what the checks look
at, and the one pass over the header maps the header rows read, in ``validation_subject``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from edgeproxy.functions.events import BODY_ENCODINGS, status_description
from edgeproxy.functions.validation_subject import PREFIX, Kind, Subject
from edgeproxy.messages import BAD_VALUE_CHAR, EdgeRequest, Headers, title_case
from edgeproxy.stages import STAGE_RULES, Stage, body_shown_up_to, read_only_headers

_BODY_PROBLEM = "The body is not a string, is not an object, or exceeds the maximum size"
# What a written uri or query string may not hold [DG edge-functions-restrictions: spaces,
# control characters, "#"]: on the origin's request line a space or CR/LF would end the
# target and start a header of the function's choosing. Lone surrogates cannot be UTF-8.
_BAD_URL_CHAR = re.compile(r"[\x00-\x20\x7f#\ud800-\udfff]")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
# Read-only names per stage in a fixed order, so the same result always names the same header.
_READ_ONLY_ORDER = {stage: tuple(sorted(read_only_headers(stage))) for stage in Stage}
MAX_URL_CHARS = 8192  # uri + querystring must stay below this
VIEWER_COUNTRY = "cloudfront-viewer-country"


# --- helpers: each looks at types first --------------------------------------------------------


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _status_int(value: Any) -> int | None:
    """``status`` as an int when it is an int or a string of digits (reference 10 #3)."""
    if is_int(value):
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
        return int(value)
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _b64_decoded(data: str) -> bytes | None:
    compact = "".join(data.split())
    if len(compact) % 4 or not _BASE64.fullmatch(compact):
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _original_values(headers: Headers, names: frozenset[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in names:
            out.setdefault(lname, []).append(value)
    return out


# --- the checks, in table order ----------------------------------------------------------------


def result_is_object(s: Subject) -> str | None:
    if isinstance(s.result, dict):
        return None
    return "The Lambda function returned invalid JSON: The JSON output must be an object type."


def headers_is_object(s: Subject) -> str | None:
    return s.scan().not_object


def header_entry_is_array(s: Subject) -> str | None:
    return s.scan().not_array


def header_value_is_string(s: Subject) -> str | None:
    return s.scan().not_string


def header_name_valid(s: Subject) -> str | None:
    found = s.scan()
    return found.bad_name or found.bad_key


def header_value_chars(s: Subject) -> str | None:
    return s.scan().bad_char


def disallowed_header(s: Subject) -> str | None:
    return s.scan().disallowed


def read_only_header(s: Subject) -> str | None:
    if s.scan().unchanged:
        return None
    read_only = read_only_headers(s.stage)
    returned = s.returned_values()
    # A generated response has nothing to compare with: any read-only name is an addition.
    original = {} if s.kind is Kind.GENERATED else _original_values(s.original_headers, read_only)
    for name in _READ_ONLY_ORDER[s.stage]:
        before, after = original.get(name, []), returned.get(name, [])
        if before != after:
            verb = "add" if not before else "delete" if not after else "change"
            header = title_case(name)
            return f"{PREFIX}the function tried to {verb} read-only header, headerName : {header}"
    return None


def viewer_country_added(s: Subject) -> str | None:
    if s.scan().unchanged or VIEWER_COUNTRY not in s.returned_values():
        return None
    if _original_values(s.original_headers, frozenset({VIEWER_COUNTRY})):
        return None
    return f"{PREFIX}a viewer-request function may not add the header CloudFront-Viewer-Country"


def status_valid(s: Subject) -> str | None:
    if "status" not in s.result:
        return f"{PREFIX}the response has no status"
    status = _status_int(s.result["status"])
    if status is None or not 200 <= status <= 599:
        return (
            f"{PREFIX}the function returned an invalid status code {s.result['status']!r}; "
            "it must be a number between 200 and 599"
        )
    return None


def status_unchanged(s: Subject) -> str | None:
    status = _status_int(s.result["status"])
    if s.response is None or status == s.response.status:
        return None
    return (
        f"{PREFIX}a viewer-response function may not change the status code "
        f"(from {s.response.status} to {status})"
    )


def status_description_string(s: Subject) -> str | None:
    description = s.result.get("statusDescription")
    if description is None or isinstance(description, str):
        return None
    return f"{PREFIX}statusDescription must be a string, not {type(description).__name__}"


def status_description_chars(s: Subject) -> str | None:
    """A written statusDescription goes on the viewer's status line: CR or LF there would
    start a header (or a second response) of the function's choosing."""
    description = s.result.get("statusDescription")
    if description is None or description == _sent_description(s):
        return None  # judged as written: the origin's own reason is the writer's to check
    bad = BAD_VALUE_CHAR.search(description)
    if bad is None:
        return None
    return (
        f"{PREFIX}statusDescription contains an invalid character "
        f"'%{ord(bad.group()):02X}': {description!r}"
    )


def _sent_description(s: Subject) -> str | None:
    if s.response is None:
        return None
    return s.response.reason or status_description(s.response.status)


def body_is_string(s: Subject) -> str | None:
    body = s.result.get("body")
    if body is None or (isinstance(body, str) and _utf8(body)):
        return None
    what = "not valid UTF-8" if isinstance(body, str) else type(body).__name__
    return f"{_BODY_PROBLEM}: body is {what}"


def body_encoding(s: Subject) -> str | None:
    encoding = s.result.get("bodyEncoding", "text")
    if encoding is None:
        return None
    if encoding not in BODY_ENCODINGS:
        return f"{PREFIX}bodyEncoding must be text or base64, not {encoding!r}"
    body = s.result.get("body")
    if encoding == "base64" and isinstance(body, str) and _b64_decoded(body) is None:
        return f"{PREFIX}bodyEncoding is base64 but the body is not valid base64"
    return None


def no_content_body(s: Subject) -> str | None:
    if _status_int(s.result["status"]) == 204 and s.result.get("body"):
        return f"{PREFIX}a 204 response generated by a viewer-request function has a body"
    return None


def _body_length(result: dict[str, Any]) -> int:
    body = result.get("body") or ""
    if result.get("bodyEncoding") == "base64":
        return len(_b64_decoded(body) or b"")
    return len(body.encode("utf-8"))


def generated_size(s: Subject) -> str | None:
    if s.kind is Kind.RESPONSE and (s.stage is not Stage.ORIGIN_RESPONSE or "body" not in s.result):
        return None  # only a replaced body makes a response stage's result "generated"
    found = s.scan()
    size = _body_length(s.result) + found.wire_bytes
    if found.unchanged:
        size += sum(
            len(n) + len(e["value"]) + 4 for n, es in s.result["headers"].items() for e in es
        )
    limit = STAGE_RULES[s.stage].generated_size_limit
    if size <= limit:
        return None
    return (
        "The Lambda function returned an invalid response, the length of the body size and "
        f"header was {size} bytes which exceeded the CloudFront limit of {limit} bytes"
    )


def uri_valid(s: Subject) -> str | None:
    uri = s.result.get("uri", "/")
    if isinstance(uri, str) and uri.startswith("/") and _utf8(uri):
        return None
    return f"{PREFIX}the uri must be a string that starts with '/', not {uri!r}"


def uri_chars(s: Subject) -> str | None:
    uri = s.result.get("uri")
    if uri is None or (s.request is not None and uri == s.request.uri):
        return None  # only a changed uri is checked, like the query string
    bad = _BAD_URL_CHAR.search(uri)
    if bad is None:
        return None
    return (
        f"{PREFIX}the specified URI is in an invalid format: invalid character "
        f"'%{ord(bad.group()):02X}' in {uri!r}"
    )


def querystring_valid(s: Subject) -> str | None:
    query = s.result.get("querystring", "")
    if not isinstance(query, str):
        return f"{PREFIX}the querystring must be a string, not {type(query).__name__}"
    if s.request is not None and query == s.request.querystring:
        return None  # only a created or changed querystring is checked
    bad = _BAD_URL_CHAR.search(query)
    if bad:
        return f"{PREFIX}the querystring contains an invalid character {bad.group()!r}"
    return None


def url_length(s: Subject) -> str | None:
    request = s.request or EdgeRequest("GET", "/", "", [], "")
    uri = s.result.get("uri", request.uri)
    length = len(uri) + len(s.result.get("querystring", request.querystring))
    if length < MAX_URL_CHARS:
        return None
    return (
        f"{PREFIX}the uri and querystring are {length} characters together; "
        f"they must be fewer than {MAX_URL_CHARS}"
    )


def request_body(s: Subject) -> str | None:
    if not s.include_body or "body" not in s.result:
        return None
    body = s.result["body"]
    if not isinstance(body, dict):
        return f"{_BODY_PROBLEM}: the request body must be an object"
    action = body.get("action", "read-only")
    if action not in ("read-only", "replace"):
        return f"{PREFIX}body.action must be read-only or replace, not {action!r}"
    return (
        _replacement_body(body, body_shown_up_to(s.stage))
        if action == "replace"
        else None
    )


def _replacement_body(body: dict[str, Any], limit: int) -> str | None:
    encoding, data = body.get("encoding", "base64"), body.get("data", "")
    if encoding not in BODY_ENCODINGS:
        return f"{PREFIX}body.encoding must be text or base64, not {encoding!r}"
    if not isinstance(data, str) or not _utf8(data):
        what = "not valid UTF-8" if isinstance(data, str) else type(data).__name__
        return f"{_BODY_PROBLEM}: body.data is {what}"
    if encoding == "base64" and _b64_decoded(data) is None:
        return f"{PREFIX}body.encoding is base64 but body.data is not valid base64"
    # base64 text may be as long as the base64 of a body of the limit (reference 4.5).
    if encoding == "base64":
        size, most = len(data), 4 * math.ceil(limit / 3)
    else:
        size, most = len(data.encode("utf-8")), limit
    if size > most:
        return f"{_BODY_PROBLEM}: body.data is {size} bytes, over the limit of {most} bytes"
    return None
