"""The samples a run collects and their medians: ``Results`` maps (metric, contender) to the
values of every repeat. Pure data, shared by the scenarios (which add) and the report (which
reads)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

ORIGIN = "origin"  # the pseudo-contender "fetch from the origin directly"


@dataclass
class Results:
    samples: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    notes: list[str] = field(default_factory=list)  # anomalies seen during the run
    profiles: dict[str, list[str]] = field(default_factory=dict)  # contender → markdown

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
