#!/usr/bin/env python3
"""Summarise runs of the HTTP caching conformance suite (github.com/http-tests/cache-tests).

Inputs, nothing else:

* result files as the suite's command line writes them
  (``npm run --silent cli --base=http://127.0.0.1:PORT > NAME.json``): a JSON object mapping
  a test id to ``true`` or ``[error_name, message]``. The suite's published results for other
  caches (``SUITE/results/*.json``) have the same form;
* the suite's test metadata: the list of test groups exported by ``SUITE/tests/index.mjs``,
  read through ``node`` from a checkout (``--suite DIR``) or from a JSON dump of it
  (``--tests FILE``).

Every result is classed the way the suite's own result page does it
(``test-engine/lib/results.mjs`` ``determineTestResult``), in this order:

1. no result: ``untested``;
2. a test it depends on (``depends_on``) is neither ``pass`` nor ``yes``: ``dep``;
3. ``["Setup", "retry"]``: ``retry`` (the cache retried a request); other ``Setup``: ``setup``;
4. ``false`` or ``["AbortError", ...]``: ``harness`` (the harness failed or timed out);
5. by the test's kind: required ``pass``/``fail``, optimal ``pass``/``warn`` (a missed
   optimisation, not a conformance problem), check ``yes``/``no`` (informational).

Tests marked ``browser_only`` are left out: edgeproxy, like the published proxies, is run as
a shared cache, not as a browser cache.

usage: summary.py --suite SUITE edgeproxy=OUT/edgeproxy.json nginx=SUITE/results/nginx.json
       [--fails] [--warns] [--diff] [--markdown]
A results argument without ``NAME=`` is named after its file (``nginx.json`` -> nginx).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

KINDS = ("required", "optimal", "check")


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    YES = "yes"
    NO = "no"
    SETUP = "setup"
    DEP = "dep"
    HARNESS = "harness"
    RETRY = "retry"
    UNTESTED = "untested"


# What a dependency must be for the tests that depend on it to count (results.mjs passTypes).
PASSING = frozenset({Outcome.PASS, Outcome.YES})
# Outcomes that say the test did not really run, whatever its kind.
NOT_RUN = (Outcome.SETUP, Outcome.DEP, Outcome.HARNESS, Outcome.RETRY, Outcome.UNTESTED)
# For each kind: the outcome that counts as success and the one that counts as its failure.
GOOD_BAD = {
    "required": (Outcome.PASS, Outcome.FAIL),
    "optimal": (Outcome.PASS, Outcome.WARN),
    "check": (Outcome.YES, Outcome.NO),
}

# One result as the suite writes it: true, false, or [error_name, message].
Result = bool | list[str]


@dataclass(frozen=True)
class Test:
    id: str
    group: str
    kind: str
    depends_on: tuple[str, ...] = ()
    browser_only: bool = False


@dataclass(frozen=True)
class Catalogue:
    """The suite's tests: group ids in the suite's order, and each test by id."""

    groups: tuple[str, ...]
    tests: Mapping[str, Test]


@dataclass
class Summary:
    """One implementation's run: each applicable test's outcome, and counts per group."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    # group id (or "*" for all groups) -> kind -> outcome -> count
    counts: dict[str, dict[str, Counter[Outcome]]] = field(default_factory=dict)

    def count(self, kind: str, outcome: Outcome, group: str = "*") -> int:
        return self.counts.get(group, {}).get(kind, Counter())[outcome]

    def total(self, kind: str, group: str = "*") -> int:
        return sum(self.counts.get(group, {}).get(kind, Counter()).values())


# ---- reading inputs


def catalogue(groups: object) -> Catalogue:
    """Index the suite's exported test groups, refusing anything not shaped like them."""
    if not isinstance(groups, list):
        raise ValueError("test metadata: expected a list of test groups")
    order: list[str] = []
    tests: dict[str, Test] = {}
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("id"), str):
            raise ValueError("test metadata: a group without an id")
        order.append(group["id"])
        for test in group.get("tests", []):
            parsed = _test(test, group["id"])
            tests[parsed.id] = parsed
    return Catalogue(tuple(order), tests)


def _test(test: object, group: str) -> Test:
    if not isinstance(test, dict) or not isinstance(test.get("id"), str):
        raise ValueError(f"test metadata: a test without an id in group {group}")
    kind = test.get("kind") or "required"  # results.mjs: no kind means required
    if kind not in KINDS:
        raise ValueError(f"test metadata: {test['id']} has unknown kind {kind!r}")
    depends = test.get("depends_on") or []
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise ValueError(f"test metadata: {test['id']} depends_on is not a list of ids")
    return Test(test["id"], group, kind, tuple(depends), test.get("browser_only") is True)


def read_suite(suite_dir: Path) -> object:
    """The test groups SUITE/tests/index.mjs exports, as JSON (needs node; builds nothing)."""
    if not (suite_dir / "tests" / "index.mjs").is_file():
        raise SystemExit(f"{suite_dir} is not a checkout of the cache-tests suite")
    script = "import t from './tests/index.mjs'; process.stdout.write(JSON.stringify(t))"
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=suite_dir,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"cannot read the tests of {suite_dir}:\n{done.stderr.strip()}")
    return json.loads(done.stdout)


def read_results(path: Path) -> dict[str, Result]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of test id -> result")
    for test_id, result in data.items():
        if not (isinstance(result, bool) or _is_error(result)):
            raise ValueError(f"{path}: {test_id}: expected true, false or [name, message]")
    return data


def _is_error(result: object) -> bool:
    return isinstance(result, list) and all(isinstance(part, str) for part in result)


# ---- classing


def classify(
    test_id: str,
    catalogue: Catalogue,
    results: Mapping[str, Result],
    memo: dict[str, Outcome],
    path: tuple[str, ...] = (),
) -> Outcome:
    """The outcome of one test; ``memo`` keeps outcomes already worked out."""
    if test_id in memo:
        return memo[test_id]
    result = results.get(test_id)
    outcome = Outcome.UNTESTED if result is None else None
    if outcome is None:
        outcome = _dependency_outcome(test_id, catalogue, results, memo, path)
    if outcome is None:
        assert result is not None
        outcome = _own_outcome(catalogue.tests[test_id].kind, result)
    memo[test_id] = outcome
    return outcome


def _dependency_outcome(
    test_id: str,
    catalogue: Catalogue,
    results: Mapping[str, Result],
    memo: dict[str, Outcome],
    path: tuple[str, ...],
) -> Outcome | None:
    for dep in catalogue.tests[test_id].depends_on:
        # A dependency the suite no longer has, or a cycle, cannot hold the test back.
        if dep not in catalogue.tests or dep in path:
            continue
        if classify(dep, catalogue, results, memo, (*path, test_id)) not in PASSING:
            return Outcome.DEP
    return None


def _own_outcome(kind: str, result: Result) -> Outcome:
    if isinstance(result, list) and result[:1] == ["Setup"]:
        return Outcome.RETRY if result[1:2] == ["retry"] else Outcome.SETUP
    if result is False or (isinstance(result, list) and result[:1] == ["AbortError"]):
        return Outcome.HARNESS
    good, bad = GOOD_BAD[kind]
    return good if result is True else bad


def summarise(catalogue: Catalogue, results: Mapping[str, Result]) -> Summary:
    summary = Summary()
    memo: dict[str, Outcome] = {}
    for test in catalogue.tests.values():
        if test.browser_only:
            continue
        outcome = classify(test.id, catalogue, results, memo)
        summary.outcomes[test.id] = outcome
        for group in (test.group, "*"):
            summary.counts.setdefault(group, {}).setdefault(test.kind, Counter())[outcome] += 1
    return summary


# ---- printing


@dataclass(frozen=True)
class Run:
    name: str
    results: Mapping[str, Result]
    summary: Summary


def table(header: Sequence[str], rows: Iterable[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    grid = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in grid) for i in range(len(header))]
    padded = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in grid)
    return "\n".join(line.rstrip() for line in padded)


def totals_row(run: Run) -> list[str]:
    s = run.summary
    return [
        run.name,
        f"{s.count('required', Outcome.PASS)}/{s.count('required', Outcome.FAIL)}"
        f"/{s.total('required')}",
        f"{s.count('optimal', Outcome.PASS)}/{s.count('optimal', Outcome.WARN)}"
        f"/{s.total('optimal')}",
        f"{s.count('check', Outcome.YES)}/{s.count('check', Outcome.NO)}",
        *(str(sum(s.count(kind, o) for kind in KINDS)) for o in NOT_RUN),
    ]


TOTALS_HEADER = (
    "impl",
    "required pass/fail/total",
    "optimal pass/warn/total",
    "check yes/no",
    *NOT_RUN,
)


def group_cell(summary: Summary, group: str) -> str:
    """E.g. ``R 8/9 f1 · O 3/5 w2 · C 1/4``: successes/total per kind (R required, O optimal,
    C check), then the kind's own failures (f fail, w warn); the rest of the total did not
    run (setup, dep, harness, retry, untested)."""
    parts = []
    for kind in KINDS:
        total = summary.total(kind, group)
        if not total:
            continue
        good, bad = GOOD_BAD[kind]
        text = f"{kind[0].upper()} {summary.count(kind, good, group)}/{total}"
        failed = summary.count(kind, bad, group)
        if failed and kind != "check":
            text += f" {bad.value[0]}{failed}"
        parts.append(text)
    return " · ".join(parts)


def listing(run: Run, catalogue: Catalogue, shown: frozenset[Outcome]) -> list[str]:
    """The tests of ``run`` whose outcome is in ``shown``, by group, with the suite's message."""
    lines = []
    for group in catalogue.groups:
        ids = sorted(
            test_id
            for test_id, outcome in run.summary.outcomes.items()
            if outcome in shown and catalogue.tests[test_id].group == group
        )
        if ids:
            lines.append(f"- {group}:")
        for test_id in ids:
            result = run.results.get(test_id)
            message = result[1] if isinstance(result, list) and len(result) > 1 else ""
            lines.append(f"    {run.summary.outcomes[test_id]:8} {test_id}: {message[:110]}")
    return lines


def differences(base: Run, other: Run, catalogue: Catalogue) -> list[str]:
    """Tests whose outcome in ``other`` differs from ``base``, in the suite's order."""
    order = {group: i for i, group in enumerate(catalogue.groups)}
    ids = sorted(
        (t for t, o in other.summary.outcomes.items() if base.summary.outcomes.get(t, o) != o),
        key=lambda t: (order[catalogue.tests[t].group], t),
    )
    return [
        f"    {catalogue.tests[t].group:18} {t}: "
        f"{base.summary.outcomes[t]} -> {other.summary.outcomes[t]}"
        for t in ids
    ]


def report(runs: Sequence[Run], catalogue: Catalogue, options: argparse.Namespace) -> str:
    md: bool = options.markdown
    out = [table(TOTALS_HEADER, [totals_row(run) for run in runs], md), ""]
    groups = [g for g in catalogue.groups if any(g in run.summary.counts for run in runs)]
    rows = [[g, *(group_cell(run.summary, g) for run in runs)] for g in groups]
    out.append(table(["group", *(run.name for run in runs)], rows, md))
    if options.diff:
        for run in runs[1:]:
            lines = differences(runs[0], run, catalogue)
            out += ["", f"## {run.name} vs {runs[0].name}: {len(lines)} tests differ", *lines]
    if options.fails or options.warns:
        shown = {Outcome.FAIL, Outcome.SETUP, Outcome.HARNESS, Outcome.RETRY}
        if options.warns:
            shown.add(Outcome.WARN)
        title = ", ".join(sorted(o.value for o in shown))
        for run in runs[:1]:  # the implementation under test comes first
            out += ["", f"## {run.name}: {title}", *listing(run, catalogue, frozenset(shown))]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--suite", type=Path, help="checkout of the suite (reads it with node)")
    source.add_argument("--tests", type=Path, help="JSON dump of SUITE/tests/index.mjs")
    parser.add_argument("--fails", action="store_true",
                        help="list the first run's required failures and setup/harness/retry")
    parser.add_argument("--warns", action="store_true",
                        help="list the first run's optimal failures too")
    parser.add_argument("--diff", action="store_true",
                        help="list the tests whose outcome differs from the first run's")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("results", nargs="+", metavar="[NAME=]RESULTS.json")
    return parser.parse_args(argv)


def load_run(spec: str, catalogue: Catalogue) -> Run:
    name, named, path = spec.partition("=")
    if not named:
        name, path = Path(spec).stem, spec
    results = read_results(Path(path))
    unknown = sorted(set(results) - set(catalogue.tests))
    if unknown:  # results from another version of the suite
        print(f"# {name}: {len(unknown)} ids not in this suite, ignored, e.g. {unknown[:3]}",
              file=sys.stderr)
    return Run(name, results, summarise(catalogue, results))


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    if options.suite is not None:
        groups = read_suite(options.suite)
    else:
        groups = json.loads(options.tests.read_text())
    tests = catalogue(groups)
    runs = [load_run(spec, tests) for spec in options.results]
    print(report(runs, tests, options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
