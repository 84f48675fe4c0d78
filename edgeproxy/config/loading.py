"""The config: typed, frozen models of ``distribution:`` and ``edge:``, loaded once.

``distribution:`` is Terraform's ``aws_cloudfront_distribution`` in JSON form (field names are
Terraform's argument names); ``edge:`` holds what only a local edge needs. ``load_config``
reads a file in four steps, each finding every problem it can before the next runs:

1. read the YAML                      -> problems at ``<file>``
2. walk ``distribution:`` against ``tfschema``: unknown keys are problems, known keys the
   models do not implement are dropped (one warning names them all), and Terraform's two
   spellings of a block (``{...}`` or ``[{...}]``) become one
3. validate with pydantic; cross references (``target_origin_id``, ``lambda_arn``,
   ``demo_origin``) are checked by field validators that read the validation context, so
   they are reported even when another part of the file is broken
4. apply command-line overrides (``ConfigOverrides``) to the valid, frozen result

Every problem is ``(key path, message)``, e.g. ``distribution.origin[0].origin_id``.

The models live by concern in ``config_models`` (distribution), ``behavior_models`` (cache
behaviors), ``policy_models`` (cache, origin request and response headers policies) and
``edge_settings`` (``edge:``); their names are re-exported here, so
``from edgeproxy.config import CacheBehavior`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from edgeproxy.config import tfschema
from edgeproxy.config.behaviors import (
    ALLOWED_METHOD_SETS,
    CACHED_METHOD_SETS,
    INCLUDE_BODY_TEXT,
    METHOD_ORDER,
    CacheBehavior,
    Cookies,
    ForwardedValues,
    LambdaFunctionAssociation,
)
from edgeproxy.config.distribution import (
    ERROR_PAGE_CODES,
    ERROR_RESPONSE_CODES,
    FAILOVER_CODES,
    MAX_CUSTOM_HEADERS,
    CustomErrorResponse,
    CustomHeader,
    CustomOriginConfig,
    Distribution,
    FailoverCriteria,
    GeoRestriction,
    Origin,
    OriginGroup,
    OriginGroupMember,
    Restrictions,
    ViewerCertificate,
)
from edgeproxy.config.edge_settings import (
    AdminListener,
    CacheSettings,
    DemoOrigin,
    EdgeSettings,
    GeoLocation,
    GeoRange,
    GeoSettings,
    HandlerSettings,
    Listeners,
    TlsSettings,
)
from edgeproxy.config.policy_models import (
    DEFAULT_TTL,
    MAX_TTL,
    CachePolicyConfig,
    OriginRequestPolicyConfig,
    ResponseHeadersPolicyConfig,
)
from edgeproxy.config.types import FrozenModel, Isolation, Method, is_local_address
from edgeproxy.errors import ConfigError

__all__ = [
    "ALLOWED_METHOD_SETS",
    "CACHED_METHOD_SETS",
    "DEFAULT_TTL",
    "ERROR_PAGE_CODES",
    "ERROR_RESPONSE_CODES",
    "FAILOVER_CODES",
    "INCLUDE_BODY_TEXT",
    "MAX_CUSTOM_HEADERS",
    "MAX_TTL",
    "METHOD_ORDER",
    "AdminListener",
    "CacheBehavior",
    "CachePolicyConfig",
    "CacheSettings",
    "Config",
    "ConfigOverrides",
    "Cookies",
    "CustomErrorResponse",
    "CustomHeader",
    "CustomOriginConfig",
    "DemoOrigin",
    "Distribution",
    "EdgeSettings",
    "FailoverCriteria",
    "ForwardedValues",
    "GeoLocation",
    "GeoRange",
    "GeoRestriction",
    "GeoSettings",
    "HandlerSettings",
    "Isolation",
    "LambdaFunctionAssociation",
    "Listeners",
    "LoadedConfig",
    "Method",
    "Origin",
    "OriginGroup",
    "OriginGroupMember",
    "OriginRequestPolicyConfig",
    "ResponseHeadersPolicyConfig",
    "Restrictions",
    "TlsSettings",
    "ViewerCertificate",
    "apply_overrides",
    "is_local_address",
    "load_config",
]


class Config(FrozenModel):
    distribution: Distribution
    edge: EdgeSettings = EdgeSettings()
    base_dir: Path = Path(".")  # the folder of the config file; relative paths start here

    def path(self, relative: str) -> Path:
        """A path named in the config (handler file, demo root, cert dir), made absolute."""
        return self.base_dir / relative


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: Config
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ConfigOverrides:
    """Command-line settings that win over the file."""

    host: str | None = None
    http_port: int | None = None
    https_port: int | None = None
    origin_url: str | None = None  # --origin URL: serve this origin instead of the demo one


# --- loading --------------------------------------------------------------------------------

_TOP_LEVEL = frozenset({"distribution", "edge"})


def load_config(path: Path, *, overrides: ConfigOverrides | None = None) -> LoadedConfig:
    """Read, check and freeze a config file; ConfigError lists every problem found."""
    raw = _read_yaml(path)
    findings = tfschema.Findings()
    document = _prepare_document(raw, findings)
    base_dir = path.resolve().parent
    config = _validate(document, base_dir, findings.problems)
    warnings = _warnings(config, findings.ignored)
    if overrides is not None:
        config = apply_overrides(config, overrides)
    return LoadedConfig(config=config, warnings=warnings)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that notes duplicated keys, which plain YAML loading silently collapses."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                line = key_node.start_mark.line + 1
                self.duplicates.append(("<file>", f"line {line}: key {key!r} given twice"))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("<file>", f"cannot read {path}: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([("<file>", f"not UTF-8 text (byte {exc.start})")]) from exc
    try:
        loader = _StrictLoader(text)  # its reader refuses control characters already
    except yaml.YAMLError as exc:
        raise ConfigError([("<file>", _yaml_problem(exc))]) from exc
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError([("<file>", _yaml_problem(exc))]) from exc
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(loader.duplicates)
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"not valid YAML{where}: {problem}"


def _prepare_document(raw: Any, findings: tfschema.Findings) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError([("<file>", "must be a mapping with distribution: and edge:")])
    for key in raw.keys() - _TOP_LEVEL:
        findings.problems.append((tfschema.key_path((str(key),)), "unknown key"))
    # `edge:` with every line commented out reads as null: the same as no edge section.
    document = {key: raw[key] for key in _TOP_LEVEL if raw.get(key) is not None}
    if "distribution" in document:
        document["distribution"] = tfschema.prepare(
            document["distribution"],
            tfschema.DISTRIBUTION,
            Distribution,
            ("distribution",),
            findings,
        )
    return document


def _load_context(document: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """What cross-reference validators need, read from the raw document before validation."""
    distribution = document.get("distribution")
    distribution = distribution if isinstance(distribution, dict) else {}
    edge = document.get("edge")
    edge = edge if isinstance(edge, dict) else {}
    origin_ids = _ids(distribution.get("origin"))
    functions = edge.get("functions")
    return {
        "origin_ids": origin_ids,
        "target_ids": origin_ids | _ids(distribution.get("origin_group")),
        "functions": functions if isinstance(functions, dict) else {},
        "base_dir": base_dir,
    }


def _ids(blocks: Any) -> frozenset[str]:
    if not isinstance(blocks, list):
        return frozenset()
    return frozenset(
        b["origin_id"]
        for b in blocks
        if isinstance(b, dict) and isinstance(b.get("origin_id"), str)
    )


def _validate(document: dict[str, Any], base_dir: Path, problems: list[tuple[str, str]]) -> Config:
    context = _load_context(document, base_dir)
    try:
        config = Config.model_validate({**document, "base_dir": base_dir}, context=context)
    except ValidationError as exc:
        problems = problems + _translate(exc)
    if problems:
        raise ConfigError(_unique(problems))
    return config


def _unique(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(problems))


def _warnings(config: Config, ignored: list[str]) -> list[str]:
    warnings = []
    if ignored:
        warnings.append("not implemented locally, ignored: " + ", ".join(ignored))
    demo = config.edge.demo_origin
    for index, origin in enumerate(config.distribution.origin):
        # The demo origin is local by design; any other local origin deserves a note.
        if is_local_address(origin.domain_name) and not (
            demo and demo.origin_id == origin.origin_id
        ):
            warnings.append(
                f"distribution.origin[{index}].domain_name: {origin.domain_name} is an IP "
                "address or localhost; CloudFront would refuse it, edgeproxy allows it"
            )
    return warnings


# --- pydantic errors -> (key path, message) --------------------------------------------------

_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "missing": "required",
        "extra_forbidden": "unknown key",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be a string",
        "model_type": "must be a mapping of keys",
        "model_attributes_type": "must be a mapping of keys",
        "dict_type": "must be a mapping of keys",
        "tuple_type": "must be a list",
        "list_type": "must be a list",
        "too_short": "needs at least {min_length}",
        "too_long": "takes at most {max_length}",
        "string_too_long": "must be at most {max_length} characters",
        "greater_than_equal": "must be {ge} or more",
        "less_than_equal": "must be {le} or less",
    }
)


def _translate(exc: ValidationError) -> list[tuple[str, str]]:
    return [_problem(error) for error in exc.errors(include_url=False, include_input=False)]


def _problem(error: Any) -> tuple[str, str]:
    ctx = error.get("ctx") or {}
    loc = (*error["loc"], *ctx.get("at", ()))
    template = _MESSAGES.get(error["type"])
    message = template.format(**ctx) if template else _plain(error["msg"])
    return tfschema.key_path(loc), message


def _plain(message: str) -> str:
    return message.removeprefix("Value error, ").replace("Input should be", "must be")


# --- overrides ------------------------------------------------------------------------------


def apply_overrides(config: Config, overrides: ConfigOverrides) -> Config:
    """The config with command-line settings applied; ConfigError names the bad flag."""
    config = _override_listeners(config, overrides)
    if overrides.origin_url is not None:
        config = _override_origin(config, overrides.origin_url)
    return config


def _override_listeners(config: Config, overrides: ConfigOverrides) -> Config:
    changes: dict[str, Any] = {}
    if overrides.host is not None:
        changes["host"] = overrides.host
    for flag, name in (("--http-port", "http_port"), ("--https-port", "https_port")):
        port = getattr(overrides, name)
        if port is not None:
            if not 0 <= port <= 65535:
                raise ConfigError([(flag, "must be between 0 and 65535")])
            changes[name] = port
    if not changes:
        return config
    listeners = config.edge.listeners.model_copy(update=changes)
    return config.model_copy(
        update={"edge": config.edge.model_copy(update={"listeners": listeners})}
    )


def _override_origin(config: Config, origin_url: str) -> Config:
    """Point the demo origin (or the default behavior's origin) at ``origin_url``."""
    url = urlsplit(origin_url)
    try:
        port = url.port
    except ValueError:
        port = -1
    if url.scheme not in ("http", "https") or not url.hostname or port == -1:
        raise ConfigError([("--origin", "must be an http:// or https:// URL with a host")])
    distribution = config.distribution
    origin_id = _overridden_origin_id(config)
    origins = tuple(
        _retarget(o, url.scheme, url.hostname, port, url.path) if o.origin_id == origin_id else o
        for o in distribution.origin
    )
    return config.model_copy(
        update={
            "distribution": distribution.model_copy(update={"origin": origins}),
            "edge": config.edge.model_copy(update={"demo_origin": None}),
        }
    )


def _overridden_origin_id(config: Config) -> str:
    if config.edge.demo_origin is not None:
        return config.edge.demo_origin.origin_id
    dist = config.distribution
    return dist.target_origin(dist.default_cache_behavior.target_origin_id).origin_id


def _retarget(origin: Origin, scheme: str, host: str, port: int | None, path: str) -> Origin:
    custom = origin.custom_origin_config or CustomOriginConfig(origin_protocol_policy="http-only")
    port_key = "http_port" if scheme == "http" else "https_port"
    custom = custom.model_copy(
        update={
            "origin_protocol_policy": f"{scheme}-only",
            port_key: port or (80 if scheme == "http" else 443),
        }
    )
    update: dict[str, Any] = {"domain_name": host, "custom_origin_config": custom}
    if path.strip("/"):
        update["origin_path"] = "/" + path.strip("/")
    return origin.model_copy(update=update)
