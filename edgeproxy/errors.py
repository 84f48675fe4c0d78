"""The error tree. Every error the viewer can see knows its status and ``X-Cache`` value,
so rendering needs no ``isinstance`` ladder.

    EdgeError                      viewer-facing; .status, .x_cache, .page_message
    ├── ViewerError                the viewer's request is refused before anything runs
    │   ├── BadRequest             400  malformed request (or request framing)
    │   ├── CodingNotImplemented   501  a transfer coding other than chunked
    │   ├── RequestTooLarge        413  request line + headers or URL over the limit
    │   ├── MethodNotAllowed       403  method outside the behavior's allowed_methods
    │   ├── BodyNotAllowed         403  a GET that carries a body
    │   ├── ProtocolNotAllowed     403  https-only behavior reached over HTTP
    │   ├── UnknownHost            403  a Host that is none of the distribution's names
    │   └── GeoBlocked             403  the viewer's country is refused by geo restriction
    ├── OriginError                the origin could not give an answer
    │   ├── OriginConnectError     502  refused, unreachable, TLS failure
    │   │   └── OriginDnsError     502  the origin's name does not resolve
    │   ├── OriginResponseError    502  malformed, oversized, truncated or no answer
    │   └── OriginTimeout          504  no connection within connection_timeout, or no
    │                                   answer within origin_read_timeout
    ├── InternalError              502  a defect of the edge itself (logged with traceback)
    └── HandlerError               a Lambda@Edge handler failed (.stage, .handler, .detail)
        ├── HandlerValidationError 502  LambdaValidationError: the result broke a rule
        ├── HandlerExecutionError  503  LambdaExecutionError: the handler raised
        ├── HandlerTimeout         503  LambdaExecutionError: the handler ran too long
        ├── HandlerThrottled       503  LambdaLimitExceeded: the edge's limit of concurrent
        │                               executions was reached (Lambda's throttling)
        ├── FunctionExecutionError 503  FunctionExecutionError: a CloudFront Function threw,
        │                               returned what CloudFront refuses, or exceeded memory
        └── FunctionThrottled      503  FunctionThrottledError: a CloudFront Function ran
                                        past its compute-time limit

    A handler failure's status, X-Cache and page lines are rows of ``LAMBDA_ANSWERS``.

    ConfigError                    startup only: every problem of a config, with key paths
    HandlerLoadError               startup only: a handler file missing or not importable
    ListenerError                  startup only: a listener cannot bind its address

Foreign exceptions (aiohttp, user code) are converted once, where they are caught, with
``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

_CANT_CONNECT = (
    "We can't connect to the server for this app or website at this time. There might be too "
    "much traffic or a configuration error. Try again later, or contact the app or website owner."
)


class EdgeError(Exception):
    """An answer the edge gives instead of the object the viewer asked for."""

    status: ClassVar[int] = 502
    x_cache: ClassVar[str] = "Error from cloudfront"
    page_message: str = _CANT_CONNECT  # the page's message lines (an instance may say more)
    # Whether a custom_error_response page may replace this answer: origin failures and geo
    # blocks yes; handler failures, bad requests and CloudFront's own limits no (7.11).
    custom_page: ClassVar[bool] = False

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail


class ViewerError(EdgeError):
    status = 400
    page_message = "Bad request."


class BadRequest(ViewerError):
    status = 400


class CodingNotImplemented(ViewerError):
    """A Transfer-Encoding with a coding the edge does not decode (RFC 9112 6.1)."""

    status = 501


class RequestTooLarge(ViewerError):
    status = 413
    page_message = "Bad request."


class MethodNotAllowed(ViewerError):
    status = 403
    page_message = (
        "This distribution is not configured to allow the HTTP request method that was used "
        "for this request. The distribution supports only cachable requests."
    )


class BodyNotAllowed(ViewerError):
    """A GET that carries a body: CloudFront refuses it (reference 1, step 1)."""

    status = 403


class ProtocolNotAllowed(ViewerError):
    status = 403
    page_message = "Bad request."


class UnknownHost(ViewerError):
    """A Host that is not the distribution's domain name nor one of its aliases: CloudFront's
    403 for an alternate domain name missing from the distribution (DG
    http-403-permission-denied; page as captured in aws-amplify/amplify-hosting#2734)."""

    status = 403
    page_message = f"Bad request.\n{_CANT_CONNECT}"


class GeoBlocked(ViewerError):
    """``restrictions.geo_restriction`` refuses the viewer's country."""

    status = 403
    page_message = (
        "The Amazon CloudFront distribution is configured to block access from your country."
    )
    custom_page = True


class OriginError(EdgeError):
    status = 502
    custom_page = True


class OriginConnectError(OriginError):
    status = 502


class OriginDnsError(OriginConnectError):
    """The origin's domain name does not resolve (not in ``edge.resolve``, nor in DNS)."""


class OriginResponseError(OriginError):
    status = 502


class OriginTimeout(OriginError):
    status = 504


class InternalError(EdgeError):
    """A defect in the edge itself; logged with its traceback, answered like CloudFront."""

    status = 502


class HandlerError(EdgeError):
    """A handler failed; ``stage`` and ``handler`` say which, ``detail`` says how."""

    def __init__(self, detail: str, *, stage: str = "", handler: str = "") -> None:
        super().__init__(detail)
        self.stage = stage
        self.handler = handler

    def __str__(self) -> str:
        where = f"{self.stage} handler {self.handler}" if self.handler else self.stage
        return f"{where}: {self.detail}" if where else self.detail


@dataclass(frozen=True, slots=True)
class LambdaAnswer:
    """What the viewer gets for a handler failure: status, X-Cache and the page's lines."""

    status: int
    x_cache: str
    page_message: str


def _answer(status: int, result: str, line: str) -> LambdaAnswer:
    # Every captured Lambda@Edge page follows its reason line with the can't-connect line.
    return LambdaAnswer(status, f"{result} from cloudfront", f"{line}\n{_CANT_CONNECT}")


_EXECUTION_LINE = (
    "The Lambda function associated with the CloudFront distribution is invalid or doesn't "
    "have the required permissions."
)
_FAILED_VALIDATION = "The Lambda function result failed validation"
_BODY_LINE = (
    f"{_FAILED_VALIDATION}: The body is not a string, is not an object, or exceeds the "
    "maximum size."
)
VALIDATION = "validation"  # the row for a broken rule without a captured line of its own

# CloudFront's answer for each way a function fails, as captured from real CloudFront (the
# sources are in docs/fidelity.md). A timeout is answered as an execution error (a timed-out
# call is one: serverless-next.js#2014, cognito-at-edge#86); LambdaLimitExceeded is
# throttling only. A broken validation rule has its own row, ``validation/<rule>`` (the rule's
# name in functions/validation.py RULES), where CloudFront's page names the reason.
LAMBDA_ANSWERS: dict[str, LambdaAnswer] = {
    "execution": _answer(503, "LambdaExecutionError", _EXECUTION_LINE),
    "timeout": _answer(503, "LambdaExecutionError", _EXECUTION_LINE),
    "throttled": _answer(
        503,
        "LambdaLimitExceeded",
        "The Lambda function associated with the CloudFront distribution was throttled.",
    ),
    VALIDATION: _answer(502, "LambdaValidationError", f"{_FAILED_VALIDATION}."),
    "validation/result-is-object": _answer(
        502,
        "LambdaValidationError",
        "The Lambda function returned invalid JSON: The JSON output must be an object type.",
    ),
    "validation/header-entry-is-array": _answer(
        502,
        "LambdaValidationError",
        "The Lambda function returned an invalid entry in the headers object: Each header "
        "entry in the headers object must be an array.",
    ),
    "validation/disallowed-header": _answer(
        502,
        "LambdaValidationError",
        f"{_FAILED_VALIDATION}: The function tried to add a blacklisted header.",
    ),
    "validation/read-only-header": _answer(
        502,
        "LambdaValidationError",
        f"{_FAILED_VALIDATION}: The function tried to add, delete, or change a read-only header.",
    ),
    "validation/body-is-string": _answer(502, "LambdaValidationError", _BODY_LINE),
    "validation/body-encoding": _answer(502, "LambdaValidationError", _BODY_LINE),
    "validation/generated-size": _answer(502, "LambdaValidationError", _BODY_LINE),
    # CloudFront Functions (docs/functions.md): an execution error is 503
    # FunctionExecutionError (captured, reference 8.1); past the compute limit CloudFront
    # throttles the function, 503 FunctionThrottledError (public reports); the page lines
    # are inferred from the Lambda@Edge pages, not captured.
    "function-execution": _answer(
        503,
        "FunctionExecutionError",
        "The CloudFront function associated with the CloudFront distribution is invalid or "
        "could not run.",
    ),
    "function-throttled": _answer(
        503,
        "FunctionThrottledError",
        "The CloudFront function associated with the CloudFront distribution was throttled.",
    ),
}


def validation_answer(rule: str) -> LambdaAnswer:
    """The answer for a result that broke ``rule``: its own row, else the generic one."""
    return LAMBDA_ANSWERS.get(f"{VALIDATION}/{rule}", LAMBDA_ANSWERS[VALIDATION])


class HandlerValidationError(HandlerError):
    status = LAMBDA_ANSWERS[VALIDATION].status
    x_cache = LAMBDA_ANSWERS[VALIDATION].x_cache
    page_message = LAMBDA_ANSWERS[VALIDATION].page_message


class HandlerExecutionError(HandlerError):
    status = LAMBDA_ANSWERS["execution"].status
    x_cache = LAMBDA_ANSWERS["execution"].x_cache
    page_message = LAMBDA_ANSWERS["execution"].page_message


class HandlerTimeout(HandlerError):
    status = LAMBDA_ANSWERS["timeout"].status
    x_cache = LAMBDA_ANSWERS["timeout"].x_cache
    page_message = LAMBDA_ANSWERS["timeout"].page_message


class HandlerThrottled(HandlerError):
    """Refused before it ran: the edge already runs ``edge.handlers.max_concurrent_executions``
    function calls, as Lambda throttles past its concurrency quota (Developer Guide
    http-503-lambda-limit-execeeded-error)."""

    status = LAMBDA_ANSWERS["throttled"].status
    x_cache = LAMBDA_ANSWERS["throttled"].x_cache
    page_message = LAMBDA_ANSWERS["throttled"].page_message


class FunctionExecutionError(HandlerError):
    """A CloudFront Function threw, returned what CloudFront refuses, or ran out of memory."""

    status = LAMBDA_ANSWERS["function-execution"].status
    x_cache = LAMBDA_ANSWERS["function-execution"].x_cache
    page_message = LAMBDA_ANSWERS["function-execution"].page_message


class FunctionThrottled(HandlerError):
    """A CloudFront Function ran past its compute-time limit."""

    status = LAMBDA_ANSWERS["function-throttled"].status
    x_cache = LAMBDA_ANSWERS["function-throttled"].x_cache
    page_message = LAMBDA_ANSWERS["function-throttled"].page_message


class ConfigError(Exception):
    """A config that cannot be served. ``problems`` holds every ``(key path, message)``."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"{path}: {msg}" for path, msg in self.problems))


class ListenerError(Exception):
    """A listener cannot bind: the message names it, its address and what moves it."""


class HandlerLoadError(Exception):
    """A handler named in the config cannot be loaded; the message names the file."""
