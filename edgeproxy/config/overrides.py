"""Command-line settings (``--host``, ``--port``, ``--https-port``, ``--admin-port``,
``--origin-port``, ``--origin``, ``--pop``, ``--regional-cache``) applied to a loaded, frozen
config; a bad value is a ConfigError that names its flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError

from edgeproxy.config.config_model import Config
from edgeproxy.config.distribution import CustomOriginConfig, Origin
from edgeproxy.config.edge_settings import RegionalCacheSettings
from edgeproxy.config.types import HeaderSafe
from edgeproxy.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ConfigOverrides:
    """Command-line settings that win over the file."""

    host: str | None = None
    http_port: int | None = None
    https_port: int | None = None
    origin_url: str | None = None  # --origin URL: serve this origin instead of the demo one
    pop: str | None = None  # --pop NAME: this process is that PoP (X-Amz-Cf-Pop)
    regional_cache: str | None = None  # --regional-cache URL: the Redis every PoP shares
    admin_port: int | None = None  # --admin-port: edge.admin.port
    origin_port: int | None = None  # --origin-port: edge.demo_origin.port


def apply_overrides(config: Config, overrides: ConfigOverrides) -> Config:
    """The config with command-line settings applied; ConfigError names the bad flag."""
    config = _override_listeners(config, overrides)
    config = _override_side_ports(config, overrides)
    if overrides.origin_url is not None:
        config = _override_origin(config, overrides.origin_url)
    return _override_pop(config, overrides)


def _override_pop(config: Config, overrides: ConfigOverrides) -> Config:
    """``--pop`` and ``--regional-cache``, validated as their config keys are."""
    changes: dict[str, Any] = {}
    if overrides.pop is not None:
        changes["pop"] = _validated("--pop", TypeAdapter(HeaderSafe), overrides.pop)
    if overrides.regional_cache is not None:
        current = config.edge.regional_cache
        fields = current.model_dump() if current is not None else {}
        adapter = TypeAdapter(RegionalCacheSettings)
        changes["regional_cache"] = _validated(
            "--regional-cache", adapter, fields | {"redis": overrides.regional_cache}
        )
    if not changes:
        return config
    return config.model_copy(update={"edge": config.edge.model_copy(update=changes)})


def _validated(flag: str, adapter: TypeAdapter[Any], value: object) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise ConfigError([(flag, exc.errors()[0]["msg"])]) from None


def _override_listeners(config: Config, overrides: ConfigOverrides) -> Config:
    changes: dict[str, Any] = {}
    if overrides.host is not None:
        changes["host"] = overrides.host
    for flag, name in (("--port", "http_port"), ("--https-port", "https_port")):
        port = getattr(overrides, name)  # the two port fields, named in the tuple above
        if port is not None:
            changes[name] = _port(flag, port)
    if not changes:
        return config
    listeners = config.edge.listeners.model_copy(update=changes)
    return config.model_copy(
        update={"edge": config.edge.model_copy(update={"listeners": listeners})}
    )


def _override_side_ports(config: Config, overrides: ConfigOverrides) -> Config:
    """``--admin-port`` (edge.admin.port) and ``--origin-port`` (edge.demo_origin.port)."""
    edge = config.edge
    changes: dict[str, Any] = {}
    if overrides.admin_port is not None:
        port = _port("--admin-port", overrides.admin_port)
        changes["admin"] = edge.admin.model_copy(update={"port": port})
    if overrides.origin_port is not None:
        port = _port("--origin-port", overrides.origin_port)
        if overrides.origin_url is not None:
            raise ConfigError([("--origin-port", "the demo origin is replaced by --origin")])
        if edge.demo_origin is None:
            raise ConfigError([("--origin-port", "the config has no edge.demo_origin to move")])
        changes["demo_origin"] = edge.demo_origin.model_copy(update={"port": port})
    if not changes:
        return config
    return config.model_copy(update={"edge": edge.model_copy(update=changes)})


def _port(flag: str, port: int) -> int:
    if not 0 <= port <= 65535:
        raise ConfigError([(flag, "must be between 0 and 65535")])
    return port


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
