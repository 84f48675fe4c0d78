"""What every source format (``config/sources.py``) hands to the loader: a document in our
YAML's shape (Terraform's names), where each key came from, and what could not be resolved.

``where`` maps a key path (``distribution.ordered_cache_behavior[1]``) to its place in the
source (``main.tf:42`` or a JSON path), so a problem the models find names the source line.
``notes`` are values the files could not give ((place, message)): warnings when the rest is
enough to serve, listed with the problems when it is not. ``settled`` holds the key paths a
reader already reported a problem for: what the models then find below them is the same
problem, not listed again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproxy.config.tfschema import key_path


@dataclass(slots=True)
class SourceDocument:
    document: dict[str, Any]
    base_dir: Path
    kind: str = "yaml"
    where: dict[str, str] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    settled: set[str] = field(default_factory=set)

    def place(self, path: str) -> str | None:
        """The source place of ``path`` or of its nearest enclosing key that has one."""
        while path:
            if path in self.where:
                return self.where[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None

    def unsettled(self, problems: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """``problems`` without those at or below a key path already reported."""
        return [(path, message) for path, message in problems if not self._settled(path)]

    def _settled(self, path: str) -> bool:
        return any(
            path == done or path.startswith((f"{done}.", f"{done}[")) for done in self.settled
        )

    def located(self, problems: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """``problems`` with the source place in front of each key path that has one."""
        out = []
        for path, message in problems:
            place = self.place(path)
            out.append((f"{place}: {path}" if place else path, message))
        return out


def path_of(loc: Iterable[int | str]) -> str:
    return key_path(loc)


# Keys whose value the edge never acts on (certificates, WAF, logging, signing): when a
# source cannot resolve one, its expression is kept as the value instead of leaving the key out.
OPAQUE_KEYS = frozenset(
    {
        "acm_certificate_arn",
        "iam_certificate_id",
        "web_acl_id",
        "origin_access_control_id",
        "origin_access_identity",
        "realtime_log_config_arn",
        "field_level_encryption_id",
        "bucket",
        "comment",
    }
)

# Keys where providers write 0 for "not set" (CloudFront never takes 0 there).
_ZERO_UNSET = frozenset(
    {
        "http_port",
        "https_port",
        "origin_read_timeout",
        "origin_keepalive_timeout",
        "connection_attempts",
        "connection_timeout",
        "response_code",
        "response_completion_timeout",
        "access_control_max_age_sec",
    }
)


def without_placeholders(value: Any, key: str = "") -> Any:
    """``value`` with what providers write for unset values left out: ``""``, ``[]``,
    ``{}``, ``null``, and 0 where CloudFront never takes 0 (``_ZERO_UNSET``)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            cleaned = without_placeholders(v, str(k))
            if not _unset(cleaned, str(k)):
                out[k] = cleaned
        return out
    if isinstance(value, list):
        return [without_placeholders(item, key) for item in value]
    return value


def _unset(value: Any, key: str) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return True
    return key in _ZERO_UNSET and value == 0 and not isinstance(value, bool)
