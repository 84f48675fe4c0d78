"""Which format a ``--config`` file is, decided once by its content, and its translation into
our YAML's document (Terraform's names), one reader per format:

=========================  ================================================================
our YAML                   ``distribution:`` and ``edge:`` (as written)
Terraform HCL              a ``.tf`` file or a folder of them (``config/terraform.py``)
``terraform show -json``   state (``values``) or plan (``planned_values``)
AWS API JSON               ``aws cloudfront get-distribution-config`` / ``get-distribution``
CloudFormation / CDK       a template (JSON or YAML with short-form tags) with an
                           ``AWS::CloudFront::Distribution`` (``config/cloudformation.py``)
=========================  ================================================================

Every reader leaves out the placeholders providers write for unset values
(``source_doc.without_placeholders``) and links the distribution to the policies and
functions of the same source (``config/tf_link.py``); the loader then validates the result
with the same models as our YAML. A later file overlays an earlier one (``overlay``); each
YAML file's relative paths are read from its own folder (``config/anchoring.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproxy.config import aws_names
from edgeproxy.config.anchoring import anchored
from edgeproxy.config.source_doc import SourceDocument, without_placeholders
from edgeproxy.config.tf_link import Catalog, Known, link
from edgeproxy.config.yaml_reader import read_yaml
from edgeproxy.errors import ConfigError

STATE_DIR = Path(".edgeproxy") / "lambda"  # zips extracted, below the source's folder
DISTRIBUTION = "aws_cloudfront_distribution"


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """What the command line adds to a source: ``--var``, ``--var-file``, ``--distribution``."""

    variables: Mapping[str, str] = field(default_factory=dict)
    var_files: tuple[Path, ...] = ()
    distribution: str | None = None


def sniff(path: Path) -> str:
    """``yaml``, ``terraform``, ``terraform-json``, ``aws-api`` or ``cloudformation``."""
    if path.is_dir() or path.suffix == ".tf":
        return "terraform"
    try:
        head = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "yaml"  # read_yaml reports it
    if head.lstrip().startswith("{"):
        try:
            data = json.loads(head)
        except ValueError:
            return "yaml"
        return _json_kind(data)
    if re.search(r"^(Resources|AWSTemplateFormatVersion)\s*:", head, re.MULTILINE):
        return "cloudformation"
    return "yaml"


def _json_kind(data: Any) -> str:
    if not isinstance(data, dict):
        return "yaml"
    if "format_version" in data and ("values" in data or "planned_values" in data):
        return "terraform-json"
    if {"DistributionConfig", "Distribution", "DistributionList"} & data.keys():
        return "aws-api"
    if "Resources" in data:
        return "cloudformation"
    return "yaml"


def read_source(path: Path, options: SourceOptions) -> SourceDocument:
    kind = sniff(path)
    base_dir = (path if path.is_dir() else path.resolve().parent).resolve()
    if kind == "yaml":
        return SourceDocument(read_yaml(path), base_dir)
    source = _READERS[kind](path, options, base_dir)
    source.kind = kind
    return source


def overlay(base: SourceDocument, later: SourceDocument) -> SourceDocument:
    """``later`` over ``base``: mappings merged key by key, anything else replaced."""
    if not isinstance(base.document, dict) or not isinstance(later.document, dict):
        return later
    base_dir = later.base_dir if later.kind == "yaml" else base.base_dir
    if base_dir != base.base_dir:  # the earlier file's relative paths stay its folder's
        anchored(base.document, base.base_dir)
    return SourceDocument(
        _merge(base.document, later.document),
        base_dir,
        base.kind,
        {**base.where, **later.where},
        base.notes + later.notes,
        base.problems + later.problems,
        base.settled | later.settled,
    )


def _merge(base: Any, later: Any) -> Any:
    if isinstance(base, dict) and isinstance(later, dict):
        out = dict(base)
        for key, value in later.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return later


def pick(candidates: Sequence[tuple[str, str, Any]], wanted: str | None, what: str) -> Any:
    """The one distribution of ``candidates`` ((name, id, value)), or the one ``wanted``
    names by name or id; ConfigError lists them otherwise."""
    names = ", ".join(f"{name} ({ident})" if ident else name for name, ident, _ in candidates)
    if not candidates:
        raise ConfigError([("<file>", f"no CloudFront distribution in {what}")])
    if wanted is not None:
        for name, ident, value in candidates:
            if wanted in (name, ident):
                return value
        raise ConfigError([("--distribution", f"names none of the distributions: {names}")])
    if len(candidates) > 1:
        raise ConfigError(
            [("--distribution", f"{what} holds several distributions, pick one: {names}")]
        )
    return candidates[0][2]


# --- Terraform HCL -------------------------------------------------------------------------


def _terraform(path: Path, options: SourceOptions, base_dir: Path) -> SourceDocument:
    from edgeproxy.config import terraform

    given = {**_tfvars(base_dir, options), **options.variables}
    config = terraform.read_terraform(path, given)
    if config.problems:
        raise ConfigError(config.problems)
    blocks = [b for b in config.blocks.values() if (b.mode, b.type) == ("resource", DISTRIBUTION)]
    block = pick([(b.name, b.address, b) for b in blocks], options.distribution, str(path))
    values, where, notes = config.body(block, ("distribution",))
    source = SourceDocument({"distribution": without_placeholders(values)}, base_dir)
    source.where, source.notes = where, notes

    def known(value: Any, tf_type: str) -> Known | None:
        if not isinstance(value, terraform.Ref) or value.block.type != tf_type:
            return None
        body, _, block_notes = config.body(value.block, (value.block.address,))
        source.notes.extend(block_notes)
        body = without_placeholders(body)
        code_file = _file_argument(config, value.block.body.get("code"))
        if code_file is not None:  # code = file("..."): the file itself, edits reload it
            body["code_file"] = code_file
        return Known(tf_type, value.block.address, value.block.node.at(), body)

    archives = [
        Known("archive_file", b.address, b.node.at(), config.body(b, ())[0])
        for b in config.blocks.values()
        if (b.mode, b.type) == ("data", "archive_file")
    ]
    catalog = Catalog(known, archives, lambda v: isinstance(v, terraform.Ref))
    link(source, catalog, base_dir / STATE_DIR)
    return source


_FILE_CALL = re.compile(r"\$\{file\((.+)\)\}")


def _file_argument(config: Any, raw: Any) -> str | None:
    """The path of ``file(PATH)`` when an argument is exactly that call, else None."""
    from edgeproxy.config.hcl_expr import Unresolved, expression

    match = _FILE_CALL.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        return None
    try:
        path = expression(match.group(1), config)
    except Unresolved:
        return None
    return str(config.folder / path) if isinstance(path, str) else None


def _tfvars(folder: Path, options: SourceOptions) -> dict[str, Any]:
    """terraform.tfvars, then *.auto.tfvars, then each --var-file, as Terraform reads them."""
    import hcl2

    from edgeproxy.config.hcl_expr import evaluate

    files = [folder / "terraform.tfvars", *sorted(folder.glob("*.auto.tfvars"))]
    values: dict[str, Any] = {}
    for file in [f for f in files if f.is_file()] + list(options.var_files):
        try:
            raw = hcl2.loads(file.read_text(encoding="utf-8"))
            values.update(evaluate({k: v for k, v in raw.items()}, _NoScope(folder)))
        except Exception as exc:  # an unreadable or unparsable var file names itself
            raise ConfigError([(str(file), f"cannot read variables: {exc}")]) from None
    return values


class _NoScope:
    """Variable files hold literals only (Terraform's rule)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def root(self, name: str) -> Any:
        from edgeproxy.config.hcl_expr import Unresolved

        raise Unresolved(f"{name} in a variables file")

    def here(self) -> Path:
        return self.folder


# --- terraform show -json ------------------------------------------------------------------


def _modules(module: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(module, dict):
        return
    for index, resource in enumerate(module.get("resources") or []):
        if isinstance(resource, dict):
            yield f"{path}.resources[{index}]", resource
    for index, child in enumerate(module.get("child_modules") or []):
        yield from _modules(child, f"{path}.child_modules[{index}]")


def _terraform_json(path: Path, options: SourceOptions, base_dir: Path) -> SourceDocument:
    data = json.loads(path.read_text(encoding="utf-8"))
    top = "values" if "values" in data else "planned_values"
    resources = list(_modules((data.get(top) or {}).get("root_module"), f"{top}.root_module"))
    candidates = [
        (r.get("address", ""), (r.get("values") or {}).get("id") or "", (at, r))
        for at, r in resources
        if r.get("type") == DISTRIBUTION and r.get("mode") == "managed"
    ]
    at, resource = pick(candidates, options.distribution, str(path))
    values = without_placeholders(resource.get("values") or {})
    edge = _edge_names(values.get("domain_name"), values.get("id"))
    source = SourceDocument(_document(values, edge), base_dir)
    _json_where(source.where, values, ("distribution",), f"{at}.values")

    def known(value: Any, tf_type: str) -> Known | None:
        for where, r in resources:
            vals = r.get("values") or {}
            ids = {vals.get("id"), vals.get("arn"), vals.get("qualified_arn")}
            if r.get("type") == tf_type and isinstance(value, str) and value in ids:
                return Known(tf_type, r.get("address", ""), where, _relative(vals, base_dir))
        return None

    archives = [
        Known("archive_file", r.get("address", ""), w, _relative(r.get("values") or {}, base_dir))
        for w, r in resources
        if r.get("type") == "archive_file"
    ]
    link(source, Catalog(known, archives), base_dir / STATE_DIR)
    return source


def _relative(values: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Paths in state are relative to where Terraform ran: taken as the JSON file's folder."""
    out = dict(values)
    for key in ("filename", "source_dir", "source_file", "output_path"):
        if isinstance(out.get(key), str) and out[key]:
            out[key] = str(base_dir / out[key])
    return out


def _json_where(where: dict[str, str], value: Any, loc: tuple[int | str, ...], at: str) -> None:
    from edgeproxy.config.source_doc import path_of

    where[path_of(loc)] = at
    if isinstance(value, dict):
        for key, item in value.items():
            _json_where(where, item, (*loc, key), f"{at}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _json_where(where, item, (*loc, index), f"{at}[{index}]")


def _edge_names(domain_name: Any, distribution_id: Any) -> dict[str, Any]:
    edge: dict[str, Any] = {}
    if isinstance(domain_name, str) and domain_name:
        edge["distribution_domain_name"] = domain_name
    if isinstance(distribution_id, str) and distribution_id:
        edge["distribution_id"] = distribution_id
    return edge


def _document(distribution: dict[str, Any], edge: dict[str, Any]) -> dict[str, Any]:
    for computed in ("id", "arn", "domain_name", "etag", "status", "hosted_zone_id"):
        distribution.pop(computed, None)
    return {"distribution": distribution, **({"edge": edge} if edge else {})}


# --- the AWS API ---------------------------------------------------------------------------


def _aws_api(path: Path, options: SourceOptions, base_dir: Path) -> SourceDocument:
    data = json.loads(path.read_text(encoding="utf-8"))
    candidates: list[tuple[str, str, Any]] = []
    if "DistributionConfig" in data:  # get-distribution-config: {ETag, DistributionConfig}
        config = data["DistributionConfig"]
        candidates.append((str(config.get("Comment") or "DistributionConfig"), "", ("", data)))
    if isinstance(data.get("Distribution"), dict):  # get-distribution
        dist = data["Distribution"]
        candidates.append(
            (str(dist.get("Id", "")), str(dist.get("Id", "")), ("Distribution.", dist))
        )
    items = (data.get("DistributionList") or {}).get("Items") or []
    for index, dist in enumerate(items):  # list-distributions: summaries, config inline
        at = f"DistributionList.Items[{index}]."
        candidates.append(
            (
                str(dist.get("Id", "")),
                str(dist.get("Id", "")),
                (at, {"DistributionConfig": dist, **dist}),
            )
        )
    prefix, chosen = pick(candidates, options.distribution, str(path))
    config = aws_names.unwrap(chosen.get("DistributionConfig") or {})
    for summary_only in (
        "Id",
        "ARN",
        "ETag",
        "Status",
        "LastModifiedTime",
        "DomainName",
        "AliasICPRecordals",
    ):
        config.pop(summary_only, None)
    source = SourceDocument({}, base_dir)
    values = aws_names.translate(
        config, source.where, ("distribution",), f"{prefix}DistributionConfig"
    )
    edge = _edge_names(chosen.get("DomainName"), chosen.get("Id"))
    source.document = _document(without_placeholders(values), edge)
    return source


def _cloudformation(path: Path, options: SourceOptions, base_dir: Path) -> SourceDocument:
    from edgeproxy.config import cloudformation

    return cloudformation.read_template(path, options.distribution, base_dir, options.variables)


_READERS = {
    "terraform": _terraform,
    "terraform-json": _terraform_json,
    "aws-api": _aws_api,
    "cloudformation": _cloudformation,
}
