"""What an origin failure becomes and whether another attempt follows (reference 4.7, 7.12).

Every aiohttp or OS error of an origin fetch is converted here, once, into the edge's own
``OriginError`` tree by the ``_FAILURES`` table, which also says whether to try again:

    failure                                        viewer gets           another attempt
    name not in edge.resolve (nor in DNS)          502 OriginDnsError    never
    TLS handshake or certificate                   502                   never
    no connection within connection_timeout        504                   any method
    refused, unreachable                           502                   any method
    closed or reset before the answer's head       502                   GET and HEAD
    no head within origin_read_timeout             504                   GET and HEAD
    malformed status line, head over 20,480 bytes  502                   never
    body cut short (Content-Length or chunked)     502                   never
    body stalled past origin_read_timeout          504                   never

At most ``connection_attempts`` attempts in all (``OriginClient.fetch``). Apart from those, a
pooled keep-alive connection the origin had closed is tried once more on a new one
(``is_stale``), for methods safe to repeat.

aiohttp would on its own send an idempotent request once more when any connection drops before
the answer, which would double the origin's requests behind the count above. It has no public
switch for that; the ``single_attempt`` middleware (aiohttp's public client middleware) hands
such a drop back as ``Unretried``, which its retry passes through, and ``failure_of`` unwraps it.
"""

from __future__ import annotations

from enum import Enum

import aiohttp

from edgeproxy.errors import (
    OriginConnectError,
    OriginDnsError,
    OriginError,
    OriginResponseError,
    OriginTimeout,
)


class Retry(Enum):
    """Whether a failed attempt is followed by another (while attempts remain)."""

    NEVER = "never"
    ANY = "any"  # the request never left the edge: safe for every method
    SAFE = "safe"  # the origin may have seen the request: GET and HEAD only (reference 7.12)

    def allows(self, method: str) -> bool:
        return self is Retry.ANY or (self is Retry.SAFE and method in RETRIED_METHODS)


RETRIED_METHODS = frozenset({"GET", "HEAD"})
# A pooled keep-alive connection the origin closed as the request went out is tried once
# more on a new one, without counting an attempt, for methods safe to repeat (RFC 9112 9.3.1).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

# (aiohttp or OS error, our error, what the log says, retry); the first match wins, so a
# subclass comes before its base (DNS and TLS errors are ClientConnectorErrors; every
# TimeoutError is an OSError).
_FAILURES: tuple[tuple[type[BaseException], type[OriginError], str, Retry], ...] = (
    (aiohttp.ClientConnectorDNSError, OriginDnsError, "cannot resolve {host}", Retry.NEVER),
    (aiohttp.ClientSSLError, OriginConnectError, "TLS with {host} failed", Retry.NEVER),
    (
        aiohttp.ConnectionTimeoutError,
        OriginTimeout,
        "{host} accepted no connection within connection_timeout",
        Retry.ANY,
    ),
    (aiohttp.ClientConnectorError, OriginConnectError, "cannot connect to {host}", Retry.ANY),
    (
        aiohttp.ServerDisconnectedError,
        OriginResponseError,
        "{host} closed the connection without an answer",
        Retry.SAFE,
    ),
    (aiohttp.ClientPayloadError, OriginResponseError, "{host} sent a truncated body", Retry.NEVER),
    (aiohttp.ClientResponseError, OriginResponseError, "{host} sent a bad answer", Retry.NEVER),
    (TimeoutError, OriginTimeout, "{host} did not answer within origin_read_timeout", Retry.SAFE),
    (OSError, OriginResponseError, "the connection to {host} failed", Retry.SAFE),
    (aiohttp.ClientError, OriginResponseError, "{host} failed", Retry.NEVER),
)


def converted(exc: BaseException, host: str) -> tuple[OriginError, Retry]:
    """``exc`` (an aiohttp or OS error) as the edge's error, and whether to try again."""
    for kind, error, message, retry in _FAILURES:
        if isinstance(exc, kind):
            return error(f"{message.format(host=host)}: {exc!r}"), retry
    return OriginResponseError(f"{host} failed: {exc!r}"), Retry.NEVER


class Unretried(aiohttp.ClientError):
    """A connection lost before the answer (its ``__cause__``), kept from aiohttp's retry."""


async def single_attempt(
    req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """One request, one connection: a drop goes back to ``OriginClient.fetch`` to judge."""
    try:
        return await handler(req)
    except aiohttp.ClientConnectorError:
        raise  # no connection was made: aiohttp never retries these
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise Unretried(str(exc)) from exc


def failure_of(exc: BaseException) -> BaseException:
    """The error an attempt really met (``Unretried`` unwrapped)."""
    if isinstance(exc, Unretried) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


class AttemptFailed(Exception):
    """One attempt failed before the answer's head arrived."""

    def __init__(self, error: OriginError, retry: Retry) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry = retry


def is_stale(failed: AttemptFailed, reused: bool, method: str) -> bool:
    """The attempt died on a kept-alive connection the origin had already closed (``reused``:
    the connector handed it a pooled connection, ``origin/connection.py`` ``Handout``)."""
    dropped = isinstance(failed.__cause__, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError))
    return reused and dropped and method in IDEMPOTENT_METHODS
