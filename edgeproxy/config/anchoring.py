"""Relative paths of one YAML file made absolute, for when a later ``--config`` in another
folder overlays it: each file's relative paths are read from its own folder, whichever file
comes last (the loaded config's ``base_dir`` is the last YAML file's folder).

The keys that hold paths in our YAML: a behavior's ``lambda_function_association``
``handler`` (a file spec, ``handlers/auth.py:handler``) and ``code``; ``edge.functions``
entries (a file spec, or ``handler``/``code``/``file``); ``edge.key_value_stores`` files;
``edge.demo_origin.root``, ``edge.tls.cert_dir`` and ``edge.cache.disk.folder``. Anything
else, or a value of an unexpected shape, is left as written for validation to report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeproxy.functions.handler_strings import is_lambda_form

_FILE_SUFFIXES = (".py", ".js", ".mjs", ".cjs")
# (section, key path inside it) of single folder or file values.
_FOLDERS = (("demo_origin", "root"), ("tls", "cert_dir"), ("cache", "disk", "folder"))


def anchored(document: Any, base_dir: Path) -> Any:
    """``document`` (our YAML, as read) with every relative path made absolute under
    ``base_dir``; changed in place and returned."""
    if not isinstance(document, dict):
        return document
    for association in _associations(document.get("distribution")):
        _anchor_entry(association, base_dir)
    edge = document.get("edge")
    if isinstance(edge, dict):
        _anchor_edge(edge, base_dir)
    return document


def _anchor_edge(edge: dict[str, Any], base_dir: Path) -> None:
    functions = edge.get("functions")
    if isinstance(functions, dict):
        for key, entry in functions.items():
            if isinstance(entry, str):
                functions[key] = _spec(entry, base_dir)
            elif isinstance(entry, dict):
                _anchor_entry(entry, base_dir)
    stores = edge.get("key_value_stores")
    if isinstance(stores, dict):
        for key, file in stores.items():
            stores[key] = _path(file, base_dir)
    for *parents, key in _FOLDERS:
        block: Any = edge
        for name in parents:
            block = block.get(name) if isinstance(block, dict) else None
        if isinstance(block, dict) and key in block:
            block[key] = _path(block[key], base_dir)


def _anchor_entry(entry: dict[str, Any], base_dir: Path) -> None:
    """A function: ``handler`` when it is a file spec, ``code`` and ``file`` always."""
    if isinstance(entry.get("handler"), str) and "code" not in entry:
        entry["handler"] = _spec(entry["handler"], base_dir)
    for key in ("code", "file"):
        if key in entry:
            entry[key] = _path(entry[key], base_dir)


def _associations(distribution: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(distribution, dict):
        return
    default = distribution.get("default_cache_behavior")
    behaviors = [*(default if isinstance(default, list) else [default])]
    ordered = distribution.get("ordered_cache_behavior")
    behaviors += ordered if isinstance(ordered, list) else []
    for behavior in behaviors:
        items = behavior.get("lambda_function_association") if isinstance(behavior, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                yield item


def _spec(spec: str, base_dir: Path) -> str:
    """A file spec (``handlers/x.py:handler``) with its file absolute; Lambda's form and a
    ``package.module:function`` are no paths."""
    if is_lambda_form(spec):
        return spec
    target, sep, function = spec.rpartition(":")
    if not sep or not target.endswith(_FILE_SUFFIXES):
        return spec
    return f"{_path(target, base_dir)}:{function}"


def _path(value: Any, base_dir: Path) -> Any:
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    return str(base_dir / value)
