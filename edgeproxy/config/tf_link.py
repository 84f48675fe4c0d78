"""Links a distribution to the other resources of its source: the policies its behaviors
name become inline policy blocks, and each Lambda@Edge association whose function is in the
same files becomes Lambda's handler form (``handler: index.handler``, ``code: <folder>``,
``runtime``) with the code found from the function's ``filename`` / ``source_dir`` or the
``archive_file`` that builds its zip (a zip alone is extracted under ``.edgeproxy/lambda``).

Terraform HCL, ``terraform show -json`` and CloudFormation all come through here, each with
its own ``Catalog`` (how a reference or an id finds its resource).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproxy.config.source_doc import OPAQUE_KEYS, SourceDocument, path_of

MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda's limit on a function's unzipped code

POLICY_TYPES = (
    ("cache_policy", "aws_cloudfront_cache_policy"),
    ("origin_request_policy", "aws_cloudfront_origin_request_policy"),
    ("response_headers_policy", "aws_cloudfront_response_headers_policy"),
)
LAMBDA = "aws_lambda_function"
CF_FUNCTION = "aws_cloudfront_function"
# The account of a CloudFront Function's ARN when the files cannot say it (HCL: AWS assigns
# it); the ARN only keys its edge.functions entry here.
LOCAL_ACCOUNT = "123456789012"
_COMPUTED_POLICY_KEYS = frozenset({"id", "arn", "etag"})


@dataclass(slots=True)
class Known:
    """A resource of the source, with its values in Terraform's names."""

    type: str
    address: str
    where: str
    values: dict[str, Any]


@dataclass(slots=True)
class Catalog:
    """How a value in the distribution finds its resource: ``find(value, type)``."""

    find: Callable[[Any, str], Known | None]
    archives: list[Known] = field(default_factory=list)
    is_reference: Callable[[Any], bool] = lambda value: False


def link(source: SourceDocument, catalog: Catalog, state_dir: Path) -> None:
    """Rewrite ``source.document['distribution']`` in place (see the module docstring)."""
    distribution = source.document.get("distribution")
    if not isinstance(distribution, dict):
        return
    for loc, behavior in _behaviors(distribution):
        _link_policies(behavior, catalog)
        for index, item in enumerate(behavior.get("lambda_function_association") or []):
            if isinstance(item, dict):
                at = (*loc, "lambda_function_association", index)
                _link_function(source, item, at, catalog, state_dir)
        for index, item in enumerate(behavior.get("function_association") or []):
            if isinstance(item, dict):
                at = (*loc, "function_association", index)
                _link_cloudfront_function(source, item, at, catalog, state_dir)
    source.document["distribution"] = _unresolved(source, distribution, ("distribution",), catalog)


def _behaviors(distribution: dict[str, Any]) -> Iterator[tuple[tuple[int | str, ...], Any]]:
    default = distribution.get("default_cache_behavior")
    for item in default if isinstance(default, list) else [default]:
        if isinstance(item, dict):
            yield ("distribution", "default_cache_behavior"), item
    for index, item in enumerate(distribution.get("ordered_cache_behavior") or []):
        if isinstance(item, dict):
            yield ("distribution", "ordered_cache_behavior", index), item


def _link_policies(behavior: dict[str, Any], catalog: Catalog) -> None:
    for kind, tf_type in POLICY_TYPES:
        found = catalog.find(behavior.get(f"{kind}_id"), tf_type)
        if found is not None:
            del behavior[f"{kind}_id"]
            behavior[kind] = {
                k: v for k, v in found.values.items() if k not in _COMPUTED_POLICY_KEYS
            }


def _link_function(
    source: SourceDocument,
    item: dict[str, Any],
    loc: tuple[int | str, ...],
    catalog: Catalog,
    state_dir: Path,
) -> None:
    found = catalog.find(item.get("lambda_arn"), LAMBDA)
    if found is None:
        return
    try:
        code = function_code(found, catalog.archives, state_dir)
    except CodeNotFound as exc:
        source.problems.append((found.where, f"{found.address}: {exc} ({path_of(loc)})"))
        source.settled.add(path_of(loc))  # the association's one problem is this one
        item.pop("lambda_arn")
        return
    item.pop("lambda_arn")
    item["handler"] = found.values.get("handler") or "index.handler"
    item["code"] = str(code)
    runtime = found.values.get("runtime")
    if isinstance(runtime, str) and runtime:
        item["runtime"] = runtime


def _link_cloudfront_function(
    source: SourceDocument,
    item: dict[str, Any],
    loc: tuple[int | str, ...],
    catalog: Catalog,
    state_dir: Path,
) -> None:
    """A ``function_association`` whose ``aws_cloudfront_function`` is in the source: its
    ARN (the source's, else one made of its name) and an ``edge.functions`` entry with its
    code file (``file(...)`` as written, else the code written under ``.edgeproxy``)."""
    found = catalog.find(item.get("function_arn"), CF_FUNCTION)
    if found is None:
        return
    values = found.values
    name, code = values.get("name"), values.get("code")
    if not isinstance(name, str) or not isinstance(code, str) or not code:
        source.problems.append(
            (
                found.where,
                f"{found.address}: its name or code is not in these files ({path_of(loc)})",
            )
        )
        source.settled.add(path_of(loc))
        item.pop("function_arn")
        return
    arn = item.get("function_arn")
    if not (isinstance(arn, str) and arn.startswith("arn:")):
        arn = f"arn:aws:cloudfront::{LOCAL_ACCOUNT}:function/{name}"
    item["function_arn"] = arn
    code_file = values.get("code_file")
    if not isinstance(code_file, str):
        code_file = str(_written(state_dir.parent / "functions" / f"{name}.js", code))
    entry = {"file": code_file}
    if isinstance(values.get("runtime"), str):
        entry["runtime"] = values["runtime"]
    edge = source.document.setdefault("edge", {})
    edge.setdefault("functions", {})[arn] = entry
    source.where[path_of(("edge", "functions", arn))] = found.where


def _written(path: Path, text: str) -> Path:
    """``text`` in ``path``, written only when it differs (an unchanged file keeps its
    mtime, so the function is not reloaded for nothing)."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def _unresolved(
    source: SourceDocument, value: Any, loc: tuple[int | str, ...], catalog: Catalog
) -> Any:
    """References nothing resolved: noted once with the key they fed; kept as text where the
    edge never acts on the value (``OPAQUE_KEYS``), else left out."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if catalog.is_reference(item):
                place = source.place(path_of((*loc, key))) or path_of(loc)
                note = f"{path_of((*loc, key))}: {item} is known only once AWS creates it"
                source.notes.append((place, note))
                if key in OPAQUE_KEYS or key in ("function_arn",):
                    out[key] = str(item)
                continue
            out[key] = _unresolved(source, item, (*loc, key), catalog)
        return out
    if isinstance(value, list):
        return [_unresolved(source, item, (*loc, i), catalog) for i, item in enumerate(value)]
    return value


# --- function code -------------------------------------------------------------------------


class CodeNotFound(Exception):
    pass


def function_code(function: Known, archives: list[Known], state_dir: Path) -> Path:
    """The folder of a Lambda function's code, from what its resource says."""
    values = function.values
    source_dir = values.get("source_dir")
    if isinstance(source_dir, str) and source_dir:
        return Path(source_dir)
    filename = values.get("filename")
    if not isinstance(filename, str) or not filename:
        raise CodeNotFound("its code is not in these files (no filename or source_dir)")
    for archive in archives:
        if _same_path(archive.values.get("output_path"), filename):
            return _archive_source(archive)
    zip_path = Path(filename)
    if zipfile.is_zipfile(zip_path):
        return extract(zip_path, state_dir)
    raise CodeNotFound(f"filename {filename} is not a zip and no archive_file builds it")


def _same_path(a: Any, b: str) -> bool:
    return isinstance(a, str) and Path(a).resolve() == Path(b).resolve()


def _archive_source(archive: Known) -> Path:
    values = archive.values
    if isinstance(values.get("source_dir"), str):
        return Path(values["source_dir"])
    if isinstance(values.get("source_file"), str):
        return Path(values["source_file"]).parent
    raise CodeNotFound(f"{archive.address} has neither source_dir nor source_file")


def extract(zip_path: Path, state_dir: Path) -> Path:
    """The zip's files in a folder named by its content hash (extracted once), refusing
    members that would land outside it and more than Lambda's unzipped limit."""
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()[:16]
    folder = state_dir / f"{zip_path.stem}-{digest}"
    if folder.is_dir():
        return folder
    with zipfile.ZipFile(zip_path) as archive:
        members = archive.infolist()
        if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
            raise CodeNotFound(f"{zip_path} unzips to more than Lambda's 250 MB")
        for member in members:
            target = (folder / member.filename).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise CodeNotFound(f"{zip_path}: {member.filename} would land outside its folder")
        folder.mkdir(parents=True, exist_ok=True)
        archive.extractall(folder)
    return folder
