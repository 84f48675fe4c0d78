"""Which cache behavior serves a path: CloudFront's path patterns (reference 7.1).

* ``*`` matches any run of characters, ``/`` included (``images/*.jpg`` matches
  ``/images/a/b.jpg``); ``?`` matches exactly one character; everything else is literal.
* Matching is case-sensitive and covers the whole path; the query string is not part of it.
* A leading ``/`` is optional on both sides: ``images/*`` and ``/images/*`` are the same.
* Ordered behaviors are tried in order and the first match wins, even if a later pattern is
  more specific; the default behavior (``*``) is last and matches everything.
* The path is the viewer's: a viewer-request handler that rewrites the URI does not change
  the behavior (callers pass the original path).
"""

from __future__ import annotations

import re

from edgeproxy.config import CacheBehavior, Distribution

# What each wildcard becomes in a regular expression; every other character is escaped.
_WILDCARDS = {"*": ".*", "?": "."}

# Paths remembered per selector; enough for a site's hot set, bounded so that a scan of
# random URLs cannot grow memory without limit.
DEFAULT_MEMO_SIZE = 4096


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A regex whose ``fullmatch`` says whether a path matches ``pattern``."""
    body = pattern.removeprefix("/")
    regex = "".join(_WILDCARDS.get(char) or re.escape(char) for char in body)
    # DOTALL: '*' must also cross characters a regex '.' skips (a percent-decoded newline).
    return re.compile(f"/?{regex}", re.DOTALL)


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` matches the CloudFront path ``pattern`` (one-off use; not cached)."""
    return compile_pattern(pattern).fullmatch(path) is not None


class BehaviorSelector:
    """Picks the behavior for a path; built once per distribution, patterns precompiled."""

    def __init__(self, distribution: Distribution, *, memo_size: int = DEFAULT_MEMO_SIZE) -> None:
        ordered = distribution.ordered_cache_behavior
        self._patterns = tuple(compile_pattern(b.path_pattern) for b in ordered)
        self._ordered = ordered
        self._default = (len(ordered), distribution.default_cache_behavior)
        self._memo: dict[str, tuple[int, CacheBehavior]] = {}
        self._memo_size = memo_size

    def select(self, path: str) -> tuple[int, CacheBehavior]:
        """``(index, behavior)``: ordered behaviors are 0..n-1, the default behavior is n."""
        found = self._memo.get(path)
        if found is None:
            found = self._search(path)
            if len(self._memo) < self._memo_size:
                self._memo[path] = found
        return found

    def _search(self, path: str) -> tuple[int, CacheBehavior]:
        for index, pattern in enumerate(self._patterns):
            if pattern.fullmatch(path):
                return index, self._ordered[index]
        return self._default
