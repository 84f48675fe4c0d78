"""An edge started in-process for a test: the config (a file or a dict) on free loopback
ports, its files kept out of the project, and a client that returns each response with the
exchange the edge recorded for it.

The edge is the one ``edgeproxy serve`` runs (``runtime.running_edge``), on a loop of its
own (``loop.LoopThread``); only the ports, the certificate and disk-cache folders and,
when asked, the origin are changed from what the config says.
"""

from __future__ import annotations

import asyncio
import copy
import ssl
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from edgeproxy.config.config_model import Config
from edgeproxy.config.loading import load_config, load_document
from edgeproxy.config.overrides import ConfigOverrides, apply_overrides
from edgeproxy.runtime import RunningEdge, running_edge
from edgeproxy.testing.loop import LoopThread
from edgeproxy.testing.origin import FakeOrigin
from edgeproxy.testing.records import EdgeResult, ExchangeRecord, Response
from edgeproxy.viewer.certs import cert_folder

ConfigSource = str | Path | Mapping[str, Any] | Config

# The record is written before the response's first byte; a few tries cover an edge that
# one day records after writing.
_RECORD_TRIES = 20
_RECORD_WAIT_S = 0.05


def prepared_config(
    source: ConfigSource,
    *,
    base_dir: Path,
    work_dir: Path,
    origin: FakeOrigin | str | None = None,
) -> Config:
    """``source`` loaded (a relative file name, and a dict's relative paths, start at
    ``base_dir``) and made safe to run beside other tests: every listener on 127.0.0.1 and
    a free port, certificates and the disk cache under ``work_dir``; with ``origin``, the
    demo origin (or the default behavior's origin) is that one instead."""
    config = loaded_config(source, base_dir)
    url = origin.url if isinstance(origin, FakeOrigin) else origin
    listeners = config.edge.listeners
    config = apply_overrides(
        config,
        ConfigOverrides(
            host="127.0.0.1",
            http_port=0,
            https_port=0 if listeners.https_port is not None else None,
            origin_url=url,
        ),
    )
    edge = config.edge
    cache = edge.cache.model_copy(
        update={"disk": edge.cache.disk.model_copy(update={"folder": str(work_dir / "cache")})}
    )
    update: dict[str, Any] = {
        "admin": edge.admin.model_copy(update={"host": "127.0.0.1", "port": 0}),
        "tls": edge.tls.model_copy(update={"cert_dir": str(work_dir / "certs")}),
        "cache": cache,
    }
    if edge.demo_origin is not None:
        update["demo_origin"] = edge.demo_origin.model_copy(update={"host": "127.0.0.1", "port": 0})
    return config.model_copy(update={"edge": edge.model_copy(update=update)})


def loaded_config(source: ConfigSource, base_dir: Path) -> Config:
    """``source`` as a Config: a file (relative to ``base_dir``), a dict, or a Config."""
    if isinstance(source, Config):
        return source
    if isinstance(source, Mapping):
        # the loader may normalise what it is given: the caller's dict stays as written
        return load_document(copy.deepcopy(dict(source)), base_dir).config
    return load_config(base_dir / Path(source)).config


class LocalEdge:
    """A running edge and its viewer-side client. ``get``/``request`` return an
    ``EdgeResult``: the response, the exchange record and what the fake origin received."""

    def __init__(self, loop: LoopThread, config: Config, origin: FakeOrigin | None = None) -> None:
        self._loop = loop
        self.config = config
        self.origin = origin
        self._context: AbstractAsyncContextManager[RunningEdge] | None = None
        self._running: RunningEdge | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tls: ssl.SSLContext | None = None

    # -- lifetime ----------------------------------------------------------------------------

    def start(self, clock: Callable[[], float] | None = None) -> LocalEdge:
        self._loop.run(lambda: self._start(clock))
        return self

    async def _start(self, clock: Callable[[], float] | None) -> None:
        self._context = (
            running_edge(self.config, clock=clock) if clock else running_edge(self.config)
        )
        self._running = await self._context.__aenter__()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), cookie_jar=aiohttp.DummyCookieJar()
        )

    def stop(self) -> None:
        """Close the client, then the edge: listeners, function runtimes, origin client."""
        self._loop.run(self._stop)

    async def _stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        context, self._context = self._context, None
        self._running = None
        if context is not None:
            await context.__aexit__(None, None, None)

    @property
    def running(self) -> RunningEdge:
        """The running edge's own object (ports, the Edge): for what this class lacks."""
        if self._running is None:
            raise RuntimeError("the edge is not running")
        return self._running

    @property
    def ports(self) -> dict[str, int]:
        """The ports bound: ``http``, ``https`` (when configured), ``admin``, ``origin``
        (the demo origin)."""
        return dict(self.running.ports)

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return self.running.url(path, scheme)

    @property
    def admin_url(self) -> str:
        return self.running.admin_url

    # -- the viewer's requests ---------------------------------------------------------------

    def get(self, path: str, **options: Any) -> EdgeResult:
        return self.request("GET", path, **options)

    def head(self, path: str, **options: Any) -> EdgeResult:
        return self.request("HEAD", path, **options)

    def post(self, path: str, **options: Any) -> EdgeResult:
        return self.request("POST", path, **options)

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        scheme: str = "http",
        client_ip: str | None = None,
    ) -> EdgeResult:
        """One viewer request (redirects are not followed: a 301 is a result to check).
        ``client_ip``: the loopback address the viewer connects from (``127.0.0.2``: a
        viewer the config's ``edge.geo.ranges`` may place elsewhere)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        url = self.url(path, scheme)
        response = self._loop.run(
            lambda: self._send(method, url, dict(headers or {}), data, client_ip)
        )
        return self._result(response)

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        client_ip: str | None,
    ) -> Response:
        assert self._session is not None
        options: dict[str, Any] = {"allow_redirects": False, "headers": headers, "data": body}
        if url.startswith("https:"):
            options["ssl"] = self._trust()
        if client_ip is None:
            return await _fetched(self._session, method, url, options)
        connector = aiohttp.TCPConnector(local_addr=(client_ip, 0))
        async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        ) as session:
            return await _fetched(session, method, url, options)

    def _trust(self) -> ssl.SSLContext:
        """A client context that trusts the edge's local CA (made at start)."""
        if self._tls is None:
            ca = cert_folder(self.config) / "ca.pem"
            self._tls = ssl.create_default_context(cafile=str(ca))
        return self._tls

    def _result(self, response: Response) -> EdgeResult:
        request_id = response.headers.get("X-Amz-Cf-Id")
        record = self._record(request_id) if request_id else None
        received = self.origin.requests_of(request_id) if self.origin and request_id else []
        return EdgeResult(response, record, tuple(received))

    def _record(self, request_id: str) -> ExchangeRecord | None:
        for _ in range(_RECORD_TRIES):
            found = self._loop.call(lambda: self._recorded(request_id))
            if found is not None:
                return ExchangeRecord.parse(found)
            self._loop.run(lambda: asyncio.sleep(_RECORD_WAIT_S))
        return None

    def _recorded(self, request_id: str) -> dict[str, object] | None:
        for ex in reversed(self.running.edge.recent):
            if ex.request_id == request_id:
                return ex.record()
        return None

    # -- the edge's state --------------------------------------------------------------------

    def exchanges(self) -> list[ExchangeRecord]:
        """Every exchange the edge keeps, oldest first (as ``GET /exchanges``)."""
        records = self._loop.call(lambda: [ex.record() for ex in self.running.edge.recent])
        return [ExchangeRecord.parse(r) for r in records]

    def invalidate(self, *paths: str) -> dict[str, Any]:
        """An invalidation through the admin API (``POST /invalidations``); its answer."""
        url = f"{self.admin_url}/invalidations"

        async def post() -> dict[str, Any]:
            assert self._session is not None
            async with self._session.post(url, json={"paths": list(paths)}) as answer:
                found: dict[str, Any] = await answer.json()
                if answer.status != 201:
                    raise AssertionError(f"invalidation refused ({answer.status}): {found}")
                return found

        return self._loop.run(post)


async def _fetched(
    session: aiohttp.ClientSession, method: str, url: str, options: dict[str, Any]
) -> Response:
    async with session.request(method, url, **options) as answer:
        body = await answer.read()
        return Response(
            answer.status,
            answer.reason or "",
            CIMultiDictProxy(CIMultiDict(answer.headers)),
            body,
            url,
        )
