"""What ``GET /metrics`` on the admin listener exposes, in Prometheus' text format.

Counted once per exchange, where it is recorded (``Edge._record`` → ``EdgeMetrics.record``),
from what the exchange carries: its X-Cache, behavior and status; each stage call's duration
(``Exchange.timings``); each origin attempt's latency and error (``Exchange.origin_attempts``);
the error class the viewer was answered with; which tier answered it (``Exchange.source``:
the PoP's cache, the regional tier, the origin...). The hot path adds to plain dicts and lists;
Prometheus' metric families are built only when someone scrapes. The cache's figures are read
from its own counters (``CacheStats``) at that moment, and so are the regional tier's
(``RegionalStats``, cache/regional.py, as a dict: this module imports no redis client).

A worker process counts its own exchanges; with ``--workers N`` the parent's ``/metrics``
sums every worker's (admin/metrics.py), so one scrape sees the whole edge."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from edgeproxy.cache.store import CacheStats
from edgeproxy.errors import HandlerError
from edgeproxy.exchange import Exchange

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; a function's default timeout is 5 s (viewer stages) or 30 s (origin stages).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_K = TypeVar("_K")

NO_BEHAVIOR = "-"  # refused before a behavior was selected (a bad request, an unknown Host)


class Histogram:
    """Counts per bucket (not cumulative) and their sum; made cumulative when scraped."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last: above every bucket (+Inf)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1  # le is inclusive
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class EdgeMetrics:
    """One edge's (one process's) counters since it started."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()  # x_cache, behavior, class
        self.stage_seconds: dict[str, Histogram] = {}
        self.function_seconds: dict[tuple[str, ...], Histogram] = {}  # function, stage
        self.handler_errors: Counter[str] = Counter()
        self.origin_seconds = Histogram()
        self.origin_errors: Counter[str] = Counter()
        self.tiers: Counter[str] = Counter()  # Exchange.source: cache, regional, origin...

    def record(self, ex: Exchange) -> None:
        route = ex.route
        behavior = route.behavior.path_pattern if route is not None else NO_BEHAVIOR
        result = ex.x_cache.removesuffix(" from cloudfront")
        self.requests[result, behavior, f"{ex.status // 100}xx"] += 1
        self.tiers[ex.source.value] += 1
        for stage, function, seconds in ex.timings:
            _histogram(self.stage_seconds, stage).observe(seconds)
            _histogram(self.function_seconds, (function, stage)).observe(seconds)
        for seconds, failure in ex.origin_attempts:
            self.origin_seconds.observe(seconds)
            if failure:
                self.origin_errors[failure] += 1
        if ex.error_type is not None and issubclass(ex.error_type, HandlerError):
            self.handler_errors[ex.error_type.__name__] += 1

    def families(
        self, cache: CacheStats, regional: Mapping[str, int | bool] | None = None
    ) -> Iterator[Metric]:
        """Every metric family, with the caches' figures as they are now (``regional``: the
        regional tier's counters, None without one)."""
        requests = CounterMetricFamily(
            "edgeproxy_requests",
            "Viewer requests answered, by X-Cache result, behavior path pattern and status class",
            labels=("x_cache", "behavior", "status_class"),
        )
        for labels, count in sorted(self.requests.items()):
            requests.add_metric(labels, count)
        yield requests
        yield _histograms(
            "edgeproxy_stage_duration_seconds",
            "Time in a stage: the event built, the function run, its result validated",
            ("stage",),
            {(stage,): h for stage, h in self.stage_seconds.items()},
        )
        yield _histograms(
            "edgeproxy_function_duration_seconds",
            "Time a function (Lambda@Edge handler or CloudFront Function) took, per stage",
            ("function", "stage"),
            self.function_seconds,
        )
        yield _counts(
            "edgeproxy_handler_errors",
            "Function failures the viewer was answered with, by kind (errors.py class)",
            "kind",
            self.handler_errors,
        )
        yield _histograms(
            "edgeproxy_origin_duration_seconds",
            "Origin latency: request sent to response head received (or failure), per attempt",
            (),
            {(): self.origin_seconds},
        )
        yield _counts(
            "edgeproxy_origin_errors",
            "Origin attempts that failed, by kind (errors.py class)",
            "kind",
            self.origin_errors,
        )
        yield _counts(
            "edgeproxy_answered_by",
            "Viewer requests by what answered them: cache (this PoP's), regional (the regional "
            "tier), origin, refreshed (a revalidated object), or a function or the edge itself",
            "source",
            self.tiers,
        )
        yield from cache_families(cache)
        if regional is not None:
            yield from regional_families(regional)


def cache_families(cache: CacheStats) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "edgeproxy_cache_objects",
        "Objects in the cache",
        value=cache.entries,
    )
    yield GaugeMetricFamily(
        "edgeproxy_cache_bytes", "Bytes the cache holds in memory", value=cache.bytes
    )
    yield GaugeMetricFamily(
        "edgeproxy_cache_disk_bytes", "Bytes the cache's disk tier holds", value=cache.disk_bytes
    )
    yield CounterMetricFamily(
        "edgeproxy_cache_evictions",
        "Objects dropped to stay within max_bytes",
        value=cache.evictions,
    )
    yield CounterMetricFamily(
        "edgeproxy_cache_hits", "Lookups that found a fresh object", value=cache.hits
    )
    yield CounterMetricFamily(
        "edgeproxy_cache_misses",
        "Lookups that found nothing or a stale object",
        value=cache.misses,
    )
    yield GaugeMetricFamily(
        "edgeproxy_cache_hit_ratio",
        "hits / (hits + misses) since start; 0 before any lookup",
        value=hit_ratio(cache.hits, cache.misses),
    )


# The regional tier's counters (cache/regional.py ``RegionalStats``): name → help.
REGIONAL_COUNTERS = {
    "hits": "Regional tier lookups that found a fresh object",
    "misses": "Regional tier lookups that found nothing (or Redis did not answer)",
    "stores": "Objects this PoP stored in the regional tier",
    "rejected": "Objects over regional_cache.max_object_bytes, kept in this PoP's cache only",
    "errors": "Redis calls that failed or timed out",
    "invalidations": "Objects removed from the regional tier by invalidations from this PoP",
}


def regional_families(regional: Mapping[str, int | bool]) -> Iterator[Metric]:
    for name, doc in REGIONAL_COUNTERS.items():
        yield CounterMetricFamily(
            f"edgeproxy_regional_{name}", doc, value=float(regional.get(name, 0))
        )
    yield GaugeMetricFamily(
        "edgeproxy_regional_available",
        "1 while Redis answers (summed over --workers: the workers that reach it)",
        value=float(bool(regional.get("available"))),
    )


def hit_ratio(hits: float, misses: float) -> float:
    return hits / (hits + misses) if hits + misses else 0.0


def exposition(
    metrics: EdgeMetrics,
    cache: Callable[[], CacheStats],
    regional: Callable[[], Mapping[str, int | bool] | None] = lambda: None,
) -> bytes:
    """The text a scrape gets."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(lambda: metrics.families(cache(), regional())))
    return generate_latest(registry)


class _Scrape(Collector):
    def __init__(self, families: Callable[[], Iterator[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return self._families()


def _histogram(table: dict[_K, Histogram], key: _K) -> Histogram:
    found = table.get(key)
    if found is None:
        found = table[key] = Histogram()
    return found


def _histograms(
    name: str, doc: str, labels: tuple[str, ...], table: Mapping[tuple[str, ...], Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for values, histogram in sorted(table.items()):
        family.add_metric(list(values), histogram.buckets(), histogram.total)
    return family


def _counts(name: str, doc: str, label: str, table: Counter[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=(label,))
    for value, count in sorted(table.items()):
        family.add_metric((value,), count)
    return family
