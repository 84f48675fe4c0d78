"""``GET /metrics``: the edge's metrics (edgeproxy/metrics.py) in Prometheus' text format,
behind the admin API's gate like every other route. With ``--workers N`` the parent asks
every worker and sums their samples (counters, histogram buckets, gauges), the hit ratio
computed again from the summed hits and misses: one scrape, the whole edge."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from edgeproxy.metrics import CONTENT_TYPE, exposition, hit_ratio
from edgeproxy.pipeline import Edge

EDGE = web.AppKey("metrics_edge", Edge)
WORKER_URLS = web.AppKey("metrics_workers", list[tuple[str, dict[str, str]]])


def add_metrics_route(app: web.Application, edge: Edge) -> None:
    """The route on one edge's admin API."""
    app[EDGE] = edge
    app.router.add_get("/metrics", metrics)


async def metrics(request: web.Request) -> web.Response:
    edge = request.app[EDGE]
    regional = edge.regional
    body = exposition(
        edge.metrics,
        lambda: edge.cache.stats,
        lambda: regional.stats.as_dict() if regional is not None else None,
    )
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_fanout_metrics_route(app: web.Application, urls: list[tuple[str, dict[str, str]]]) -> None:
    """The route on the parent's admin API: ``urls`` are the workers' admin URLs and the
    headers each wants (its token)."""
    app[WORKER_URLS] = urls
    app.router.add_get("/metrics", summed_metrics)


async def summed_metrics(request: web.Request) -> web.Response:
    workers = request.app[WORKER_URLS]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(url: str, headers: dict[str, str]) -> str:
            async with session.get(url + "/metrics", headers=headers) as resp:
                resp.raise_for_status()
                return await resp.text()

        texts = await asyncio.gather(*(one(url, headers) for url, headers in workers))
    return web.Response(body=summed_text(texts), headers={"Content-Type": CONTENT_TYPE})


def summed_text(texts: list[str]) -> bytes:
    """The workers' texts as one: each sample summed (``summed``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Summed(summed(texts)))
    return generate_latest(registry)


def summed(texts: list[str]) -> list[Metric]:
    """The families of every text, each sample summed over the texts (same name and labels)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            table = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                table[key] = table.get(key, 0.0) + sample.value
    if "edgeproxy_cache_hit_ratio" in values:
        hits = values["edgeproxy_cache_hits"].get(("edgeproxy_cache_hits_total", ()), 0.0)
        misses = values["edgeproxy_cache_misses"].get(("edgeproxy_cache_misses_total", ()), 0.0)
        values["edgeproxy_cache_hit_ratio"] = {
            ("edgeproxy_cache_hit_ratio", ()): hit_ratio(hits, misses)
        }
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    return list(families.values())


class _Summed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
