"""``GET /metrics`` on the admin listener: after a known sequence of requests (misses, hits,
a handler error, an origin error) each counter says what happened."""

from __future__ import annotations

from typing import Any

from conftest import RecordingOrigin, StartEdge, distribution, handler
from fault_origin import refused_port
from prometheus_client.parser import text_string_to_metric_families

from edgeproxy.admin.metrics import summed_text


def document(origin: RecordingOrigin) -> dict[str, Any]:
    """``*`` plain; ``/fail/*`` a viewer-request handler that raises; ``/dead/*`` an
    origin that refuses connections (one attempt)."""
    doc = distribution(origin.port)
    dist = doc["distribution"]
    base = dict(dist["default_cache_behavior"])
    dead = {**dist["origin"][0], "origin_id": "dead", "connection_attempts": 1}
    dead["custom_origin_config"] = {
        **dead["custom_origin_config"],
        "http_port": refused_port(),
    }
    dist["origin"].append(dead)
    raises = {"event_type": "viewer-request", "handler": handler("flow_fail.py:raises")}
    dist["ordered_cache_behavior"] = [
        {**base, "path_pattern": "/fail/*", "lambda_function_association": [raises]},
        {**base, "path_pattern": "/dead/*", "target_origin_id": "dead"},
    ]
    return doc


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str):
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(viewer: Any) -> str:
    response = await viewer.client.get(f"{viewer.running.admin_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text: str = response.text
    return text


async def test_metrics_count_a_known_sequence(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(document(origin))
    for path in ("/a", "/a", "/a", "/b", "/fail/x", "/dead/y"):
        await viewer.get(path)
    found = samples(await scrape(viewer))

    requests = "edgeproxy_requests_total"
    assert value(found, requests, x_cache="Miss", behavior="*", status_class="2xx") == 2
    assert value(found, requests, x_cache="Hit", behavior="*", status_class="2xx") == 2
    assert (
        value(
            found,
            requests,
            x_cache="LambdaExecutionError",
            behavior="/fail/*",
            status_class="5xx",
        )
        == 1
    )
    assert value(found, requests, x_cache="Error", behavior="/dead/*", status_class="5xx") == 1
    assert value(found, "edgeproxy_handler_errors_total", kind="HandlerExecutionError") == 1
    assert value(found, "edgeproxy_origin_errors_total", kind="OriginConnectError") == 1
    # Three attempts reached an origin: /a and /b answered, /dead refused.
    assert value(found, "edgeproxy_origin_duration_seconds_count") == 3
    assert value(found, "edgeproxy_origin_duration_seconds_bucket", le="+Inf") == 3
    assert value(found, "edgeproxy_stage_duration_seconds_count", stage="viewer-request") == 1
    function = "us-east-1.flow_fail"  # context.function_name
    count = "edgeproxy_function_duration_seconds_count"
    assert value(found, count, function=function, stage="viewer-request") == 1, found.keys()
    assert value(found, "edgeproxy_cache_objects") == 2
    assert value(found, "edgeproxy_cache_bytes") > 0
    assert value(found, "edgeproxy_cache_evictions_total") == 0
    # Lookups: /a miss, hit, hit; /b miss; /dead miss (the /fail request never looked).
    assert value(found, "edgeproxy_cache_hits_total") == 2
    assert value(found, "edgeproxy_cache_misses_total") == 3
    assert value(found, "edgeproxy_cache_hit_ratio") == 2 / 5


async def test_metrics_of_workers_are_summed(origin: RecordingOrigin, start_edge: StartEdge):
    # Two edges stand for two workers: the parent's sum, the ratio computed from the sums.
    first, second = await start_edge(document(origin)), await start_edge(document(origin))
    for path in ("/a", "/a", "/a"):
        await first.get(path)
    await second.get("/b")
    found = samples(summed_text([await scrape(first), await scrape(second)]).decode())
    requests = "edgeproxy_requests_total"
    assert value(found, requests, x_cache="Miss", behavior="*", status_class="2xx") == 2
    assert value(found, requests, x_cache="Hit", behavior="*", status_class="2xx") == 2
    assert value(found, "edgeproxy_cache_objects") == 2
    assert value(found, "edgeproxy_cache_hit_ratio") == 2 / 4
    assert value(found, "edgeproxy_origin_duration_seconds_count") == 2
