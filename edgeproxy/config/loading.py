"""``load_config``: a config file read, checked and frozen. Four steps, each finding every
problem it can before the next runs:

1. read the YAML (``yaml_reader``)   -> problems at ``<file>``
2. walk ``distribution:`` against ``tfschema``: unknown keys are problems, known keys the
   models do not implement are dropped (one warning names them all), and Terraform's two
   spellings of a block (``{...}`` or ``[{...}]``) become one
3. validate with pydantic (``config_model.Config``); cross references (``target_origin_id``,
   ``lambda_arn``, ``demo_origin``) are checked by field validators that read the validation
   context, so they are reported even when another part of the file is broken
4. apply command-line overrides (``overrides.ConfigOverrides``) to the valid, frozen result

Every problem is ``(key path, message)``, e.g. ``distribution.origin[0].origin_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from edgeproxy.config import tfschema
from edgeproxy.config.config_model import Config
from edgeproxy.config.distribution import Distribution
from edgeproxy.config.overrides import ConfigOverrides, apply_overrides
from edgeproxy.config.source_doc import SourceDocument
from edgeproxy.config.sources import SourceOptions, overlay, read_source
from edgeproxy.config.types import is_local_address
from edgeproxy.errors import ConfigError


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: Config
    warnings: list[str] = field(default_factory=list)


_TOP_LEVEL = frozenset({"distribution", "edge"})


def load_config(
    path: Path | Sequence[Path],
    *,
    overrides: ConfigOverrides | None = None,
    options: SourceOptions | None = None,
) -> LoadedConfig:
    """Read, check and freeze a config file, or several (a later one overlays an earlier
    one; each in any format ``sources.sniff`` knows); ConfigError lists every problem."""
    source = read_sources(path, options or SourceOptions())
    findings = tfschema.Findings()
    findings.problems.extend(source.problems)
    document = _prepare_document(source.document, findings)
    try:
        config = _validate(document, source.base_dir, findings.problems)
    except ConfigError as exc:
        # Unresolved values explain many a "required": listed with the problems.
        problems = source.located(source.unsettled(exc.problems))
        raise ConfigError(_unique(problems + source.notes)) from None
    warnings = [f"{place}: {note} (not resolved)" for place, note in source.notes]
    warnings += _warnings(config, findings.ignored)
    if overrides is not None:
        config = apply_overrides(config, overrides)
    warnings += _shield_warnings(config)  # after --regional-cache
    return LoadedConfig(config=config, warnings=warnings)


def load_document(document: Any, base_dir: Path) -> LoadedConfig:
    """A config given as data (our YAML's shape) instead of a file, checked and frozen as
    ``load_config`` does; its relative paths start at ``base_dir``. For edgeproxy.testing,
    where a test writes its distribution inline."""
    findings = tfschema.Findings()
    prepared = _prepare_document(document, findings)
    config = _validate(prepared, base_dir.resolve(), findings.problems)
    warnings = _warnings(config, findings.ignored) + _shield_warnings(config)
    return LoadedConfig(config=config, warnings=warnings)


def read_sources(path: Path | Sequence[Path], options: SourceOptions) -> SourceDocument:
    """The document of ``path`` or of several paths, each overlaying the one before."""
    paths = [path] if isinstance(path, Path) else list(path)
    source = read_source(paths[0], options)
    for later in paths[1:]:
        source = overlay(source, read_source(later, options))
    return source


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


def _shield_warnings(config: Config) -> list[str]:
    """Origin Shield is a shared tier in front of the origin; locally the regional tier is
    that tier (docs/caching.md), so without one an enabled shield changes nothing."""
    if config.edge.regional_cache is not None:
        return []
    return [
        f"distribution.origin[{index}].origin_shield: no regional tier to act as Origin "
        "Shield (edge.regional_cache or --regional-cache); each PoP and worker fetches "
        "from this origin itself"
        for index, origin in enumerate(config.distribution.origin)
        if origin.origin_shield is not None and origin.origin_shield.enabled
    ]


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
