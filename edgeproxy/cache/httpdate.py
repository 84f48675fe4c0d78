"""HTTP dates exactly as RFC 9110 5.6.7 writes them, and the Age a response arrives with
(RFC 9111 4.2.3). Anything else is invalid: an invalid Expires means "already expired",
an invalid Age is ignored. ``email.utils`` is too lenient for that (it reads "UTC",
two-digit years and missing commas)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from edgeproxy.messages import Header, decimal_value

_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)"

# The three formats a recipient accepts: IMF-fixdate, RFC 850, asctime. ASCII: to Python's
# re, "١" would be a digit too.
_FORMATS = (
    re.compile(rf"{_DAY}, (?P<d>\d\d) {_MONTH} (?P<y>\d{{4}}) {_TIME} GMT", re.ASCII),
    re.compile(rf"{_LONG_DAY}, (?P<d>\d\d)-{_MONTH}-(?P<y>\d\d) {_TIME} GMT", re.ASCII),
    re.compile(rf"{_DAY} {_MONTH} (?P<d>[ \d]\d) {_TIME} (?P<y>\d{{4}})", re.ASCII),
)
MAX_AGE_VALUE = 2**31  # RFC 9111 1.2.2: larger delta-seconds count as this


def parse_http_date(value: str) -> float | None:
    """Epoch seconds of an HTTP date, or None when ``value`` is not one."""
    for pattern in _FORMATS:
        match = pattern.fullmatch(value.strip())
        if match is not None:
            return _timestamp(match)
    return None


def _timestamp(match: re.Match[str]) -> float | None:
    year = int(match["y"])
    if year < 100:  # RFC 850's two digits: the century that is not more than 50 years ahead
        year += 2000 if year < 70 else 1900
    try:
        moment = datetime(
            year,
            _MONTHS[match["mon"]],
            int(match["d"]),
            int(match["h"]),
            int(match["m"]),
            int(match["s"]),
            tzinfo=UTC,
        )
    except ValueError:  # no such day or time
        return None
    return moment.timestamp()


def age_value(headers: Iterable[Header]) -> int | None:
    """The Age an origin sent: the first field line's first member, digits only."""
    for name, value in headers:
        if name.lower() == "age":
            first = value.split(",", 1)[0].split(";", 1)[0].strip()
            return decimal_value(first, MAX_AGE_VALUE)
    return None


def initial_age(headers: Iterable[Header], now: float) -> float:
    """How old a response already is when it arrives: its Age, or how long ago its Date
    says it was made, whichever is more (RFC 9111 4.2.3, without the request delay)."""
    headers = list(headers)
    age = age_value(headers) or 0
    date = next((parse_http_date(v) for k, v in headers if k.lower() == "date"), None)
    apparent = max(0.0, now - date) if date is not None else 0.0
    return max(float(age), apparent)
