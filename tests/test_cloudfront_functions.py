"""CloudFront Functions through a real edge: each stage, both runtimes, KeyValueStores,
generated responses, errors and limits, beside Lambda@Edge on one behavior.

Sources (CloudFront Developer Guide):
- event: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/functions-event-structure.html
- runtimes: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/functions-javascript-runtime-features.html
- restrictions: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cloudfront-function-restrictions.html
- limits: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cloudfront-limits.html
- KeyValueStore: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/kvs-with-functions-custom-methods.html
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from edgeproxy.config.loading import load_config
from edgeproxy.errors import ConfigError
from tests.conftest import OriginResponse, RecordingOrigin, StartEdge, distribution, handler

FUNCTIONS = Path(__file__).parent / "data" / "functions"
KVS = "arn:aws:cloudfront::123456789012:key-value-store/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
RUNTIMES = ["cloudfront-js-1.0", "cloudfront-js-2.0"]


def arn(name: str) -> str:
    return f"arn:aws:cloudfront::123456789012:function/{name}"


def with_functions(
    port: int,
    stages: dict[str, str],
    runtime: str = "cloudfront-js-2.0",
    stores: dict[str, str] | None = None,
    **behavior: Any,
) -> dict[str, Any]:
    """The test distribution with CloudFront Functions (stage → file under data/functions)."""
    document = distribution(
        port,
        function_association=[
            {"event_type": stage, "function_arn": arn(Path(file).stem)}
            for stage, file in stages.items()
        ],
        **behavior,
    )
    document["edge"]["functions"] = {
        arn(Path(file).stem): {"file": str(FUNCTIONS / file), "runtime": runtime}
        for file in stages.values()
    }
    if stores:
        document["edge"]["key_value_stores"] = stores
    return document


def store_file(path: Path, pairs: dict[str, str]) -> str:
    path.write_text(json.dumps({"data": [{"key": k, "value": v} for k, v in pairs.items()]}))
    return str(path)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_viewer_request_rewrites_the_uri_on_misses_and_hits(
    origin: RecordingOrigin, start_edge: StartEdge, runtime: str
):
    viewer = await start_edge(
        with_functions(origin.port, {"viewer-request": "append_index.js"}, runtime)
    )
    miss = await viewer.get("/docs/")
    assert miss.status_code == 200
    assert miss.text == "origin body for /docs/index.html"
    assert miss.headers["x-cache"] == "Miss from cloudfront"
    hit = await viewer.get("/docs/")
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert await viewer.last_stages() == ["viewer-request"]  # it ran on the hit too
    await viewer.get("/about")
    assert [r.path for r in origin.seen] == ["/docs/index.html", "/about/index.html"]


async def test_the_event_has_cloudfront_functions_shape(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(with_functions(origin.port, {"viewer-request": "echo_event.js"}))
    response = await viewer.get(
        "/page?q=1",
        headers=[("Accept", "text/html"), ("Accept", "text/plain"), ("Cookie", "a=x; b=y")],
    )
    assert response.status_code == 200
    seen = origin.seen[-1]
    assert seen.headers["X-Event-Type"] == "viewer-request"
    assert seen.headers["X-Viewer-Ip"] == "127.0.0.1"
    assert seen.headers["X-Cookie-A"] == "x"
    assert seen.headers["X-Query-Q"] == "1"
    assert seen.headers["X-Accept-Count"] == "2"
    assert seen.query_string == ""  # cookies and query not forwarded by this behavior
    assert seen.path == "/page"


async def test_a_changed_query_string_goes_to_the_origin(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = with_functions(
        origin.port,
        {"viewer-request": "echo_event.js"},
        forwarded_values={"query_string": True, "cookies": {"forward": "all"}},
    )
    viewer = await start_edge(document)
    await viewer.get("/page?q=1", headers={"Cookie": "a=x"})
    seen = origin.seen[-1]
    assert seen.query_string == "q=1&added=1"
    assert seen.headers["Cookie"] == "a=x"


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_viewer_response_runs_on_misses_and_hits_not_on_errors(
    origin: RecordingOrigin, start_edge: StartEdge, runtime: str
):
    # DG functions-event-structure: viewer-response functions do not run when the origin
    # answers 400 or more.
    origin.responses["/missing"] = OriginResponse(status=404)
    viewer = await start_edge(
        with_functions(origin.port, {"viewer-response": "add_header_response.js"}, runtime)
    )
    for expected in ("Miss from cloudfront", "Hit from cloudfront"):
        response = await viewer.get("/page")
        assert response.headers["x-cache"] == expected
        assert response.headers["x-function"] == "viewer-response"
        assert response.headers["x-seen-status"] == "200"
        assert response.headers["set-cookie"] == "seen=yes; Path=/"
    missing = await viewer.get("/missing")
    assert missing.status_code == 404
    assert "x-function" not in missing.headers


async def test_generated_response_skips_cache_and_origin(
    origin: RecordingOrigin, start_edge: StartEdge
):
    # DG functions-tutorial: a function's own answer reads FunctionGeneratedResponse.
    viewer = await start_edge(
        with_functions(
            origin.port,
            {"viewer-request": "generate.js", "viewer-response": "add_header_response.js"},
        )
    )
    for _ in range(2):
        response = await viewer.get("/x")
        assert response.status_code == 200
        assert response.text == "generated at /x"
        assert response.headers["x-cache"] == "FunctionGeneratedResponse from cloudfront"
        assert "x-function" not in response.headers  # no viewer-response after it
    assert origin.seen == []


async def test_key_value_store_hit_miss_and_reload_on_save(
    origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path
):
    path = tmp_path / "redirects.json"
    stores = {KVS: store_file(path, {"/old": "https://example.com/new"})}
    viewer = await start_edge(
        with_functions(origin.port, {"viewer-request": "kvs_redirect.js"}, stores=stores)
    )
    hit = await viewer.get("/old")
    assert hit.status_code == 301
    assert hit.headers["location"] == "https://example.com/new"
    assert hit.headers["x-cache"] == "FunctionGeneratedResponse from cloudfront"
    miss = await viewer.get("/other")
    assert miss.status_code == 200
    assert [r.path for r in origin.seen] == ["/other"]
    store_file(path, {"/other": "https://example.com/moved"})
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    moved = await viewer.get("/other")
    assert moved.status_code == 301
    assert moved.headers["location"] == "https://example.com/moved"
    assert (await viewer.get("/old")).status_code == 200  # gone from the store


async def test_key_value_store_exists_and_meta(
    origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path
):
    stores = {KVS: store_file(tmp_path / "s.json", {"/old": "a", "/b": "b"})}
    viewer = await start_edge(
        with_functions(origin.port, {"viewer-request": "kvs_meta.js"}, stores=stores)
    )
    await viewer.get("/page")
    assert origin.seen[-1].headers["X-Exists"] == "true"
    assert origin.seen[-1].headers["X-Count"] == "2"


@pytest.mark.parametrize(
    ("file", "runtime", "x_cache"),
    [
        ("throws.js", "cloudfront-js-2.0", "FunctionExecutionError from cloudfront"),
        ("invalid_result.js", "cloudfront-js-2.0", "FunctionExecutionError from cloudfront"),
        ("big_memory.js", "cloudfront-js-2.0", "FunctionExecutionError from cloudfront"),
        ("async_v1.js", "cloudfront-js-1.0", "FunctionExecutionError from cloudfront"),
        ("kvs_redirect.js", "cloudfront-js-1.0", "FunctionExecutionError from cloudfront"),
        ("spins.js", "cloudfront-js-2.0", "FunctionThrottledError from cloudfront"),
    ],
)
async def test_failures_answer_503_with_cloudfronts_x_cache(
    origin: RecordingOrigin, start_edge: StartEdge, file: str, runtime: str, x_cache: str
):
    viewer = await start_edge(with_functions(origin.port, {"viewer-request": file}, runtime))
    response = await viewer.get("/page")
    assert response.status_code == 503
    assert response.headers["x-cache"] == x_cache
    assert origin.seen == []


async def test_the_runtime_lacks_timers_process_fs_and_eval(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(with_functions(origin.port, {"viewer-request": "forbidden.js"}))
    await viewer.get("/page")
    # HMAC-SHA256("k", "v") starts 1ea0f6b7...; computed by the runtime's crypto module
    import hashlib
    import hmac

    mac = hmac.new(b"k", b"v", hashlib.sha256).hexdigest()[:8]
    assert origin.seen[-1].headers["X-Found"] == (
        f"undefined,undefined,undefined,no-fs,no-eval,{mac}"
    )


async def test_function_at_viewer_request_with_lambda_at_origin_request(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = with_functions(
        origin.port,
        {"viewer-request": "append_index.js"},
        lambda_function_association=[
            {"event_type": "origin-request", "handler": handler("origin_request_mark.py")}
        ],
    )
    viewer = await start_edge(document)
    response = await viewer.get("/docs/")
    assert response.status_code == 200
    assert await viewer.last_stages() == ["viewer-request", "origin-request"]
    assert origin.seen[-1].headers["X-Origin-Request-Saw"] == "/docs/index.html"


def test_both_kinds_on_one_stage_are_refused(write_config: Any):
    document = with_functions(
        8080,
        {"viewer-request": "append_index.js"},
        lambda_function_association=[
            {"event_type": "viewer-request", "handler": handler("flow_passthrough.py")}
        ],
    )
    with pytest.raises(ConfigError) as refused:
        load_config(write_config(document))
    paths = [path for path, _ in refused.value.problems]
    assert "distribution.default_cache_behavior.function_association[0].event_type" in paths


def test_function_over_10_kb_is_refused(write_config: Any, tmp_path: Path):
    big = tmp_path / "big.js"
    big.write_text("function handler(e) { return e.request; }\n" + "//" + "x" * 10_300)
    document = with_functions(8080, {"viewer-request": "append_index.js"})
    document["edge"]["functions"][arn("append_index")]["file"] = str(big)
    with pytest.raises(ConfigError) as refused:
        load_config(write_config(document))
    problems = dict(refused.value.problems)
    assert "10 KB" in problems[f'edge.functions["{arn("append_index")}"].file']


def test_function_association_is_no_longer_ignored(write_config: Any):
    loaded = load_config(write_config(with_functions(8080, {"viewer-request": "append_index.js"})))
    assert not any("function_association" in w for w in loaded.warnings)
    behavior = loaded.config.distribution.default_cache_behavior
    assert behavior.function_association[0].function_arn == arn("append_index")


def test_unknown_function_and_store_are_refused(write_config: Any, tmp_path: Path):
    document = with_functions(8080, {"viewer-request": "append_index.js"})
    document["edge"]["functions"][arn("append_index")]["key_value_store"] = KVS
    document["distribution"]["default_cache_behavior"]["function_association"].append(
        {"event_type": "viewer-response", "function_arn": arn("nowhere")}
    )
    with pytest.raises(ConfigError) as refused:
        load_config(write_config(document))
    paths = [path for path, _ in refused.value.problems]
    assert f'edge.functions["{arn("append_index")}"].key_value_store' in paths
    assert "distribution.default_cache_behavior.function_association[1].function_arn" in paths


def _established_to(port: int) -> int:
    """TCP connections in this process's network namespace that are ESTABLISHED toward
    ``port`` (the edge's side of its origin connections), from /proc/net/tcp."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
            count += 1
    return count


async def test_a_replaced_streamed_body_releases_the_origin_connection(
    origin: RecordingOrigin, start_edge: StartEdge
):
    # DG functions-event-structure: a viewer-response function may replace the body. An
    # origin answer over edge.cache.max_object_bytes is streamed; replaced, it must be closed
    # so the edge's origin connection does not stay open mid-body.
    import gc

    big = "x" * (3 * 1024 * 1024)
    origin.responses["/big"] = OriginResponse(headers={"Cache-Control": "no-store"}, body=big)
    document = with_functions(origin.port, {"viewer-response": "replace_body_response.js"})
    document["edge"]["cache"] = {"max_bytes": 1024 * 1024, "max_object_bytes": 64 * 1024}
    viewer = await start_edge(document)
    gc.disable()  # the edge closes what it drops; it does not wait for the collector
    try:
        for _ in range(3):
            response = await viewer.get("/big")
            assert response.status_code == 200
            assert response.text == "replaced by the function"
        assert _established_to(origin.port) == 0
    finally:
        gc.enable()


async def test_a_saved_function_file_runs_on_the_next_request(
    origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path
):
    # CloudFront publishes a function's new code at once (DG functions-tutorial, "publish");
    # locally a save is that publish: the next request runs it, as Lambda@Edge folders do.
    code = tmp_path / "edited.js"
    version = "function handler(event) {{ event.request.uri = '/v{}'; return event.request; }}\n"
    code.write_text(version.format(1))
    document = with_functions(origin.port, {"viewer-request": "edited.js"})
    document["edge"]["functions"][arn("edited")]["file"] = str(code)
    viewer = await start_edge(document)
    assert (await viewer.get("/a")).text == "origin body for /v1"
    code.write_text(version.format(2))
    assert (await viewer.get("/b")).text == "origin body for /v2"
    replaced = tmp_path / "edited.js.tmp"  # an editor's save by rename
    replaced.write_text(version.format(3))
    replaced.replace(code)
    assert (await viewer.get("/c")).text == "origin body for /v3"
    code.write_text("x" * 11_000)  # over 10 KB: not loaded, the last code stays
    assert (await viewer.get("/d")).text == "origin body for /v3"


def test_a_config_reload_applies_functions_and_stores_without_restart(
    write_config: Any, tmp_path: Path
):
    from edgeproxy.reload import needs_restart

    before = with_functions(8080, {"viewer-request": "append_index.js"})
    after = with_functions(8080, {"viewer-request": "kvs_redirect.js"})
    after["edge"]["key_value_stores"] = {KVS: store_file(tmp_path / "s.json", {"/a": "b"})}
    old = load_config(write_config(before)).config
    new = load_config(write_config(after)).config
    assert needs_restart(old, new) == []
