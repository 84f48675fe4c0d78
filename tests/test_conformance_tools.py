"""conformance/summary.py classes and counts results the way the suite's result page does
(github.com/http-tests/cache-tests, test-engine/lib/results.mjs ``determineTestResult``), so
the figures in docs/fidelity.md cannot drift because the summary broke. The metadata and
results below are hand-written in the suite's formats: tests/index.mjs groups as JSON, and a
results file of test id -> true or [error_name, message]."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import summary

GROUPS = [
    {
        "id": "fresh",
        "name": "Freshness",
        "tests": [
            {"id": "base", "kind": "required"},
            {"id": "no-kind"},  # no kind means required
            {"id": "needs-base", "kind": "required", "depends_on": ["base"]},
            {"id": "needs-no-kind", "kind": "optimal", "depends_on": ["no-kind"]},
            {"id": "opt-pass", "kind": "optimal"},
            {"id": "opt-warn", "kind": "optimal"},
        ],
    },
    {
        "id": "odd",
        "name": "Odd outcomes",
        "tests": [
            {"id": "check-yes", "kind": "check"},
            {"id": "check-no", "kind": "check"},
            {"id": "needs-check-no", "kind": "required", "depends_on": ["check-no"]},
            {"id": "setup", "kind": "required"},
            {"id": "retry", "kind": "required"},
            {"id": "abort", "kind": "optimal"},
            {"id": "false", "kind": "required"},
            {"id": "untested", "kind": "required"},
            {"id": "browser", "kind": "required", "browser_only": True},
        ],
    },
]

RESULTS = {
    "base": True,
    "no-kind": ["Assertion", "Response 2 comes from cache"],
    "needs-base": True,
    "needs-no-kind": True,  # passed, but counts as dep: what it needs failed
    "opt-pass": True,
    "opt-warn": ["Assertion", "Response 2 does not come from cache"],
    "check-yes": True,
    "check-no": ["Assertion", "no"],
    "needs-check-no": True,
    "setup": ["Setup", "Response 1 status is 502, not 200"],
    "retry": ["Setup", "retry"],
    "abort": ["AbortError", "timed out"],
    "false": False,
    "browser": True,  # browser_only: not counted for a shared cache
    "gone-from-suite": True,  # an id the suite no longer has: ignored
}

EXPECTED = {
    "base": "pass",
    "no-kind": "fail",
    "needs-base": "pass",
    "needs-no-kind": "dep",
    "opt-pass": "pass",
    "opt-warn": "warn",
    "check-yes": "yes",
    "check-no": "no",
    "needs-check-no": "dep",
    "setup": "setup",
    "retry": "retry",
    "abort": "harness",
    "false": "harness",
    "untested": "untested",
}


def test_each_result_is_classed_as_the_suite_classes_it() -> None:
    run = summary.summarise(summary.catalogue(GROUPS), RESULTS)
    assert {t: o.value for t, o in run.outcomes.items()} == EXPECTED


def test_counts_per_kind_and_group() -> None:
    run = summary.summarise(summary.catalogue(GROUPS), RESULTS)
    passed, failed, warned = summary.Outcome.PASS, summary.Outcome.FAIL, summary.Outcome.WARN
    assert run.count("required", passed) == 2
    assert run.count("required", failed) == 1
    assert run.total("required") == 8  # browser_only left out
    assert run.count("optimal", passed) == 1
    assert run.count("optimal", warned) == 1
    assert run.total("optimal") == 4
    assert run.count("check", summary.Outcome.YES) == 1
    assert run.count("check", summary.Outcome.NO) == 1
    assert summary.group_cell(run, "fresh") == "R 2/3 f1 · O 1/3 w1"
    assert summary.group_cell(run, "odd") == "R 0/5 · O 0/1 · C 1/2"


def test_the_printed_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tests = tmp_path / "tests.json"
    tests.write_text(json.dumps(GROUPS))
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(RESULTS))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"base": True, "no-kind": True}))

    assert summary.main(["--tests", str(tests), f"edge={mine}", str(other), "--fails"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    # name, required pass/fail/total, optimal pass/warn/total, check yes/no, then the tests
    # that did not run: setup, dep, harness, retry, untested
    assert lines[1].split() == ["edge", "2/1/8", "1/1/4", "1/1", "1", "2", "2", "1", "1"]
    assert lines[2].split() == ["other", "2/0/8", "0/0/4", "0/0", "0", "0", "0", "0", "12"]
    assert "    fail     no-kind: Response 2 comes from cache" in lines
    assert "    setup    setup: Response 1 status is 502, not 200" in lines
    assert not any("opt-warn" in line for line in lines)  # warnings only with --warns
    assert "edge: 1 ids not in this suite" in err


def test_metadata_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        summary.catalogue([{"id": "g", "tests": [{"id": "t", "kind": "maybe"}]}])
    with pytest.raises(ValueError, match="depends_on"):
        summary.catalogue([{"id": "g", "tests": [{"id": "t", "depends_on": "base"}]}])
