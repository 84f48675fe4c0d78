"""A Terraform configuration (a ``.tf`` file or a folder of them), read with python-hcl2 and
resolved as far as the files allow: variables (defaults, ``--var``, ``--var-file``,
``terraform.tfvars``, ``*.auto.tfvars``), locals, ``path.module``, attributes of resources
and data sources declared in the same files, managed policies named by ``data`` sources,
S3 bucket domain names, and ``dynamic`` blocks. An attribute AWS computes (a policy's id, a
function's ``qualified_arn``) becomes a ``Ref`` to its resource, which ``tf_link`` turns
into the inline policy or the function's code.

python-hcl2 gives no line numbers, so ``scan`` reads the block headers and attribute names
from the text and the two are walked side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from edgeproxy.config.hcl_expr import Unresolved, evaluate
from edgeproxy.config.source_doc import OPAQUE_KEYS, path_of

# --- line numbers --------------------------------------------------------------------------


@dataclass(slots=True)
class HclNode:
    """One block as written: its line, type, labels, nested blocks and attribute lines."""

    file: Path
    line: int
    kind: str = ""
    labels: tuple[str, ...] = ()
    children: list[HclNode] = field(default_factory=list)
    attrs: dict[str, int] = field(default_factory=dict)

    def blocks(self, kind: str, labels: tuple[str, ...] | None = None) -> list[HclNode]:
        return [
            c for c in self.children if c.kind == kind and (labels is None or c.labels == labels)
        ]

    def at(self, attr: str | None = None) -> str:
        line = self.attrs.get(attr, self.line) if attr else self.line
        return f"{self.file.name}:{line}"


_HEADER = re.compile(r'\s*([A-Za-z_][\w-]*)((?:\s+"[^"]*"|\s+[A-Za-z_][\w-]*)*)\s*\{')
_ATTR = re.compile(r"\s*([A-Za-z_][\w-]*)\s*=(?![=>])")
_HEREDOC = re.compile(r"<<-?([A-Za-z_]\w*)\s*$")


def scan(text: str, file: Path) -> HclNode:
    root = HclNode(file, 0)
    stack: list[HclNode | None] = [root]
    heredoc: str | None = None
    in_comment = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        if in_comment:
            if "*/" not in line:
                continue
            line, in_comment = line.split("*/", 1)[1], False
        top = stack[-1]
        pending: HclNode | None = None
        attr = _ATTR.match(line)
        header = None if attr else _HEADER.match(line)
        if top is not None and attr:
            top.attrs.setdefault(attr.group(1), lineno)
        elif top is not None and header:
            labels = tuple(part.strip('"') for part in header.group(2).split())
            pending = HclNode(file, lineno, header.group(1), labels)
            top.children.append(pending)
        doc = _HEREDOC.search(line)
        heredoc = doc.group(1) if doc else None
        in_comment = _walk_braces(line, stack, pending)
    return root


def _walk_braces(line: str, stack: list[HclNode | None], pending: HclNode | None) -> bool:
    """Push and pop ``stack`` for the braces of ``line`` outside strings and comments; the
    first ``{`` of a block header opens that block. True when a ``/*`` comment stays open."""
    quoted = False
    i = 0
    while i < len(line):
        ch = line[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "#" or line.startswith("//", i):
            return False
        elif line.startswith("/*", i):
            end = line.find("*/", i + 2)
            if end < 0:
                return True
            i = end + 1
        elif ch == "{":
            stack.append(pending)
            pending = None
        elif ch == "}" and len(stack) > 1:
            stack.pop()
        i += 1
    return False


# --- the configuration ---------------------------------------------------------------------


@dataclass(slots=True)
class TfBlock:
    """A ``resource`` or ``data`` block."""

    mode: str  # "resource" | "data"
    type: str
    name: str
    body: dict[str, Any]
    node: HclNode

    @property
    def address(self) -> str:
        prefix = "data." if self.mode == "data" else ""
        return f"{prefix}{self.type}.{self.name}"


@dataclass(frozen=True, slots=True)
class Ref:
    """An attribute AWS computes, of a resource in these files (``tf_link`` resolves it)."""

    block: TfBlock
    attr: str

    def __str__(self) -> str:
        return f"{self.block.address}.{self.attr}"


@dataclass(slots=True)
class Definition:
    value: Any
    node: HclNode
    attr: str


class TfConfig:
    """The blocks of one module, and the scope its expressions are evaluated in."""

    def __init__(self, folder: Path, given: Mapping[str, Any]) -> None:
        self.folder = folder
        self.given = dict(given)  # variable values from the command line and tfvars
        self.variables: dict[str, Definition] = {}
        self.locals: dict[str, Definition] = {}
        self.blocks: dict[tuple[str, str, str], TfBlock] = {}
        self.region: Definition | None = None
        self.problems: list[tuple[str, str]] = []
        self._evaluating: set[str] = set()
        self._local_values: dict[str, Any] = {}

    # Scope
    def here(self) -> Path:
        return self.folder

    def root(self, name: str) -> Any:
        if name == "var":
            return _Namespace(self.variable)
        if name == "local":
            return _Namespace(self.local)
        if name == "path":
            return {"module": str(self.folder), "root": str(self.folder), "cwd": str(self.folder)}
        if name == "data":
            return _Namespace(lambda kind: _Namespace(lambda n: self.block("data", kind, n)))
        if name in ("each", "count", "module", "terraform", "self"):
            raise Unresolved(f"{name}.* is not evaluated locally")
        return _Namespace(lambda n: self.block("resource", name, n))

    def variable(self, name: str) -> Any:
        if name in self.given:
            return self.given[name]
        definition = self.variables.get(name)
        if definition is None:
            raise Unresolved(f"var.{name} is not declared")
        if "default" not in definition.value:
            raise Unresolved(f"var.{name} has no default: give --var {name}=VALUE")
        return self.evaluate(definition.value["default"], f"var.{name}")

    def local(self, name: str) -> Any:
        if name in self._local_values:
            return self._local_values[name]
        definition = self.locals.get(name)
        if definition is None:
            raise Unresolved(f"local.{name} is not defined")
        value = self.evaluate(definition.value, f"local.{name}")
        self._local_values[name] = value
        return value

    def evaluate(self, raw: Any, what: str, scope: Any = None) -> Any:
        if what in self._evaluating:
            raise Unresolved(f"{what} refers to itself")
        self._evaluating.add(what)
        try:
            return evaluate(raw, scope or self)
        finally:
            self._evaluating.discard(what)

    def block(self, mode: str, kind: str, name: str) -> Any:
        found = self.blocks.get((mode, kind, name))
        if found is None:
            prefix = "data." if mode == "data" else ""
            raise Unresolved(f"{prefix}{kind}.{name} is not in these files")
        return _BlockAttrs(self, found)

    def attribute(self, block: TfBlock, attr: str) -> Any:
        computed = COMPUTED.get((block.mode, block.type, attr))
        if computed is not None:
            return computed(self, block)
        if attr in block.body and not _is_blocks(block.body[attr]):
            return self.evaluate(block.body[attr], f"{block.address}.{attr}")
        if block.mode == "data" and block.type not in LOCAL_DATA:
            raise Unresolved(f"{block.address} is read from AWS when Terraform runs")
        return Ref(block, attr)

    def region_name(self) -> str:
        if self.region is None:
            return "us-east-1"
        return str(self.evaluate(self.region.value, "provider.aws.region"))

    def body(
        self, block: TfBlock, loc: tuple[int | str, ...]
    ) -> tuple[dict[str, Any], dict[str, str], list[tuple[str, str]]]:
        """A block's arguments and nested blocks evaluated: (values, where, unresolved),
        key paths starting at ``loc``."""
        walk = _BodyWalk(self)
        values = walk.body(block.body, block.node, self, loc)
        return values, walk.where, walk.unresolved


class _Namespace:
    def __init__(self, get: Any) -> None:
        self._get = get

    def attr(self, name: str) -> Any:
        return self._get(name)


class _BlockAttrs:
    def __init__(self, config: TfConfig, block: TfBlock) -> None:
        self.config = config
        self.block = block

    def attr(self, name: str) -> Any:
        if name.isdigit():  # count: aws_lambda_function.edge[0]
            return self
        return self.config.attribute(self.block, name)


# Data sources Terraform evaluates from the files alone (archive_file) or that name a
# managed policy edgeproxy knows by name.
LOCAL_DATA = frozenset({"archive_file", "local_file"})


def _managed_by_name(config: TfConfig, block: TfBlock) -> Any:
    for key in ("id", "name"):
        if key in block.body:
            return config.evaluate(block.body[key], f"{block.address}.{key}")
    raise Unresolved(f"{block.address} names no policy")


def _bucket_regional(config: TfConfig, block: TfBlock) -> str:
    bucket = config.attribute(block, "bucket")
    return f"{bucket}.s3.{config.region_name()}.amazonaws.com"


def _bucket_global(config: TfConfig, block: TfBlock) -> str:
    return f"{config.attribute(block, 'bucket')}.s3.amazonaws.com"


COMPUTED: Mapping[tuple[str, str, str], Any] = {
    ("data", "aws_cloudfront_cache_policy", "id"): _managed_by_name,
    ("data", "aws_cloudfront_origin_request_policy", "id"): _managed_by_name,
    ("data", "aws_cloudfront_response_headers_policy", "id"): _managed_by_name,
    ("resource", "aws_s3_bucket", "bucket_regional_domain_name"): _bucket_regional,
    ("resource", "aws_s3_bucket", "bucket_domain_name"): _bucket_global,
}


def _is_blocks(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def _unquote(label: str) -> str:
    return label[1:-1] if label.startswith('"') and label.endswith('"') else label


class _Iterator:
    """The scope inside a ``dynamic`` block's content: its iterator name, then the module's."""

    def __init__(self, outer: Any, name: str, key: Any, value: Any) -> None:
        self.outer = outer
        self.name = name
        self.item = {"key": key, "value": value}

    def root(self, name: str) -> Any:
        return self.item if name == self.name else self.outer.root(name)

    def here(self) -> Path:
        return Path(self.outer.here())


class _BodyWalk:
    def __init__(self, config: TfConfig) -> None:
        self.config = config
        self.where: dict[str, str] = {}
        self.unresolved: list[tuple[str, str]] = []

    def body(
        self, raw: dict[str, Any], node: HclNode, scope: Any, loc: tuple[int | str, ...]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.where[path_of(loc)] = node.at()
        for key, value in raw.items():
            if key.startswith("__"):
                continue
            if key == "dynamic":
                self._dynamic(value, node, scope, loc, out)
            elif _is_blocks(value):
                nodes = node.blocks(key) + [node] * len(value)  # a node per block, or the parent
                blocks = out.setdefault(key, [])
                for item, child in zip(value, nodes, strict=False):
                    blocks.append(self.body(item, child, scope, (*loc, key, len(blocks))))
            else:
                self.attribute(key, value, node, scope, loc, out)
        return out

    def attribute(
        self,
        key: str,
        raw: Any,
        node: HclNode,
        scope: Any,
        loc: tuple[int | str, ...],
        out: dict[str, Any],
    ) -> None:
        place = node.at(key)
        self.where[path_of((*loc, key))] = place
        try:
            out[key] = evaluate(raw, scope)
        except Unresolved as exc:
            self.unresolved.append((place, f"{path_of((*loc, key))}: {exc.reason}"))
            if key in OPAQUE_KEYS and isinstance(raw, str):  # never acted on: kept as written
                out[key] = raw
        except RecursionError:
            self.unresolved.append((place, f"{path_of((*loc, key))}: too deeply nested"))

    def _dynamic(
        self,
        specs: list[Any],
        node: HclNode,
        scope: Any,
        loc: tuple[int | str, ...],
        out: dict[str, Any],
    ) -> None:
        nodes = node.blocks("dynamic")
        for index, spec in enumerate(specs):
            for label, content in spec.items():
                if label.startswith("__"):
                    continue
                name = _unquote(label)
                dnode = nodes[index] if index < len(nodes) else node
                self._expand(name, content, dnode, scope, loc, out)

    def _expand(
        self,
        name: str,
        spec: dict[str, Any],
        node: HclNode,
        scope: Any,
        loc: tuple[int | str, ...],
        out: dict[str, Any],
    ) -> None:
        try:
            items = evaluate(spec.get("for_each", []), scope)
            iterator = str(evaluate(spec["iterator"], scope)) if "iterator" in spec else name
        except Unresolved as exc:
            self.unresolved.append((node.at("for_each"), f"dynamic {name}: {exc.reason}"))
            return
        pairs = items.items() if isinstance(items, dict) else enumerate(items or [])
        contents = spec.get("content") or [{}]
        content_node = (node.blocks("content") or [node])[0]
        blocks = out.setdefault(name, [])
        for key, value in pairs:
            inner = _Iterator(scope, iterator, key, value)
            blocks.append(self.body(contents[0], content_node, inner, (*loc, name, len(blocks))))


# --- reading the files ---------------------------------------------------------------------

_OPTIONS = SerializationOptions(with_comments=False, preserve_heredocs=False)


def read_terraform(path: Path, given: Mapping[str, Any]) -> TfConfig:
    folder = path if path.is_dir() else path.parent
    files = sorted(folder.glob("*.tf")) if path.is_dir() else [path]
    config = TfConfig(folder.resolve(), given)
    for file in files:
        _read_file(config, file)
    return config


def _read_file(config: TfConfig, file: Path) -> None:
    try:
        text = file.read_text(encoding="utf-8")
        data = hcl2.loads(text, serialization_options=_OPTIONS)
    except (OSError, UnicodeDecodeError) as exc:
        config.problems.append((file.name, f"cannot read: {exc}"))
        return
    except Exception as exc:  # lark's parse errors carry line and column
        line = getattr(exc, "line", "?")
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        config.problems.append((f"{file.name}:{line}", f"not valid HCL: {first}"))
        return
    root = scan(text, file)
    for (kind, labels), raw, node in _top_blocks(data, root):
        _declare(config, kind, labels, raw, node)


def _top_blocks(
    data: dict[str, Any], root: HclNode
) -> Iterator[tuple[tuple[str, tuple[str, ...]], dict[str, Any], HclNode]]:
    for kind, entries in data.items():
        if not isinstance(entries, list):
            continue
        for entry in entries:
            labels, body = _labels_and_body(entry)
            found = root.blocks(kind, labels)
            yield (kind, labels), body, found[0] if found else HclNode(root.file, 1, kind)


def _labels_and_body(entry: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    labels: list[str] = []
    while isinstance(entry, dict) and not entry.get("__is_block__"):
        keys = [k for k in entry if not k.startswith("__")]
        if len(keys) != 1:
            break
        labels.append(_unquote(keys[0]))
        entry = entry[keys[0]]
    return tuple(labels), entry if isinstance(entry, dict) else {}


def _declare(
    config: TfConfig, kind: str, labels: tuple[str, ...], body: dict[str, Any], node: HclNode
) -> None:
    if kind == "variable" and labels:
        config.variables[labels[0]] = Definition(body, node, "default")
    elif kind == "locals":
        for name, value in body.items():
            if not name.startswith("__"):
                config.locals[name] = Definition(value, node, name)
    elif kind in ("resource", "data") and len(labels) == 2:
        config.blocks[(kind, *labels)] = TfBlock(kind, labels[0], labels[1], body, node)
    elif kind == "provider" and labels == ("aws",) and "region" in body and "alias" not in body:
        config.region = Definition(body["region"], node, "region")
