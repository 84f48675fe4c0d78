"""Strict HTTP dates and the Age a response arrives with."""

from __future__ import annotations

import pytest

from edgeproxy.cache.httpdate import MAX_AGE_VALUE, age_value, initial_age, parse_http_date

EPOCH_1994 = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ],
)
def test_the_three_formats(value: str):
    assert parse_http_date(value) == EPOCH_1994


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 94 08:49:37 GMT",  # two-digit year in IMF-fixdate
        "Sun, 06 Nov 1994 8:49:37 GMT",  # one-digit hour
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 AEST",
        "Sun, 06-Nov-1994 08:49:37 GMT",
        "Sun 06 Nov 1994 08:49:37 GMT",  # no comma
        "Sun,  06 Nov 1994 08:49:37 GMT",  # two spaces
        "Sun, 06 Nov 1994 08.49.37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",  # no such day
        "0",
        "",
        "Sun, \u0660\u0666 Nov 1994 08:49:37 GMT",  # Arabic-Indic digits
    ],
)
def test_anything_else_is_invalid(value: str):
    assert parse_http_date(value) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("Age", "30")], 30),
        ([("Age", "7200, 0")], 7200),
        ([("Age", "0"), ("Age", "7200")], 0),
        ([("Age", "7200;foo=bar")], 7200),
        ([("Age", "abc")], None),
        ([("Age", "-7200")], None),
        ([("Age", "7200.0")], None),
        ([("Age", "99999999999")], MAX_AGE_VALUE),
        ([("Age", "9" * 5000)], MAX_AGE_VALUE),  # past int()'s 4,300 digits
        ([("Age", "000000000000000000000042")], 42),
        ([("Age", "\u00b2")], None),  # a digit to Python (and int() refuses it)
        ([("Age", "\u0661")], None),  # Arabic-Indic one: a digit to int(), not to HTTP
        ([("Age", "+5")], None),
        ([("Age", "1_0")], None),
        ([], None),
    ],
)
def test_age_value(headers: list[tuple[str, str]], expected: int | None):
    assert age_value(headers) == expected


def test_initial_age_is_the_larger_of_age_and_date():
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    assert initial_age([("Date", date), ("Age", "5")], EPOCH_1994 + 60) == 60.0
    assert initial_age([("Date", date), ("Age", "500")], EPOCH_1994 + 60) == 500.0
    assert initial_age([("Date", date)], EPOCH_1994 - 60) == 0.0  # a Date ahead of us
