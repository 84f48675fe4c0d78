"""docs/fidelity.md's table of known deviations: every row says what CloudFront does, what
edgeproxy does, why, where edgeproxy decides it (a module or package that exists) and the
source of CloudFront's behaviour, so that a deviation is either gone or still documented and
cited."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "fidelity.md").read_text()
CITED = re.compile(
    r"Developer Guide|RFC|#\d+|re:Post|cache-tests|documentation|runtime interface client"
)
COLUMNS = ["deviation", "CloudFront", "edgeproxy", "why", "where", "source"]


def deviation_rows() -> list[list[str]]:
    section = DOC.split("## Known deviations from CloudFront", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def test_the_table_lists_deviations() -> None:
    assert len(deviation_rows()) >= 10


def test_every_deviation_is_complete_and_cited() -> None:
    for row in deviation_rows():
        assert len(row) == len(COLUMNS), row
        assert all(row), row
        source = row[COLUMNS.index("source")]
        assert CITED.search(source), row


def test_every_deviation_names_where_edgeproxy_decides_it() -> None:
    for row in deviation_rows():
        where = row[COLUMNS.index("where")].strip("`")
        assert (ROOT / "edgeproxy" / where).exists(), row
