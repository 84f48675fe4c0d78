"""The samples a run collects and their medians: ``Results`` maps (metric, contender) to the
values of every repeat. Pure data, shared by the scenarios (which add) and the report (which
reads)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

ORIGIN = "origin"  # the pseudo-contender "fetch from the origin directly"
EDGE = "edgeproxy"  # the edge as the other contenders run: 1 process, no access log
DEFAULT_CONFIG = "edgeproxy-log"  # the edge started as a user starts it: the access log on


def workers_key(workers: int) -> str:
    """The scale-out variant's name: ``edgeproxy-w2`` for 2 workers."""
    return f"{EDGE}-w{workers}"


# Where a function runs, as bench/config/bench.yaml wires /noop-<name>/* and /sec-<name>/*:
# name → how the table names it. "python" is Lambda's form in the default isolation.
ISOLATIONS = {
    "inline": "inline, Python module spec",
    "thread": "thread, Python module spec",
    "process": "process, Python module spec",
    "python": "Python runtime process, Lambda's form: the default",
    "node": "Node.js runtime process",
    "cloudfront": "CloudFront Function, cloudfront-js-2.0",
}
DEFAULT_ISOLATION = "python"


@dataclass
class Results:
    samples: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    notes: list[str] = field(default_factory=list)  # anomalies seen during the run
    # (load case, server) → markdown: py-spy's view of that path, for the missed targets
    profiles: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, metric: str, contender: str, value: float) -> None:
        self.samples[(metric, contender)].append(value)

    def median(self, metric: str, contender: str) -> float | None:
        values = self.samples.get((metric, contender))
        return statistics.median(values) if values else None

    def values(self, metric: str, contender: str) -> list[float]:
        return list(self.samples.get((metric, contender), []))

    def as_json(self) -> dict[str, dict[str, list[float]]]:
        out: dict[str, dict[str, list[float]]] = {}
        for (metric, contender), values in sorted(self.samples.items()):
            out.setdefault(metric, {})[contender] = values
        return out
