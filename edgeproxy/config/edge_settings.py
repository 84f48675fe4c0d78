"""The ``edge:`` section: what only a local edge location needs (listeners, admin API,
PoP name, cache size, handler isolation, geo simulation, TLS, the demo origin).

CloudFront has no equivalent of these keys, so they are plain edgeproxy names; the reference
for each is DESIGN section 3.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from edgeproxy.config.types import (
    Country,
    FrozenModel,
    FunctionKey,
    FunctionRuntime,
    HandlerSpec,
    HeaderSafe,
    Isolation,
    KeyValueStoreArn,
    NonEmpty,
    Port,
    Seconds,
    at_least,
    between,
    check_function_source,
    cidr,
    context_of,
    handler_spec,
    invalid,
    is_cloudfront_function_arn,
    one_of_loaded,
)
from edgeproxy.functions.cloudfront.stores import function_code_problem, store_file_problem
from edgeproxy.functions.concurrency import DEFAULT_CONCURRENCY, DEFAULT_MAX_EXECUTIONS
from edgeproxy.functions.handler_strings import is_lambda_form, needs_code
from edgeproxy.functions.loader import INIT_TIMEOUT_S


class Listeners(FrozenModel):
    host: NonEmpty = "127.0.0.1"
    http_port: Port | None = None
    https_port: Port | None = None


def resolve_address(value: str) -> tuple[str, int | None]:
    """An ``edge.resolve`` value: ``"ip"``, ``"ip:port"`` or ``"[ipv6]:port"`` → (ip, port or
    None). ValueError when it is none of these."""
    host, port = value, None
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(value)
        port = _port(rest[1:]) if rest else None
    elif value.count(":") == 1:
        host, _, digits = value.partition(":")
        port = _port(digits)
    ipaddress.ip_address(host)
    return host, port


def _port(digits: str) -> int:
    if not (digits.isascii() and digits.isdigit() and 1 <= int(digits) <= 65535):
        raise ValueError(digits)
    return int(digits)


def _resolve_target(value: str) -> str:
    try:
        resolve_address(value)
    except ValueError:
        raise invalid(
            "must be an IP address, optionally with a port: 10.0.0.5, 127.0.0.1:8081, [::1]:8081"
        ) from None
    return value


# A name resolved locally; with a port, the origin is fetched there over plain HTTP.
ResolveTarget = Annotated[str, AfterValidator(_resolve_target)]


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address; any other name may reach beyond this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _token(value: str | None) -> str | None:
    # Sent in an Authorization header: visible ASCII only, nothing a header could not carry.
    if value is None or (
        value.isascii() and value.isprintable() and value != "" and " " not in value
    ):
        return value
    raise invalid("must be non-empty visible ASCII without spaces")


class AdminListener(FrozenModel):
    """The admin API: loopback by default; anywhere else only with a bearer token."""

    host: NonEmpty = "127.0.0.1"
    port: Port | None = None
    token: Annotated[str | None, AfterValidator(_token)] = None

    @model_validator(mode="after")
    def _token_off_loopback(self) -> AdminListener:
        if self.token is None and not is_loopback_host(self.host):
            raise invalid(
                f"required when the admin API listens on {self.host} (not loopback): every "
                "call must then carry Authorization: Bearer <token>",
                at=("token",),
            )
        return self


class DiskCacheSettings(FrozenModel):
    """The disk tier (cache/disk.py): objects over ``max_object_bytes`` kept as files in
    ``folder`` (relative to the config file's folder unless absolute) within ``max_bytes``."""

    enabled: bool = True
    folder: NonEmpty = ".edgeproxy/cache"
    max_bytes: Annotated[int, at_least(1)] = 1024**3


class CacheSettings(FrozenModel):
    max_bytes: Seconds = 256 * 1024 * 1024
    max_object_bytes: Seconds = 64 * 1024 * 1024
    disk: DiskCacheSettings = DiskCacheSettings()

    @field_validator("max_object_bytes")
    @classmethod
    def _fits(cls, value: int, info: ValidationInfo) -> int:
        if value > info.data.get("max_bytes", value):
            raise invalid("must not exceed max_bytes")
        return value


def _redis_url(value: str) -> str:
    url = urlsplit(value)
    try:
        url.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise invalid("the port must be a number from 0 to 65535") from None
    if url.scheme not in ("redis", "rediss", "unix") or (url.scheme != "unix" and not url.hostname):
        raise invalid("must be a Redis URL: redis://HOST:PORT/DB, rediss://... or unix:///path")
    return value


RedisUrl = Annotated[str, AfterValidator(_redis_url)]


class RegionalCacheSettings(FrozenModel):
    """The regional tier every PoP of the distribution shares (cache/regional.py)."""

    redis: RedisUrl
    # Every Redis call is bounded by this; past it the PoP answers from its own cache and
    # the origin (and leaves Redis alone for a second before trying again).
    timeout: Annotated[float, between(0.001, 10)] = 0.25
    max_object_bytes: Annotated[int, at_least(1)] = 8 * 1024 * 1024
    # How long a PoP waits for another PoP's origin fetch of the same object; a holder that
    # dies frees the lock after this.
    lock_timeout: Annotated[float, between(0.1, 120)] = 30.0


class HandlerSettings(FrozenModel):
    isolation: Isolation = "process"  # each function in its own runtime processes
    # Calls of one function running at once (thread isolation: threads; process: workers);
    # past it, calls wait within their timeout.
    concurrency: Annotated[int, at_least(1)] = DEFAULT_CONCURRENCY
    # Calls of all functions running at once; past it, calls are throttled (503
    # LambdaLimitExceeded), as Lambda past its concurrency quota.
    max_concurrent_executions: Annotated[int, at_least(1)] = DEFAULT_MAX_EXECUTIONS
    # Lambda's init phase limit: a handler module whose top-level code runs longer is refused.
    init_timeout: Annotated[float, between(0.001, 900)] = INIT_TIMEOUT_S


class GeoLocation(FrozenModel):
    """What CloudFront's CloudFront-Viewer-* geo headers say about a viewer."""

    country: Country
    country_name: str | None = None
    region: str | None = None
    region_name: str | None = None
    city: str | None = None
    postal_code: str | None = None
    time_zone: str | None = None
    latitude: Annotated[float, between(-90, 90)] | None = None
    longitude: Annotated[float, between(-180, 180)] | None = None
    metro_code: str | None = None
    asn: int | None = None


class GeoRange(GeoLocation):
    """Viewers whose address is in ``cidr`` are located here."""

    cidr: str

    @field_validator("cidr")
    @classmethod
    def _network(cls, value: str) -> str:
        return cidr(value)


class GeoSettings(FrozenModel):
    trust_viewer_headers: bool = False  # take viewer-sent CloudFront-Viewer-* as simulated
    default: GeoLocation | None = None
    ranges: tuple[GeoRange, ...] = ()


class TlsSettings(FrozenModel):
    cert_dir: NonEmpty = ".edgeproxy/certs"


class DemoOrigin(FrozenModel):
    """The built-in static origin that serves ``root`` for the origin ``origin_id``."""

    origin_id: NonEmpty
    root: NonEmpty
    host: NonEmpty = "127.0.0.1"
    port: Port = 0

    @field_validator("origin_id")
    @classmethod
    def _names_origin(cls, value: str, info: ValidationInfo) -> str:
        return one_of_loaded(value, info, "origin_ids", "origin")

    @field_validator("root")
    @classmethod
    def _folder_exists(cls, value: str, info: ValidationInfo) -> str:
        base_dir = context_of(info).get("base_dir")
        if base_dir is not None and not (base_dir / value).is_dir():
            raise invalid(f"no such folder: {base_dir / value}")
        return value


class FunctionEntry(FrozenModel):
    """An ``edge.functions`` entry in Lambda's terms: ``{handler: index.handler, code:
    handlers/router, runtime: nodejs20.x}`` (``code`` relative to the config's folder).

    For a CloudFront Function ARN: ``{file: functions/rewrite.js, runtime:
    cloudfront-js-2.0, key_value_store: <KeyValueStore ARN>}`` (``CloudFrontFunctionEntry``);
    the ARN's kind says which, checked in ``EdgeSettings._entry_kinds``."""

    handler: HandlerSpec
    code: NonEmpty | None = None
    runtime: FunctionRuntime | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_spec(cls, data: Any) -> Any:
        """A plain spec (``handlers/auth.py:handler``) is an entry of its handler alone; its
        problems are the entry's, as the user wrote one value."""
        if not isinstance(data, str):
            return data
        handler_spec(data)
        if is_lambda_form(data):
            raise invalid(needs_code(data))
        return {"handler": data}

    @model_validator(mode="after")
    def _source(self, info: ValidationInfo) -> FunctionEntry:
        check_function_source(self.handler, self.code, self.runtime, info)
        return self


class CloudFrontFunctionEntry(FrozenModel):
    """A CloudFront Function's local code: a ``.js`` file (relative to the config's folder)
    of at most 10 KB, its runtime, and the KeyValueStore associated with it (Terraform's
    ``key_value_store_associations``; one store per function, DG kvs-with-functions-associate)."""

    file: NonEmpty
    runtime: Literal["cloudfront-js-1.0", "cloudfront-js-2.0"] = "cloudfront-js-2.0"
    key_value_store: KeyValueStoreArn | None = None

    @field_validator("file")
    @classmethod
    def _code_fits(cls, value: str, info: ValidationInfo) -> str:
        base_dir = context_of(info).get("base_dir")
        if base_dir is None:
            return value
        problem = function_code_problem(base_dir / value)
        if problem is not None:
            raise invalid(problem)
        return value


def _store_file(value: str, info: ValidationInfo) -> str:
    base_dir = context_of(info).get("base_dir")
    if base_dir is not None:
        problem = store_file_problem(base_dir / value)
        if problem is not None:
            raise invalid(problem)
    return value


# A KeyValueStore's file: read and checked at start, read again when saved.
KeyValueStoreFile = Annotated[str, AfterValidator(_store_file)]


def _under(key: str, error: Any) -> Any:
    """An entry's error as one of the mapping's: its path below ``key``, its words kept."""
    ctx = error.get("ctx")
    return {
        "type": PydanticCustomError(error["type"], error["msg"].replace("{", "{{"), ctx),
        "loc": (key, *error["loc"]),
        "input": error.get("input"),
    }


class OriginTrust(FrozenModel):
    """``edge.origins.<origin_id>``: how the edge checks an HTTPS origin's certificate. A
    staging origin signed by a private CA: ``ca_file`` (a PEM bundle, relative to the
    config's folder) is the trust for that origin alone; ``verify: false`` skips the check
    (warned at start). Default: the system's trust store, as CloudFront's public CAs."""

    ca_file: NonEmpty | None = None
    verify: bool = True

    @model_validator(mode="after")
    def _one_way(self) -> OriginTrust:
        if self.ca_file is not None and not self.verify:
            raise invalid("ca_file and verify: false contradict each other: choose one")
        return self


class AccessLog(FrozenModel):
    """``edge.logs.access``: where the access log goes (``stderr``, ``off`` or a file path,
    relative to the config's folder) and its format: ``cloudfront`` (a standard log: tab
    separated, ``#Version``/``#Fields:`` header) or ``json`` (one object a line, like a
    real-time log record). docs/observability.md."""

    destination: NonEmpty = "stderr"
    format: Literal["cloudfront", "json"] = "cloudfront"


class LogSettings(FrozenModel):
    access: AccessLog = AccessLog()
    # A file for the functions' own output: their log lines, print output, REPORT lines,
    # tracebacks (relative to the config's folder); None: with the edge's log on stderr.
    functions: NonEmpty | None = None


class EdgeSettings(FrozenModel):
    listeners: Listeners = Listeners()
    admin: AdminListener = AdminListener()
    pop: HeaderSafe = "LHR50-C1"
    distribution_domain_name: HeaderSafe = "d111111abcdef8.cloudfront.net"
    distribution_id: HeaderSafe = "EDFDVBD6EXAMPLE"
    resolve: Mapping[str, ResolveTarget] = Field(default_factory=dict)
    cache: CacheSettings = CacheSettings()
    handlers: HandlerSettings = HandlerSettings()
    # A Lambda version's ARN, the function's ARN or its name -> a handler spec, or Lambda's
    # handler form with its folder (FunctionEntry); a CloudFront Function's ARN -> its file
    # and runtime (CloudFrontFunctionEntry)
    functions: Mapping[FunctionKey, FunctionEntry | CloudFrontFunctionEntry] = Field(
        default_factory=dict
    )
    # KeyValueStore ARN -> a local JSON file in the import format ({"data": [{key, value}]})
    key_value_stores: Mapping[KeyValueStoreArn, KeyValueStoreFile] = Field(default_factory=dict)
    geo: GeoSettings = GeoSettings()
    tls: TlsSettings = TlsSettings()
    demo_origin: DemoOrigin | None = None
    logs: LogSettings = LogSettings()
    origins: Mapping[str, OriginTrust] = Field(default_factory=dict)  # by origin_id
    regional_cache: RegionalCacheSettings | None = None  # None: each PoP has its cache only

    @field_validator("origins")
    @classmethod
    def _known_origins(
        cls, value: Mapping[str, OriginTrust], info: ValidationInfo
    ) -> Mapping[str, OriginTrust]:
        for origin_id in value:
            one_of_loaded(origin_id, info, "origin_ids", "origin")
        return value

    @field_validator("functions", mode="wrap")
    @classmethod
    def _entry_kinds(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        """Each entry validated as the kind its ARN names, so that its problems are that
        kind's (a CloudFront Function's ``file``, a Lambda function's ``handler``)."""
        if not isinstance(value, Mapping):
            return handler(value)
        problems: list[Any] = []
        entries: dict[str, Any] = {}
        for arn, entry in value.items():
            kind = (
                CloudFrontFunctionEntry
                if isinstance(arn, str) and is_cloudfront_function_arn(arn)
                else FunctionEntry
            )
            try:
                entries[arn] = kind.model_validate(entry, context=info.context)
            except ValidationError as exc:
                problems.extend(_under(arn, error) for error in exc.errors())
        if problems:
            raise ValidationError.from_exception_data("functions", problems)
        return handler(entries)

    @model_validator(mode="after")
    def _stores_known(self) -> EdgeSettings:
        for arn, entry in self.functions.items():
            store = getattr(entry, "key_value_store", None)
            if store is not None and store not in self.key_value_stores:
                raise invalid(
                    "names no store of edge.key_value_stores",
                    at=("functions", arn, "key_value_store"),
                )
        return self
