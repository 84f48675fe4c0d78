"""``edgeproxy validate``: every problem of a config and its handlers, with key paths, in one
run. The config's own problems come from ``load_config`` (which finds them all); each
handler is loaded on its own, from the associations as written, so a handler that does not
load is reported beside the config's problems instead of hiding behind them (or behind the
first broken handler)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgeproxy.config.behaviors import LambdaFunctionAssociation
from edgeproxy.config.loading import LoadedConfig, load_config, read_sources
from edgeproxy.config.overrides import ConfigOverrides
from edgeproxy.config.sources import SourceOptions
from edgeproxy.errors import ConfigError, HandlerLoadError
from edgeproxy.functions.hooks import build_hooks

Problem = tuple[str, str]


def every_problem(
    paths: Sequence[Path], options: SourceOptions, overrides: ConfigOverrides
) -> tuple[LoadedConfig | None, list[Problem]]:
    """The loaded config (None when it does not load) and every problem found."""
    loaded: LoadedConfig | None = None
    problems: list[Problem] = []
    try:
        loaded = load_config(paths, overrides=overrides, options=options)
    except ConfigError as err:
        problems += err.problems
    try:
        source = read_sources(paths, options)
    except ConfigError:
        return loaded, problems  # the file itself is unreadable: load_config said so
    found = _handler_problems(source.document, source.base_dir)
    if loaded is not None and not found:
        found = _route_problems(loaded)  # what only the whole distribution shows
    return loaded, list(dict.fromkeys(problems + found))


def _route_problems(loaded: LoadedConfig) -> list[Problem]:
    from edgeproxy.routes import Routes

    try:
        Routes(loaded.config)  # loads every function, as serve does before it listens
    except ConfigError as err:
        return err.problems
    except HandlerLoadError as err:
        return [("handler", str(err))]
    return []


def _handler_problems(document: Any, base_dir: Path) -> list[Problem]:
    edge = document.get("edge") if isinstance(document, dict) else None
    edge = edge if isinstance(edge, dict) else {}
    handlers = edge.get("handlers")
    isolation = handlers.get("isolation") if isinstance(handlers, dict) else None
    functions = edge.get("functions")
    context = {
        "functions": functions if isinstance(functions, dict) else {},
        "base_dir": base_dir,
    }
    problems: list[Problem] = []
    loaded: dict[str, Any] = {}  # a handler named twice is loaded (and reported) once
    for path, entry in _associations(document):
        try:
            association = LambdaFunctionAssociation.model_validate(entry, context=context)
        except ValidationError:
            continue  # load_config reports it, at its key path
        isolation_used = str(isolation) if isinstance(isolation, str) else "process"
        try:
            build_hooks([association], base_dir, isolation_used, loaded=loaded)
        except HandlerLoadError as err:
            problems.append((f"{path}.handler", str(err)))
        except ConfigError as err:
            problems += [(f"{path}.{where.split('.', 1)[-1]}", why) for where, why in err.problems]
    return problems


def _associations(document: Any) -> Iterator[tuple[str, Any]]:
    """Each ``lambda_function_association`` entry as written, with its key path."""
    distribution = document.get("distribution") if isinstance(document, dict) else None
    if not isinstance(distribution, dict):
        return
    default = distribution.get("default_cache_behavior")
    behaviors = [("distribution.default_cache_behavior", default)]
    for index, behavior in enumerate(_blocks(distribution.get("ordered_cache_behavior"))):
        behaviors.append((f"distribution.ordered_cache_behavior[{index}]", behavior))
    for where, behavior in behaviors:
        behavior = _blocks(behavior)[0] if isinstance(behavior, list) and behavior else behavior
        if not isinstance(behavior, dict):
            continue
        for index, entry in enumerate(_blocks(behavior.get("lambda_function_association"))):
            yield f"{where}.lambda_function_association[{index}]", entry


def _blocks(value: Any) -> list[Any]:
    """Terraform's two spellings of a block: ``{...}`` or ``[{...}]``."""
    if isinstance(value, dict):
        return [value]
    return list(value) if isinstance(value, list) else []
