"""A config file's text as YAML data, strictly: a key given twice is a problem (plain YAML
loading keeps the last one silently), as are bytes that are not UTF-8; every problem is
``("<file>", message)`` with its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgeproxy.errors import ConfigError


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


def read_yaml(path: Path) -> Any:
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
    # MarkedYAMLError has these; a plain YAMLError (e.g. a reader error) does not.
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"not valid YAML{where}: {problem}"
