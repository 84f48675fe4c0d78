"""``edgeproxy import FILE``: a source (Terraform, ``terraform show -json``, the AWS API's
JSON, a CloudFormation template) written as our YAML, for teams that want to commit a local
config.

The document is what ``sources.read_source`` gives the loader, so the written file serves
as the source does. Each origin and cache behavior gets a comment naming where it came from
(``main.tf:170`` for HCL, the JSON path for JSON and templates); what the source could not
resolve is listed at the top. Function code folders become relative to the written file's
folder, as our YAML reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from edgeproxy.config.source_doc import SourceDocument, path_of
from edgeproxy.config.sources import SourceOptions, read_source
from edgeproxy.errors import ConfigError

# Blocks whose items get a comment naming their source place.
_COMMENTED = ("origin", "origin_group", "default_cache_behavior", "ordered_cache_behavior")
_FILE_LINE = re.compile(r"\S+:\d+")


def import_source(path: Path, options: SourceOptions, out_dir: Path) -> tuple[str, list[str]]:
    """(our YAML, the notes on what was not resolved) for the source at ``path``, with code
    folders relative to ``out_dir``. ConfigError when the source itself is broken."""
    source = read_source(path, options)
    if source.problems:
        raise ConfigError(source.problems)
    entries = [*_associations(source.document.get("distribution")), *_entries(source)]
    for entry in entries:
        for key in ("code", "file"):  # a Lambda function's folder, a CloudFront Function's file
            if isinstance(entry.get(key), str):
                entry[key] = _relative(entry[key], out_dir.resolve())
    notes = [f"{place}: {note}" for place, note in source.notes]
    return render(source, path, notes), notes


def _relative(code: str, out_dir: Path) -> str:
    """``code`` relative to ``out_dir`` when they share a folder below the root (the written
    file can move with its source), else as it is."""
    if not Path(code).is_absolute() or os.path.commonpath([code, out_dir]) == os.sep:
        return code
    return os.path.relpath(code, out_dir)


def _entries(source: SourceDocument) -> list[dict[str, Any]]:
    edge = source.document.get("edge")
    functions = edge.get("functions") if isinstance(edge, dict) else None
    if not isinstance(functions, dict):
        return []
    return [entry for entry in functions.values() if isinstance(entry, dict)]


def _associations(distribution: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(distribution, dict):
        return
    default = distribution.get("default_cache_behavior")
    behaviors = [*(default if isinstance(default, list) else [default])]
    behaviors += distribution.get("ordered_cache_behavior") or []
    for behavior in behaviors:
        if isinstance(behavior, dict):
            for item in behavior.get("lambda_function_association") or []:
                if isinstance(item, dict):
                    yield item


def render(source: SourceDocument, path: Path, notes: list[str]) -> str:
    lines = [
        f"# Imported from {path.name} ({source.kind}) by `edgeproxy import`.",
        "# Each origin and behavior names its place in the source.",
    ]
    lines += [f"# Not resolved: {note}" for note in notes]
    distribution = source.document.get("distribution")
    if isinstance(distribution, dict):
        lines.append("distribution:")
        for key, value in distribution.items():
            lines += _key(source, path, key, value)
    edge = source.document.get("edge")
    if edge:
        lines += _dump({"edge": edge}, "")
    return "\n".join(lines) + "\n"


def _key(source: SourceDocument, path: Path, key: str, value: Any) -> list[str]:
    if key not in _COMMENTED:
        return _dump({key: value}, "  ")
    if isinstance(value, dict):
        return ["  " + _comment(source, path, (key,)), *_dump({key: value}, "  ")]
    lines = [f"  {key}:"]
    for index, item in enumerate(value if isinstance(value, list) else [value]):
        lines.append("    " + _comment(source, path, (key, index)))
        lines += _dump([item], "    ")
    return lines


def _comment(source: SourceDocument, path: Path, loc: tuple[int | str, ...]) -> str:
    place = source.place(path_of(("distribution", *loc)))
    if place is None:
        return f"# from {path.name}"
    if _FILE_LINE.fullmatch(place):  # HCL: the file and line of the block
        return f"# from {place}"
    return f"# from {path.name}: {place}"  # JSON and templates: the JSON path


def _dump(value: Any, indent: str) -> list[str]:
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=100)
    return [indent + line for line in text.splitlines()]
