"""A CloudFormation (or ``cdk synth``) template with an ``AWS::CloudFront::Distribution``:
JSON, or YAML with the short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``, …).

Intrinsic functions are resolved as far as the template allows: ``Ref`` to a parameter (its
``Default``, or ``--var NAME=VALUE``) or a pseudo parameter, ``Fn::Sub``, ``Fn::Join``,
``Fn::Select``, an S3 bucket's domain names. A ``Ref``/``Fn::GetAtt`` to another resource
is a ``CfnRef``, which ``tf_link`` resolves: cache, origin request and response headers
policies become inline policies, a Lambda version or function becomes its code (a CDK asset
folder from the resource's ``aws:asset:path``, or inline ``Code.ZipFile``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgeproxy.config import aws_names
from edgeproxy.config.hcl_expr import Unresolved
from edgeproxy.config.source_doc import SourceDocument, without_placeholders
from edgeproxy.config.tf_link import Catalog, Known, link
from edgeproxy.errors import ConfigError

PSEUDO: Mapping[str, str] = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "local-stack",
    "AWS::URLSuffix": "amazonaws.com",
}
POLICY_CONFIGS: Mapping[str, tuple[str, str]] = {
    "AWS::CloudFront::CachePolicy": ("aws_cloudfront_cache_policy", "CachePolicyConfig"),
    "AWS::CloudFront::OriginRequestPolicy": (
        "aws_cloudfront_origin_request_policy",
        "OriginRequestPolicyConfig",
    ),
    "AWS::CloudFront::ResponseHeadersPolicy": (
        "aws_cloudfront_response_headers_policy",
        "ResponseHeadersPolicyConfig",
    ),
}
_INLINE_SUFFIX = {"node": "js", "pyth": "py"}


@dataclass(frozen=True, slots=True)
class CfnRef:
    """A ``Ref`` or ``Fn::GetAtt`` of another resource in the template."""

    logical_id: str
    attr: str = "Ref"

    def __str__(self) -> str:
        return f"{self.logical_id}.{self.attr}" if self.attr != "Ref" else self.logical_id


class _TagLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms: ``!Ref x`` is ``{Ref: x}``, ``!GetAtt a.b`` is
    ``{Fn::GetAtt: a.b}``, every other ``!Name v`` is ``{Fn::Name: v}``."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_TagLoader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        return json.loads(text)
    try:
        return yaml.load(text, Loader=_TagLoader)  # noqa: S506 - a SafeLoader with tags
    except yaml.YAMLError as exc:
        raise ConfigError([(path.name, f"not a valid template: {exc}")]) from None


class Template:
    def __init__(self, data: dict[str, Any], variables: Mapping[str, str]) -> None:
        self.resources: dict[str, Any] = data.get("Resources") or {}
        self.parameters: dict[str, Any] = data.get("Parameters") or {}
        self.variables = variables

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key.startswith("Fn::"):
                return self.function(key[4:], arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, name: str) -> Any:
        if name in self.variables:
            return self.variables[name]
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            parameter = self.parameters[name] or {}
            if "Default" not in parameter:
                raise Unresolved(f"parameter {name} has no Default: give --var {name}=VALUE")
            return parameter["Default"]
        if name in self.resources:
            return CfnRef(name)
        raise Unresolved(f"Ref {name}: no such parameter or resource")

    def function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(str(logical), str(attr))
        if name == "Sub":
            return self.sub(arg)
        if name == "Join":
            sep, items = arg
            parts = self.resolve(items)
            return self._joined(parts, str(sep))
        if name == "Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        raise Unresolved(f"Fn::{name} is not evaluated locally")

    def _joined(self, parts: list[Any], sep: str) -> Any:
        refs = [p for p in parts if isinstance(p, CfnRef)]
        if refs:
            return refs[0]  # "${Fn.Arn}:${Version}" stands for the function
        return sep.join(str(p) for p in parts)

    def get_att(self, logical: str, attr: str) -> Any:
        resource = self.resources.get(logical)
        if resource is None:
            raise Unresolved(f"Fn::GetAtt {logical}.{attr}: no such resource")
        if resource.get("Type") == "AWS::S3::Bucket" and attr in (
            "RegionalDomainName",
            "DomainName",
        ):
            bucket = self.resolve((resource.get("Properties") or {}).get("BucketName"))
            if not isinstance(bucket, str):
                raise Unresolved(f"{logical} has no BucketName")
            region = f".{PSEUDO['AWS::Region']}" if attr == "RegionalDomainName" else ""
            return f"{bucket}.s3{region}.amazonaws.com"
        return CfnRef(logical, attr)

    def sub(self, arg: Any) -> Any:
        text, local = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
        out, parts, rest = "", [], str(text)
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out += before
            if name.startswith("!"):
                out += "${" + name[1:] + "}"
                continue
            value = (
                self.resolve(local[name])
                if name in local
                else (self.get_att(*name.split(".", 1)) if "." in name else self.ref(name))
            )
            parts.append(value)
            out += str(value)
        refs = [p for p in parts if isinstance(p, CfnRef)]
        return refs[0] if refs else out + rest

    def deep(self, value: Any, notes: list[tuple[str, str]], at: str) -> Any:
        """``value`` resolved; what cannot be is noted at its JSON path and left out."""
        try:
            if isinstance(value, dict) and not (len(value) == 1 and _intrinsic(value)):
                out = {}
                for key, item in value.items():
                    resolved = self.deep(item, notes, f"{at}.{key}")
                    if resolved is not _MISSING:
                        out[key] = resolved
                return out
            if isinstance(value, list):
                items = [self.deep(v, notes, f"{at}[{i}]") for i, v in enumerate(value)]
                return [i for i in items if i is not _MISSING]
            return self.resolve(value)
        except Unresolved as exc:
            notes.append((at, exc.reason))
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            notes.append((at, f"intrinsic function not understood: {exc}"))
        return _MISSING


_MISSING = object()


def _intrinsic(value: dict[str, Any]) -> bool:
    key = next(iter(value))
    return key == "Ref" or key.startswith("Fn::")


def read_template(
    path: Path, wanted: str | None, base_dir: Path, variables: Mapping[str, str] | None = None
) -> SourceDocument:
    data = load_template(path)
    if not isinstance(data, dict):
        raise ConfigError([(path.name, "a template is a mapping with Resources")])
    template = Template(data, variables or {})
    candidates = [
        (logical, logical, logical)
        for logical, resource in template.resources.items()
        if isinstance(resource, dict) and resource.get("Type") == "AWS::CloudFront::Distribution"
    ]
    logical = pick_one(candidates, wanted, str(path))
    at = f"Resources.{logical}.Properties.DistributionConfig"
    raw = ((template.resources[logical].get("Properties") or {}).get("DistributionConfig")) or {}
    source = SourceDocument({}, base_dir)
    resolved = template.deep(raw, source.notes, at)
    values = aws_names.translate(resolved, source.where, ("distribution",), at)
    _method_defaults(values)
    source.document = {"distribution": without_placeholders(values)}
    catalog = Catalog(
        lambda value, tf_type: _known(template, value, tf_type, base_dir, source.notes),
        [],
        lambda value: isinstance(value, CfnRef),
    )
    link(source, catalog, base_dir / ".edgeproxy" / "lambda")
    return source


def _method_defaults(values: Any) -> None:
    """CloudFormation's defaults where Terraform requires the key: GET and HEAD
    (AWS::CloudFront::Distribution CacheBehavior AllowedMethods / CachedMethods)."""
    if not isinstance(values, dict):
        return
    behaviors = [
        values.get("default_cache_behavior"),
        *(values.get("ordered_cache_behavior") or []),
    ]
    for behavior in behaviors:
        if isinstance(behavior, dict):
            behavior.setdefault("allowed_methods", ["GET", "HEAD"])
            behavior.setdefault("cached_methods", ["GET", "HEAD"])


def pick_one(candidates: list[tuple[str, str, Any]], wanted: str | None, what: str) -> Any:
    from edgeproxy.config.sources import pick

    return pick(candidates, wanted, what)


def _known(
    template: Template, value: Any, tf_type: str, base_dir: Path, notes: list[tuple[str, str]]
) -> Known | None:
    if not isinstance(value, CfnRef):
        return None
    resource = template.resources.get(value.logical_id) or {}
    kind = str(resource.get("Type", ""))
    props = resource.get("Properties") or {}
    at = f"Resources.{value.logical_id}"
    if kind in POLICY_CONFIGS and POLICY_CONFIGS[kind][0] == tf_type:
        config = template.deep(props.get(POLICY_CONFIGS[kind][1]) or {}, notes, at)
        values = aws_names.translate(config, {}, ("policy",), at)
        return Known(tf_type, value.logical_id, at, without_placeholders(values))
    if tf_type != "aws_lambda_function":
        return None
    if kind == "AWS::Lambda::Version":
        return _known(
            template, template.deep(props.get("FunctionName"), notes, at), tf_type, base_dir, notes
        )
    if kind == "AWS::Lambda::Function":
        return Known(
            tf_type,
            value.logical_id,
            at,
            _function(template, value.logical_id, resource, base_dir, notes),
        )
    return None


def _function(
    template: Template,
    logical: str,
    resource: dict[str, Any],
    base_dir: Path,
    notes: list[tuple[str, str]],
) -> dict[str, Any]:
    props = resource.get("Properties") or {}
    at = f"Resources.{logical}.Properties"
    values: dict[str, Any] = {
        "handler": template.deep(props.get("Handler"), notes, f"{at}.Handler"),
        "runtime": template.deep(props.get("Runtime"), notes, f"{at}.Runtime"),
    }
    asset = (resource.get("Metadata") or {}).get("aws:asset:path")
    code = props.get("Code") or {}
    if isinstance(asset, str):
        values["source_dir"] = str(base_dir / asset)
    elif isinstance(code, dict) and isinstance(code.get("ZipFile"), str):
        values["source_dir"] = str(_inline_code(logical, values, code["ZipFile"], base_dir))
    return values


def _inline_code(logical: str, values: dict[str, Any], text: str, base_dir: Path) -> Path:
    """``Code.ZipFile`` written out as the file its handler names (``index.handler`` →
    ``index.js`` or ``index.py`` by runtime)."""
    module = str(values.get("handler") or "index.handler").rsplit(".", 1)[0]
    runtime = str(values.get("runtime") or "nodejs20.x")
    folder = base_dir / ".edgeproxy" / "lambda" / f"{logical}-inline"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.{_INLINE_SUFFIX.get(runtime[:4], 'js')}").write_text(
        text, encoding="utf-8"
    )
    return folder
