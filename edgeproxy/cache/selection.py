"""Selections: which query parameters, headers or cookies a policy picks (reference 7.5-7.7).

A ``Selection`` is a mode (``none``, ``all``, ``whitelist``, ``allExcept``; Terraform's
words) and names, with lookups prepared at construction so the per-request work is a set
lookup. ``cache/key.py`` builds the key and the origin's share of a request from them.
Query parameter names are compared raw (not percent-decoded), case-sensitively.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edgeproxy.messages import Header
from edgeproxy.wildcards import Glob

NONE, ALL, WHITELIST, ALL_EXCEPT = "none", "all", "whitelist", "allExcept"
_MODES = frozenset({NONE, ALL, WHITELIST, ALL_EXCEPT})


@dataclass(frozen=True, slots=True)
class Selection:
    """Which names a policy selects: ``mode`` plus ``names``.

    ``fold_case`` for header names; ``wildcards`` for legacy cookie allow-lists, where
    ``*`` is any run of characters and ``?`` exactly one (reference 7.5).
    """

    mode: str = NONE
    names: tuple[str, ...] = ()
    fold_case: bool = False
    wildcards: bool = False
    _exact: frozenset[str] = field(init=False, repr=False, compare=False)
    _globs: tuple[Glob, ...] = field(init=False, repr=False, compare=False)
    empty: bool = field(init=False, repr=False, compare=False)  # selects nothing

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"unknown selection mode {self.mode!r}")
        names = tuple(n.lower() for n in self.names) if self.fold_case else self.names
        object.__setattr__(self, "names", names)
        globbed = [n for n in names if self.wildcards and ("*" in n or "?" in n)]
        object.__setattr__(self, "_exact", frozenset(names).difference(globbed))
        object.__setattr__(self, "_globs", tuple(Glob.of(g) for g in globbed))
        object.__setattr__(
            self, "empty", self.mode == NONE or (self.mode == WHITELIST and not names)
        )

    @property
    def exact_names(self) -> frozenset[str] | None:
        """The selected names when the selection is a plain allow-list, else None."""
        return self._exact if self.mode == WHITELIST and not self._globs else None

    def selects(self, name: str) -> bool:
        """Whether ``name`` is selected (lower-case it first when ``fold_case``)."""
        if self.mode == ALL or self.mode == NONE:
            return self.mode == ALL
        # Wildcards are matched linearly (a viewer picks the names), never as a regex.
        listed = name in self._exact or any(glob.matches(name) for glob in self._globs)
        return listed if self.mode == WHITELIST else not listed

    def union(self, other: Selection) -> Selection:
        """What either selects (cache policy ∪ origin request policy, reference 7.6)."""
        if self.mode == ALL or other.empty:
            return self
        if other.mode == ALL or self.empty:
            return other
        if self.mode == WHITELIST and other.mode == WHITELIST:
            return _with(self, WHITELIST, _merge(self.names, other.names))
        if self.mode == ALL_EXCEPT and other.mode == ALL_EXCEPT:
            return _with(self, ALL_EXCEPT, tuple(n for n in self.names if n in other.names))
        allow, deny = (self, other) if self.mode == WHITELIST else (other, self)
        return _with(self, ALL_EXCEPT, tuple(n for n in deny.names if n not in allow.names))


def _with(base: Selection, mode: str, names: tuple[str, ...]) -> Selection:
    return Selection(mode, names, base.fold_case, base.wildcards)


def _merge(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(n for n in second if n not in first)


def headers_selection(mode: str, names: Iterable[str] = ()) -> Selection:
    return Selection(mode, tuple(names), fold_case=True)


NO_SELECTION = Selection()
NO_HEADERS = headers_selection(NONE)


def select_query(selection: Selection, querystring: str) -> str:
    """The query string restricted to ``selection``: raw, in the viewer's order (7.5)."""
    if selection.mode == ALL or not querystring:
        return querystring
    if selection.empty:
        return ""
    kept = (p for p in querystring.split("&") if selection.selects(p.partition("=")[0]))
    return "&".join(kept)


def parse_cookies(headers: Iterable[Header]) -> list[tuple[str, str]]:
    """Well-formed ``name=value`` pairs of every Cookie header, in order."""
    pairs: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() != "cookie":
            continue
        for part in value.split(";"):
            cname, eq, cvalue = part.strip().partition("=")
            if eq and cname:
                pairs.append((cname, cvalue))
    return pairs


def cookie_pairs(selection: Selection, headers: Iterable[Header]) -> list[str]:
    """Selected cookies as ``name=value``, sorted by name (stable for repeated names)."""
    chosen = [(n, v) for n, v in parse_cookies(headers) if selection.selects(n)]
    chosen.sort(key=lambda pair: pair[0])
    return [f"{n}={v}" for n, v in chosen]
