"""Terraform expressions, evaluated as far as the files allow.

python-hcl2 hands each attribute over as text: ``"\\"web-${var.env}\\""`` for a quoted
template, ``"${aws_s3_bucket.site.bucket}"`` for a bare expression. ``evaluate`` parses that
text (literals, templates, references, indexing, calls of the functions in ``FUNCTIONS``,
lists, objects, arithmetic, comparisons and conditionals) and asks a ``Scope`` for the
names. What the files cannot say (a remote data source, an attribute AWS computes) is an
``Unresolved`` naming the reference, so the caller can report it with the key it fed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class Unresolved(Exception):
    """The value depends on something the files do not say (``reason`` names it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Namespace(Protocol):
    """A name that is not a plain value: ``var``, ``aws_lambda_function.edge``, …"""

    def attr(self, name: str) -> Any: ...


class Scope(Protocol):
    def root(self, name: str) -> Any: ...

    def here(self) -> Path: ...


# --- tokens --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<str>")
  | (?P<name>[A-Za-z_][\w-]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||=>|\.\.\.|[-+*/%<>!?:.,()\[\]{}=])
    )""",
    re.VERBOSE,
)


@dataclass(slots=True)
class _Cursor:
    text: str
    pos: int = 0

    def peek(self) -> str:
        match = _TOKEN.match(self.text, self.pos)
        if not match or match.end() == match.start():
            return ""
        return match.group(match.lastgroup or "op")

    def take(self) -> tuple[str, str]:
        match = _TOKEN.match(self.text, self.pos)
        if not match or not match.lastgroup:
            raise SyntaxError(f"cannot read {self.text[self.pos : self.pos + 20]!r}")
        self.pos = match.end()
        return match.lastgroup, match.group(match.lastgroup)

    def expect(self, op: str) -> None:
        kind, value = self.take()
        if value != op:
            raise SyntaxError(f"expected {op!r}, found {value!r}")

    def at_end(self) -> bool:
        return not self.text[self.pos :].strip()


def evaluate(text: Any, scope: Scope) -> Any:
    """The value of an attribute as python-hcl2 gives it (nested lists and dicts too)."""
    if isinstance(text, list):
        return [evaluate(item, scope) for item in text]
    if isinstance(text, dict):
        return {
            _key(k, scope): evaluate(v, scope) for k, v in text.items() if not k.startswith("__")
        }
    if not isinstance(text, str):
        return text
    if text.startswith("${") and text.endswith("}") and _closes_at_end(text, 1):
        return expression(text[2:-1], scope)
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        cursor = _Cursor(text, 1)
        value = _template(cursor, scope)
        return value
    return expression(text, scope)


def _key(key: str, scope: Scope) -> str:
    """An object key: a bare name is the name itself, a quoted one a template."""
    if key.startswith('"') or key.startswith("${"):
        return str(evaluate(key, scope))
    return key


def _closes_at_end(text: str, open_at: int) -> bool:
    """Whether the brace opened at ``open_at`` closes at the text's end (``${a}-${b}`` no)."""
    depth, quoted = 0, False
    for i in range(open_at, len(text)):
        ch = text[i]
        if ch == '"' and text[i - 1] != "\\":
            quoted = not quoted
        elif not quoted and ch == "{":
            depth += 1
        elif not quoted and ch == "}":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False


def expression(text: str, scope: Scope) -> Any:
    cursor = _Cursor(text)
    try:
        value = _Parser(cursor, scope).expr()
    except SyntaxError as exc:
        raise Unresolved(f"expression not understood ({exc}): {text}") from None
    if not cursor.at_end():
        raise Unresolved(f"expression not understood: {text}")
    return value


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _template(cursor: _Cursor, scope: Scope) -> Any:
    """A quoted string after its opening quote, up to and past the closing one; a string
    that is one interpolation keeps its value's type (``"${var.port}"`` stays a number)."""
    parts: list[Any] = []
    text = cursor.text
    buf = ""
    while cursor.pos < len(text):
        ch = text[cursor.pos]
        if ch == '"':
            cursor.pos += 1
            if buf:
                parts.append(buf)
            if len(parts) == 1 and not isinstance(parts[0], str):
                return parts[0]
            # "${aws_lambda_function.f.arn}:${aws_lambda_function.f.version}" stands for
            # the function: a computed reference inside a template is the template's value.
            refs = [p for p in parts if hasattr(p, "block")]
            if refs:
                return refs[0]
            return "".join(_text(p) for p in parts)
        if ch == "\\" and cursor.pos + 1 < len(text):
            buf += _ESCAPES.get(text[cursor.pos + 1], text[cursor.pos + 1])
            cursor.pos += 2
        elif text.startswith("${", cursor.pos):
            if buf:
                parts.append(buf)
                buf = ""
            cursor.pos += 2
            parts.append(_Parser(cursor, scope).expr())
            cursor.expect("}")
        else:
            buf += ch
            cursor.pos += 1
    raise SyntaxError("unterminated string")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    raise Unresolved(f"cannot put {type(value).__name__} into a string")


_BINARY: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("==", "!="),
    ("<", ">", "<=", ">="),
    ("+", "-"),
    ("*", "/", "%"),
)


def _apply(op: str, left: Any, right: Any) -> Any:
    if op in ("==", "!="):
        return (left == right) == (op == "==")
    table: Mapping[str, Callable[[Any, Any], Any]] = {
        "||": lambda a, b: a or b,
        "&&": lambda a, b: a and b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
        "%": lambda a, b: a % b,
    }
    try:
        return table[op](left, right)
    except TypeError:
        raise Unresolved(f"{op} cannot combine {left!r} and {right!r}") from None


class _Parser:
    def __init__(self, cursor: _Cursor, scope: Scope) -> None:
        self.c = cursor
        self.scope = scope

    def expr(self) -> Any:
        value = self.binary(0)
        if self.c.peek() == "?":
            self.c.take()
            yes = self.lazy()
            self.c.expect(":")
            no = self.lazy()
            return (yes if value else no)()
        return value

    def lazy(self) -> Callable[[], Any]:
        """A branch parsed now, its error (if any) raised only when it is chosen."""
        try:
            value = self.binary(0)
        except Unresolved as exc:
            error = exc

            def fail() -> Any:
                raise error

            return fail
        return lambda: value

    def binary(self, level: int) -> Any:
        if level == len(_BINARY):
            return self.unary()
        value = self.binary(level + 1)
        while self.c.peek() in _BINARY[level]:
            _, op = self.c.take()
            value = _apply(op, value, self.binary(level + 1))
        return value

    def unary(self) -> Any:
        if self.c.peek() == "!":
            self.c.take()
            return not self.unary()
        if self.c.peek() == "-":
            self.c.take()
            return -self.unary()
        return self.postfix(self.primary())

    def postfix(self, value: Any) -> Any:
        while self.c.peek() in (".", "["):
            _, op = self.c.take()
            if op == ".":
                kind, name = self.c.take()
                value = _index(value, int(name) if kind == "num" else name)
            else:
                key = self.expr()
                self.c.expect("]")
                value = _index(value, key)
        return value

    def primary(self) -> Any:
        kind, token = self.c.take()
        if kind == "num":
            return float(token) if "." in token or "e" in token.lower() else int(token)
        if kind == "str":
            return _template(self.c, self.scope)
        if kind == "name":
            return self.name(token)
        if token == "(":
            value = self.expr()
            self.c.expect(")")
            return value
        if token == "[":
            return self.sequence("]")
        if token == "{":
            return self.mapping()
        raise SyntaxError(f"unexpected {token!r}")

    def name(self, token: str) -> Any:
        literals: dict[str, Any] = {"true": True, "false": False, "null": None}
        if token in literals:
            return literals[token]
        if self.c.peek() == "(":
            self.c.take()
            return call(token, self.sequence(")"), self.scope)
        return self.scope.root(token)

    def sequence(self, close: str) -> list[Any]:
        if self.c.peek() == "for":
            raise Unresolved("for expressions are not evaluated")
        items: list[Any] = []
        while self.c.peek() != close:
            items.append(self.expr())
            if self.c.peek() == ",":
                self.c.take()
        self.c.take()
        return items

    def mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while self.c.peek() != "}":
            key = self.expr()
            if self.c.peek() not in ("=", ":"):
                raise SyntaxError("expected = in an object")
            self.c.take()
            out[str(key)] = self.expr()
            if self.c.peek() == ",":
                self.c.take()
        self.c.take()
        return out


def _index(value: Any, key: Any) -> Any:
    attr = getattr(value, "attr", None)
    if callable(attr):
        return attr(str(key))
    try:
        return value[key]
    except (KeyError, IndexError, TypeError):
        raise Unresolved(f"no {key!r} in {_describe(value)}") from None


def _describe(value: Any) -> str:
    return json.dumps(value)[:60] if isinstance(value, (dict, list)) else repr(value)


# --- functions -----------------------------------------------------------------------------


def _file(scope: Scope, path: str) -> str:
    full = scope.here() / path
    try:
        return full.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unresolved(f"file({path!r}): {exc}") from None


def _format(spec: str, *args: Any) -> str:
    values = iter(args)
    return re.sub(r"%[sdv]", lambda _m: _text(next(values)), spec).replace("%%", "%")


PURE: Mapping[str, Callable[..., Any]] = {
    "lower": str.lower,
    "upper": str.upper,
    "trimspace": str.strip,
    "trimprefix": str.removeprefix,
    "trimsuffix": str.removesuffix,
    "replace": lambda s, a, b: s.replace(a, b),
    "join": lambda sep, items: sep.join(_text(i) for i in items),
    "split": lambda sep, s: s.split(sep),
    "concat": lambda *lists: [i for sub in lists for i in sub],
    "merge": lambda *maps: {k: v for m in maps for k, v in m.items()},
    "lookup": lambda m, k, *default: m[k] if k in m or not default else default[0],
    "length": len,
    "tostring": _text,
    "tonumber": lambda v: float(v) if "." in str(v) else int(v),
    "tolist": list,
    "toset": list,
    "coalesce": lambda *v: next(x for x in v if x not in (None, "")),
    "format": _format,
    "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
    "basename": os.path.basename,
    "dirname": os.path.dirname,
    "element": lambda items, i: items[i % len(items)],
    "contains": lambda items, v: v in items,
}


def call(name: str, args: list[Any], scope: Scope) -> Any:
    if name == "file":
        return _file(scope, *args)
    if name == "abspath":
        return str((scope.here() / args[0]).resolve())
    if name == "try":
        raise Unresolved("try(...) is not evaluated")
    function = PURE.get(name)
    if function is None:
        raise Unresolved(f"function {name}() is not evaluated locally")
    try:
        return function(*args)
    except (TypeError, ValueError, KeyError, IndexError, StopIteration, AttributeError) as exc:
        raise Unresolved(f"{name}(...) failed: {exc}") from None
