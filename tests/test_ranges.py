"""Range requests cut from a cached object (reference 7.10, RFC 9110 14): one test per row
of the table in cache/ranges.py."""

from __future__ import annotations

import pytest

from edgeproxy.cache.ranges import apply_range, if_range_matches, parse_range
from edgeproxy.messages import Headers, header_value

BODY = bytes(range(256)) * 4  # 1,024 bytes
STORED: Headers = [
    ("Content-Type", "application/octet-stream"),
    ("Content-Length", "1024"),
    ("ETag", '"v1"'),
    ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ("Cache-Control", "max-age=60"),
]


def ask(range_value: str | None, *extra: tuple[str, str], method: str = "GET", status: int = 200):
    headers: Headers = [("Range", range_value)] if range_value is not None else []
    return apply_range(status, STORED, BODY, [*headers, *extra], method=method, boundary="B0UND")


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1000-5000", 1000, 1023),  # last clipped to the end
        ("bytes=-5000", 0, 1023),  # suffix longer than the object
        ("BYTES = 5-5", 5, 5),
    ],
)
def test_single_range_is_206(value: str, first: int, last: int) -> None:
    answer = ask(value)
    assert answer is not None and answer.status == 206
    assert answer.body == BODY[first : last + 1]
    assert header_value(answer.headers, "Content-Range") == f"bytes {first}-{last}/1024"
    assert header_value(answer.headers, "Content-Length") == str(last - first + 1)
    assert header_value(answer.headers, "ETag") == '"v1"'
    assert header_value(answer.headers, "Content-Type") == "application/octet-stream"


@pytest.mark.parametrize(
    "value",
    ["items=0-5", "bytes=5-1", "bytes=a-b", "bytes=", "bytes=--5", "0-5", "bytes=1-2-3"],
)
def test_unparseable_or_invalid_range_is_ignored(value: str) -> None:
    assert ask(value) is None


@pytest.mark.parametrize(
    "value", ["bytes=1024-", "bytes=2000-3000", "bytes=-0", "bytes=1024-,2000-"]
)
def test_unsatisfiable_is_416(value: str) -> None:
    answer = ask(value)
    assert answer is not None and answer.status == 416
    assert header_value(answer.headers, "Content-Range") == "bytes */1024"
    assert answer.body == b""
    assert header_value(answer.headers, "Content-Type") is None


def test_one_satisfiable_among_unsatisfiable_is_a_single_range() -> None:
    answer = ask("bytes=5000-6000, 0-9")
    assert answer is not None and answer.status == 206
    assert answer.body == BODY[:10]


def test_multiple_ascending_ranges_are_multipart() -> None:
    answer = ask("bytes=0-9, 100-109")
    assert answer is not None and answer.status == 206
    assert header_value(answer.headers, "Content-Type") == "multipart/byteranges; boundary=B0UND"
    assert header_value(answer.headers, "Content-Length") == str(len(answer.body))
    parts = answer.body.split(b"--B0UND")
    assert parts[-1] == b"--\r\n"
    first = parts[1].split(b"\r\n\r\n", 1)
    assert b"Content-Range: bytes 0-9/1024" in first[0]
    assert b"Content-Type: application/octet-stream" in first[0]
    assert first[1] == BODY[0:10] + b"\r\n"
    second = parts[2].split(b"\r\n\r\n", 1)
    assert b"Content-Range: bytes 100-109/1024" in second[0]
    assert second[1] == BODY[100:110] + b"\r\n"


@pytest.mark.parametrize("value", ["bytes=100-109, 0-9", "bytes=0-50, 40-60", "bytes=0-30, -1000"])
def test_overlapping_or_descending_ranges_get_the_whole_object(value: str) -> None:
    assert ask(value) is None


def test_too_many_ranges_get_the_whole_object() -> None:
    value = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(51))
    assert ask(value) is None


def test_not_get_or_not_200_or_no_range() -> None:
    assert ask("bytes=0-9", method="HEAD") is None
    assert ask("bytes=0-9", status=404) is None
    assert ask(None) is None


@pytest.mark.parametrize(
    ("if_range", "ranged"),
    [
        ('"v1"', True),
        ('"v2"', False),
        ('W/"v1"', False),  # weak tags never match If-Range
        ("Wed, 21 Oct 2015 07:28:00 GMT", True),
        ("Thu, 22 Oct 2015 07:28:00 GMT", False),
    ],
)
def test_if_range(if_range: str, ranged: bool) -> None:
    answer = ask("bytes=0-9", ("If-Range", if_range))
    assert (answer is not None and answer.status == 206) is ranged
    assert if_range_matches(if_range, STORED) is ranged


def test_parse_range() -> None:
    assert parse_range("bytes=0-99, 200-, -50") == [(0, 99), (200, None), (None, 50)]
    assert parse_range("bytes=0-99,") is None


def test_stored_headers_are_not_changed() -> None:
    before = list(STORED)
    ask("bytes=0-9")
    ask("bytes=0-9,20-29")
    ask("bytes=5000-")
    assert before == STORED
