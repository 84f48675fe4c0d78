"""Which cache behavior serves a path: CloudFront's path patterns (reference 7.1).

* ``*`` matches any run of characters, ``/`` included (``images/*.jpg`` matches
  ``/images/a/b.jpg``); ``?`` matches exactly one character; everything else is literal.
* Matching is case-sensitive and covers the whole path; the query string is not part of it.
* A leading ``/`` is optional on both sides: ``images/*`` and ``/images/*`` are the same.
* Ordered behaviors are tried in order and the first match wins, even if a later pattern is
  more specific; the default behavior (``*``) is last and matches everything.
* The path matched is the viewer's, normalised per RFC 3986 first (``pathnorm``): a
  viewer-request handler that rewrites the URI does not change the behavior, and the
  normalised path is for matching only (callers pass the raw path, which is what the
  handlers and the origin get).

The matching itself (``wildcards.Glob``) is linear in the path; no pattern becomes a regex.
"""

from __future__ import annotations

from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.config.distribution import Distribution
from edgeproxy.paths import normalise_path
from edgeproxy.wildcards import Glob

# Paths remembered per selector; enough for a site's hot set, bounded so that a scan of
# random URLs cannot grow memory without limit.
DEFAULT_MEMO_SIZE = 4096


def _rooted(path: str) -> str:
    """Paths always start with '/', so a pattern without one gets it: the same meaning."""
    return path if path.startswith("/") else "/" + path


def compile_pattern(pattern: str) -> Glob:
    """The matcher for ``pattern``; ``.matches(path)`` for a path starting with ``/``."""
    return Glob.of(_rooted(pattern))


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` (as given, not normalised) matches the CloudFront path ``pattern``
    (one-off use; not cached)."""
    return compile_pattern(pattern).matches(_rooted(path))


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
        """``(index, behavior)`` for the viewer's raw ``path``: ordered behaviors are
        0..n-1, the default behavior is n. The memo is keyed by the raw path."""
        found = self._memo.get(path)
        if found is None:
            found = self._search(normalise_path(path))
            if len(self._memo) < self._memo_size:
                self._memo[path] = found
        return found

    def _search(self, path: str) -> tuple[int, CacheBehavior]:
        for index, pattern in enumerate(self._patterns):
            if pattern.matches(path):
                return index, self._ordered[index]
        return self._default
