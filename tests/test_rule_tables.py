"""The rule tables drive the flow: each field is read in one place, and changing a row
changes what a real edge does (DESIGN section 1: "the rules that decide where a step leads
live in one table, not in ``if``s scattered through the pipeline")."""

from __future__ import annotations

import ast
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
from conftest import OriginResponse, RecordingOrigin, StartEdge, distribution, handler

from edgeproxy import error_responses, stages
from edgeproxy.config.custom_error_pages import ErrorPageRule, ErrorPages
from edgeproxy.error_responses import page_rule
from edgeproxy.stages import (
    STAGE_RULES,
    Source,
    Stage,
    StageRule,
    viewer_response_runs,
    x_cache_for,
)

PACKAGE = Path(stages.__file__).parent

# -- the tables decide: a row said otherwise changes what the edge does ------------------


def _hooks(origin: RecordingOrigin, hooks: list[dict[str, Any]]) -> dict[str, Any]:
    return distribution(origin.port, lambda_function_association=hooks)


def _said_otherwise(monkeypatch: pytest.MonkeyPatch, stage: Stage, **changes: Any) -> None:
    monkeypatch.setitem(STAGE_RULES, stage, replace(STAGE_RULES[stage], **changes))


ORIGIN_REQUEST_GENERATES = [
    {"event_type": "origin-request", "handler": handler("flow_generate.py:origin_request")}
]


async def test_origin_request_generated_response_is_stored_as_the_table_says(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(_hooks(origin, ORIGIN_REQUEST_GENERATES))
    first = await viewer.get("/made")
    assert first.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    second = await viewer.get("/made")
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert second.text == "generated at origin-request for /made"
    assert await viewer.last_stages() == []


async def test_origin_request_generated_response_not_stored_when_the_table_says_not(
    origin: RecordingOrigin, start_edge: StartEdge, monkeypatch: pytest.MonkeyPatch
):
    _said_otherwise(monkeypatch, Stage.ORIGIN_REQUEST, generated_is_cached=False)
    viewer = await start_edge(_hooks(origin, ORIGIN_REQUEST_GENERATES))
    for _ in range(2):
        response = await viewer.get("/made")
        assert response.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
        assert await viewer.last_stages() == ["origin-request"]
    assert (await viewer.client.get(f"{viewer.running.admin_url}/cache")).json() == []
    assert origin.seen == []


async def test_origin_response_result_not_stored_when_the_table_says_not(
    origin: RecordingOrigin, start_edge: StartEdge, monkeypatch: pytest.MonkeyPatch
):
    _said_otherwise(monkeypatch, Stage.ORIGIN_RESPONSE, generated_is_cached=False)
    viewer = await start_edge(distribution(origin.port))
    for _ in range(2):
        response = await viewer.get("/object")
        assert response.headers["x-cache"] == "Miss from cloudfront"
    assert len(origin.requests_for("/object")) == 2


def test_only_origin_side_stages_store_what_they_return():
    """viewer-request runs before the cache key exists and viewer-response after the store:
    the flow has no place to store what they return, so their rows must say so."""
    stored = {stage for stage, rule in STAGE_RULES.items() if rule.generated_is_cached}
    assert stored == {Stage.ORIGIN_REQUEST, Stage.ORIGIN_RESPONSE}


async def test_viewer_response_runs_per_source_as_the_table_says(
    origin: RecordingOrigin, start_edge: StartEdge, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(stages.VIEWER_RESPONSE_RUNS, Source.ORIGIN, False)
    hooks = [{"event_type": "viewer-response", "handler": handler("flow_mark.py:viewer_response")}]
    viewer = await start_edge(_hooks(origin, hooks))
    miss = await viewer.get("/page")
    assert "x-viewer-response" not in miss.headers
    hit = await viewer.get("/page")
    assert hit.headers["x-viewer-response"] == "ran"


async def test_custom_error_page_x_cache_comes_from_the_table(
    origin: RecordingOrigin, start_edge: StartEdge, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(stages.X_CACHE, Source.EDGE, "Probe from cloudfront")
    origin.responses["/missing"] = OriginResponse(status=404, headers={}, body="plain 404")
    document = distribution(origin.port)
    document["distribution"]["custom_error_response"] = [
        {"error_code": 404, "response_code": 200, "response_page_path": "/404.html"}
    ]
    viewer = await start_edge(document)
    response = await viewer.get("/missing")
    assert response.text == "origin body for /404.html"
    assert response.headers["x-cache"] == "Probe from cloudfront"


def test_x_cache_error_sources(monkeypatch: pytest.MonkeyPatch):
    assert x_cache_for(Source.ORIGIN, 503) == "Error from cloudfront"
    assert x_cache_for(Source.ORIGIN_REQUEST_GENERATED, 503) == (
        "LambdaGeneratedResponse from cloudfront"
    )
    monkeypatch.setattr(stages, "ERROR_X_CACHE_SOURCES", frozenset())
    assert x_cache_for(Source.ORIGIN, 503) == "Miss from cloudfront"


def test_viewer_response_never_runs_for_errors_or_switching_protocols():
    assert viewer_response_runs(Source.ORIGIN, 200)
    assert not viewer_response_runs(Source.ORIGIN, 404)
    assert not viewer_response_runs(Source.ORIGIN, 101)
    assert not viewer_response_runs(Source.VIEWER_REQUEST_GENERATED, 200)


def test_custom_error_page_decided_per_source(monkeypatch: pytest.MonkeyPatch):
    pages = ErrorPages([_page(404, "/404.html", 200)])
    assert page_rule(pages, Source.CACHE, 404) == ErrorPageRule(404, "/404.html", 200)
    assert page_rule(pages, Source.CACHE, 500) is None
    assert page_rule(pages, Source.ORIGIN_REQUEST_GENERATED, 404) is None
    monkeypatch.setattr(error_responses, "NO_ERROR_PAGE_SOURCES", frozenset({Source.CACHE}))
    assert page_rule(pages, Source.CACHE, 404) is None


def _page(code: int, path: str, response: int) -> Any:
    class Page:
        error_code, response_page_path, response_code = code, path, response

    return Page()


# -- one reader per field ----------------------------------------------------------------


def _scopes(tree: ast.Module) -> list[tuple[str, list[ast.AST]]]:
    """(qualified name, nodes) per function, nested functions apart; the module's own
    statements (outside any function) under ``<module>``."""
    found: list[tuple[str, list[ast.AST]]] = []

    def visit(node: ast.AST, name: str, own: list[ast.AST]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner: list[ast.AST] = []
                qual = f"{name}.{child.name}" if name != "<module>" else child.name
                if not isinstance(child, ast.ClassDef):
                    found.append((qual, inner))
                    visit(child, qual, inner)
                else:
                    visit(child, qual, own)
            else:
                own.append(child)
                visit(child, name, own)

    module: list[ast.AST] = []
    found.append(("<module>", module))
    visit(tree, "<module>", module)
    return found


def _readers() -> dict[str, set[str]]:
    """For each StageRule field: the scopes that use ``STAGE_RULES`` and read that field;
    for each other table: the scopes that load its name."""
    names = {f.name for f in fields(StageRule)}
    readers: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE.parent).as_posix()
        for scope, nodes in _scopes(ast.parse(path.read_text())):
            loaded = {
                n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            }
            attrs = {n.attr for n in nodes if isinstance(n, ast.Attribute)}
            used = (attrs & names) if "STAGE_RULES" in loaded else set()
            for name in used | (loaded & set(TABLES)):
                readers.setdefault(name, set()).add(f"{module}:{scope}")
    return readers


# Tables read by name; each has one reader, the function that decides.
TABLES = {
    "VIEWER_RESPONSE_RUNS": {"edgeproxy/stages.py:viewer_response_runs"},
    "X_CACHE": {"edgeproxy/stages.py:x_cache_for"},
    "ERROR_X_CACHE_SOURCES": {"edgeproxy/stages.py:x_cache_for"},
    "NO_ERROR_PAGE_SOURCES": {"edgeproxy/error_responses.py:page_rule"},
    "HIT_STEPS": {"edgeproxy/routes.py:steps_on_a_hit"},
    "STATUS_RULES": {"edgeproxy/cache/ttl.py:_ttl"},
    "ERRORS_HONOURING_NO_STORE": {"edgeproxy/cache/ttl.py:_error_ttl"},
}

# StageRule fields with one reader: the place that decides (stages.py's small functions are
# what the rest of the code asks).
ONE_READER = {
    "generated_is_cached": {"edgeproxy/misses.py:stored_under"},
    "generated_size_limit": {"edgeproxy/functions/validation_rules.py:generated_size"},
    "request_stage": {"edgeproxy/stages.py:takes_request"},
    "has_origin": {"edgeproxy/stages.py:sees_origin"},
    "timeout_s": {"edgeproxy/stages.py:timeout_limit"},
    "body_truncate_at": {"edgeproxy/stages.py:body_shown_up_to"},
    "read_only_headers": {"edgeproxy/stages.py:read_only_headers"},
}


def test_every_stage_rule_field_is_accounted_for():
    assert {f.name for f in fields(StageRule)} == set(ONE_READER)


@pytest.mark.parametrize("name", sorted({**TABLES, **ONE_READER}))
def test_each_table_and_field_has_its_known_readers(name: str):
    expected = {**TABLES, **ONE_READER}[name]
    assert _readers().get(name, set()) == expected
