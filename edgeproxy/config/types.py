"""Building blocks shared by the config models: annotated types with CloudFront's value
rules, the validation error that carries a key path, and the frozen base model.

Every config model (``config_model``, ``distribution``, ``behaviors``, ``policy_models``,
``response_headers_policy``, ``edge_settings``) derives from ``FrozenModel`` (frozen, unknown
keys refused) and reports a problem with ``invalid``, whose ``at`` extends the key path below
the field that raised it (``loading._problem`` reads it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo
from pydantic_core import PydanticCustomError

from edgeproxy.errors import HandlerLoadError
from edgeproxy.functions.handler_strings import (
    CODE_WITH_FILE_SPEC,
    LAMBDA_FORM,
    RUNTIMES,
    is_lambda_form,
    needs_code,
    resolve,
)
from edgeproxy.messages import BAD_VALUE_CHAR, HEADER_NAME

# Lambda@Edge takes a numbered version of a function in us-east-1, never $LATEST or an alias.
_LAMBDA_ARN = re.compile(r"arn:aws[a-z-]*:lambda:us-east-1:\d{12}:function:[\w-]{1,64}:\d+")
# CloudFront Functions and KeyValueStores are global: no region in their ARNs.
_CF_FUNCTION_ARN = re.compile(r"arn:aws[a-z-]*:cloudfront::\d{12}:function/[A-Za-z0-9_-]{1,64}")
_KVS_ARN = re.compile(r"arn:aws[a-z-]*:cloudfront::\d{12}:key-value-store/[A-Za-z0-9-]{1,64}")
_HANDLER_FUNC = re.compile(r"[A-Za-z_]\w*")
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_HEADER_SAFE = re.compile(r"[A-Za-z0-9._-]+")
_COUNTRY = re.compile(r"[A-Z]{2}")

Method = Literal["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
Isolation = Literal["thread", "process", "inline"]


def invalid(message: str, *, at: tuple[int | str, ...] = ()) -> PydanticCustomError:
    """A validation error; ``at`` extends the key path below the field that raised it."""
    return PydanticCustomError("edgeproxy", message, {"at": at} if at else None)


def between(lo: float, hi: float) -> AfterValidator:
    def check(value: float) -> float:
        if not lo <= value <= hi:
            raise invalid(f"must be between {lo:g} and {hi:g}")
        return value

    return AfterValidator(check)


def at_least(lo: int) -> AfterValidator:
    def check(value: int) -> int:
        if value < lo:
            raise invalid(f"must be {lo} or more")
        return value

    return AfterValidator(check)


def _non_empty(value: str) -> str:
    if not value:
        raise invalid("must not be empty")
    return value


def valid_origin_port(value: int) -> bool:
    """The ports CloudFront connects to an origin on (API CustomOriginConfig)."""
    return value in (80, 443) or 1024 <= value <= 65535


def _origin_port(value: int) -> int:
    if not valid_origin_port(value):
        raise invalid("must be 80, 443 or between 1024 and 65535")
    return value


def handler_spec(value: str) -> str:
    if is_lambda_form(value):
        if not LAMBDA_FORM.fullmatch(value):
            raise invalid(
                'must be Lambda\'s "module.function" (index.handler, src/app.handler) with '
                'code: <function folder>, or "path/file.py:function"'
            )
        return value
    target, _, func = value.rpartition(":")
    is_file = target.endswith((".py", ".js", ".mjs", ".cjs"))
    if not (_HANDLER_FUNC.fullmatch(func) and (is_file or _MODULE.fullmatch(target))):
        raise invalid(
            'must be "path/file.py:function", "path/file.js:function" (or .mjs, .cjs), '
            '"package.module:function" or Lambda\'s "index.handler" with code: <folder>'
        )
    return value


def _runtime(value: str) -> str:
    if value not in RUNTIMES:
        raise invalid(f"must be one of {', '.join(RUNTIMES)}")
    return value


def is_cloudfront_function_arn(value: str) -> bool:
    return _CF_FUNCTION_ARN.fullmatch(value) is not None


def _cf_function_arn(value: str) -> str:
    if not is_cloudfront_function_arn(value):
        raise invalid(
            "must be a CloudFront Function ARN, e.g. arn:aws:cloudfront::123456789012:function/name"
        )
    return value


def _kvs_arn(value: str) -> str:
    if not _KVS_ARN.fullmatch(value):
        raise invalid(
            "must be a KeyValueStore ARN, e.g. "
            "arn:aws:cloudfront::123456789012:key-value-store/a1b2c3d4-5678-90ab-cdef-EXAMPLE1"
        )
    return value


def check_function_source(
    handler: str | None, code: str | None, runtime: str | None, info: ValidationInfo
) -> None:
    """A handler and its ``code`` folder go together: Lambda's form needs the folder, a file
    spec takes none; with the config's folder known, Lambda's form must find its one file
    (``handler_strings.resolve``, the same the edge runs). Problems at ``handler``/``code``."""
    if handler is None:
        return
    if not is_lambda_form(handler):
        if code is not None:
            raise invalid(CODE_WITH_FILE_SPEC, at=("code",))
        return
    if code is None:
        raise invalid(needs_code(handler), at=("handler",))
    base_dir = context_of(info).get("base_dir")
    if base_dir is not None:
        try:
            resolve(handler, (base_dir / code).resolve(), runtime)
        except HandlerLoadError as exc:
            raise invalid(str(exc), at=("code",)) from None


def _lambda_arn(value: str) -> str:
    if not _LAMBDA_ARN.fullmatch(value):
        raise invalid(
            "must be a numbered version of a Lambda function in us-east-1, "
            "e.g. arn:aws:lambda:us-east-1:123456789012:function:name:1"
        )
    return value


_FUNCTION_KEY = re.compile(r"(arn:aws[a-z-]*:lambda:us-east-1:\d{12}:function:)?[\w-]{1,64}(:\d+)?")


def _function_key(value: str) -> str:
    if is_cloudfront_function_arn(value):
        return value
    if not _FUNCTION_KEY.fullmatch(value) or (":" in value and not value.startswith("arn:")):
        raise invalid(
            "must be a Lambda function's name, its ARN, or a numbered version's ARN "
            "(arn:aws:lambda:us-east-1:123456789012:function:name:1), or a CloudFront "
            "Function's ARN (arn:aws:cloudfront::123456789012:function/name)"
        )
    return value


def function_for(functions: Mapping[str, Any], arn: str) -> Any:
    """The ``edge.functions`` entry for a numbered version's ARN: under that ARN, else under
    the function's unqualified ARN or its name (any version: publishing needs no edit)."""
    unqualified = arn.rpartition(":")[0]
    name = unqualified.rpartition(":")[2]
    for key in (arn, unqualified, name):
        if key in functions:
            return functions[key]
    return None


def cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise invalid("must be an IP network such as 203.0.113.0/24") from None
    return value


def _country(value: str) -> str:
    if not _COUNTRY.fullmatch(value):
        raise invalid("must be a two-letter country code in capitals, e.g. US")
    return value


def _header_safe(value: str) -> str:
    if not _HEADER_SAFE.fullmatch(value):
        raise invalid("may contain only letters, digits, '.', '_' and '-'")
    return value


NOT_A_HEADER_NAME = "must be a header name: letters, digits and !#$%&'*+-.^_`|~ only"


def _header_name(value: str) -> str:
    """A header name the edge will write or send: an RFC 9110 token."""
    if not HEADER_NAME.fullmatch(value):
        raise invalid(NOT_A_HEADER_NAME)
    return value


def _header_value(value: str) -> str:
    """A header value the edge will write or send: no CR, LF, NUL or other control but tab
    (the response would be split at them)."""
    bad = BAD_VALUE_CHAR.search(value)
    if bad:
        raise invalid(f"must not hold control characters such as CR or LF (found {bad.group()!r})")
    return value


NonEmpty = Annotated[str, AfterValidator(_non_empty)]
Port = Annotated[int, between(0, 65535)]
OriginPort = Annotated[int, AfterValidator(_origin_port)]
Seconds = Annotated[int, at_least(0)]
HandlerSpec = Annotated[str, AfterValidator(handler_spec)]
# A function's runtime: Node.js (nodejs20.x) or Python (python3.12, run on the edge's Python)
FunctionRuntime = Annotated[str, AfterValidator(_runtime)]
LambdaArn = Annotated[str, AfterValidator(_lambda_arn)]
CloudFrontFunctionArn = Annotated[str, AfterValidator(_cf_function_arn)]
KeyValueStoreArn = Annotated[str, AfterValidator(_kvs_arn)]
# An ``edge.functions`` key: a Lambda function (a version's ARN, its ARN or its name) or a
# CloudFront Function's ARN.
FunctionKey = Annotated[str, AfterValidator(_function_key)]
Country = Annotated[str, AfterValidator(_country)]
HeaderSafe = Annotated[str, AfterValidator(_header_safe)]
HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]


def context_of(info: ValidationInfo) -> Mapping[str, Any]:
    """The load context (see ``loading._load_context``); empty when a model is built in code."""
    return info.context if isinstance(info.context, Mapping) else {}


def one_of_loaded(value: str, info: ValidationInfo, ids: str, what: str) -> str:
    """``value``, when it is one of the ids the load context lists under ``ids`` (or the
    context has none: a model built in code); otherwise a problem naming the known ids."""
    known = context_of(info).get(ids)
    if known and value not in known:
        raise invalid(f"names no {what} ({', '.join(sorted(known))})")
    return value


def is_local_address(domain_name: str) -> bool:
    """An IP address or ``localhost``: CloudFront refuses these as origins; we allow them."""
    if domain_name.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(domain_name)
    except ValueError:
        return False
    return True


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
