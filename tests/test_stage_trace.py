"""What a StageTrace keeps of a function call's event and result (functions/trace.py): a copy
taken at the call, cut when read, bounded in size whatever the function returns."""

from __future__ import annotations

from edgeproxy.functions.trace import JSON_LIMIT, STRING_LIMIT, StageTrace


def test_the_event_is_shown_as_it_was_when_taken() -> None:
    event = {"Records": [{"cf": {"request": {"uri": "/a", "headers": {}}}}]}
    trace = StageTrace()
    trace.took_event(event)
    event["Records"][0]["cf"]["request"]["uri"] = "/changed-in-place"
    assert trace.event == {"Records": [{"cf": {"request": {"uri": "/a", "headers": {}}}}]}


def test_long_strings_are_cut_when_read() -> None:
    trace = StageTrace()
    trace.took_result({"body": "x" * (STRING_LIMIT + 10)})
    body = trace.result["body"]
    assert body.startswith("x" * STRING_LIMIT)
    assert body.endswith("... [10 more characters]")


def test_a_large_value_is_cut_at_once_and_its_size_bounded() -> None:
    trace = StageTrace()
    trace.took_result({"body": "y" * (10 * JSON_LIMIT)})
    assert trace.size <= STRING_LIMIT + 16
    assert trace.result["body"].endswith(f"... [{10 * JSON_LIMIT - STRING_LIMIT} more characters]")


def test_a_value_that_is_not_json_is_shown_by_its_repr() -> None:
    trace = StageTrace()
    trace.took_result({"status": "200", "headers": {1: "x"}, "body": {b"raw"}})
    assert trace.result == {"status": "200", "headers": {"1": "x"}, "body": "{b'raw'}"}


def test_size_counts_what_is_kept() -> None:
    trace = StageTrace()
    trace.took_event({"a": "b"})
    assert trace.size == len(b'{"a":"b"}')
