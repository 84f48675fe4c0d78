"""Behaviors through a real edge chosen on the normalised path (reference 7.1): CloudFront
normalises the URI path per RFC 3986 (dot segments, repeated slashes, percent-encoded
unreserved characters) and then picks the cache behavior, but sends the raw path to the
origin. Every spelling of ``/account/…`` therefore meets ``/account/*``'s redirect-to-https
and its viewer-request handler, every spelling of ``/secure/…`` its https-only; a path
that only looks like ``/account/…`` before normalisation does not. Raw sockets on both
listeners: an HTTP client library would normalise the path before the edge saw it."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RecordingOrigin, StartEdge, Viewer, distribution, handler
from test_https import ca_file
from viewer_wire import RawResponse, RawViewer

ACCOUNT, SECURE, DEFAULT = 0, 1, 2  # behavior indexes in ``document``

# Spellings of a path under /account/ (what it normalises to, for the reader).
ACCOUNT_SPELLINGS = [
    "/./account/",  # /account/
    "/x/../account/",  # /account/
    "/%61ccount/",  # /account/: %61 is 'a', unreserved
    "/account/./x",  # /account/x
    "/%2e/account/",  # /account/: %2e is '.', then a dot segment
    "/%2E%2E/account/x",  # /account/x: upper-case hex is the same escape
    "/.%2e/account/",  # /account/
    "//account/x",  # /account/x: repeated slashes are removed
    "/account//x/../y",  # /account/y
]

# Paths that only look like /account/… raw, or not even that, and are not under it.
NOT_ACCOUNT = [
    "/account/../public/x",  # /public/x: CloudFront's own example (/a/b/.. is /a/)
    "/account%2Fx",  # %2F is reserved: not decoded, so no '/' after 'account'
    "/%41ccount/",  # /Account/: matching is case-sensitive
    "/accounts/",
]

SECURE_SPELLINGS = ["/./secure/x", "/a/b/../../secure/x", "/%73ecure/x", "//secure//x"]


def behavior(path_pattern: str, **settings: Any) -> dict[str, Any]:
    return {
        "path_pattern": path_pattern,
        "target_origin_id": "test",
        "allowed_methods": ["GET", "HEAD"],
        "cached_methods": ["GET", "HEAD"],
        "forwarded_values": {"query_string": False, "cookies": {"forward": "none"}},
        **settings,
    }


def document(origin: RecordingOrigin) -> dict[str, Any]:
    """``/account/*`` redirects to HTTPS and runs a viewer-request handler, ``/secure/*``
    is HTTPS only, the default behavior allows everything (and serves hits on the quick
    path, ``Edge.hit``)."""
    found = distribution(origin.port)
    found["distribution"]["ordered_cache_behavior"] = [
        behavior(
            "/account/*",
            viewer_protocol_policy="redirect-to-https",
            lambda_function_association=[
                {
                    "event_type": "viewer-request",
                    "handler": handler("mark_request.py:viewer_request"),
                }
            ],
        ),
        behavior("secure/*", viewer_protocol_policy="https-only"),
    ]
    found["edge"]["listeners"]["https_port"] = 0
    return found


async def raw_get(viewer: Viewer, target: str, *, tls: bool = False) -> RawResponse:
    """One GET of ``target`` exactly as written, over a fresh connection."""
    scheme = "https" if tls else "http"
    context = ssl.create_default_context(cafile=ca_file(viewer)) if tls else None
    raw = await RawViewer.connect(viewer.running.ports[scheme], ssl_context=context)
    try:
        await raw.request("GET", target)
        return await raw.response()
    finally:
        await raw.close()


async def last_exchange(viewer: Viewer) -> dict[str, Any]:
    return (await viewer.exchanges())[-1]


@pytest.mark.parametrize("target", ACCOUNT_SPELLINGS)
async def test_every_spelling_of_account_is_redirected_to_https(
    origin: RecordingOrigin, start_edge: StartEdge, target: str
):
    viewer = await start_edge(document(origin))
    https_port = viewer.running.ports["https"]
    for _ in range(2):  # the second time too: a cache hit must not take another behavior
        response = await raw_get(viewer, target)
        assert response.status == 301
        assert response.header("location") == f"https://edge.test:{https_port}{target}"
        assert response.header("x-cache") == "Redirect from cloudfront"
        assert (await last_exchange(viewer))["behavior"] == ACCOUNT
    assert origin.seen == []


@pytest.mark.parametrize("target", ACCOUNT_SPELLINGS)
async def test_every_spelling_of_account_runs_its_handler_and_the_origin_gets_it_raw(
    origin: RecordingOrigin, start_edge: StartEdge, target: str
):
    viewer = await start_edge(document(origin))
    response = await raw_get(viewer, target, tls=True)
    assert response.status == 200
    exchange = await last_exchange(viewer)
    assert exchange["behavior"] == ACCOUNT
    assert exchange["stages"] == ["viewer-request"]
    [seen] = origin.seen
    assert seen.raw_path == target  # normalised for matching only
    assert seen.headers["X-Viewer-Request"] == target  # the handler got the raw uri too


@pytest.mark.parametrize("target", SECURE_SPELLINGS)
async def test_every_spelling_of_secure_is_https_only(
    origin: RecordingOrigin, start_edge: StartEdge, target: str
):
    viewer = await start_edge(document(origin))
    refused = await raw_get(viewer, target)
    assert refused.status == 403
    assert refused.header("x-cache") == "Error from cloudfront"
    assert origin.seen == []
    served = await raw_get(viewer, target, tls=True)
    assert served.status == 200
    assert (await last_exchange(viewer))["behavior"] == SECURE
    assert [seen.raw_path for seen in origin.seen] == [target]


@pytest.mark.parametrize("target", NOT_ACCOUNT)
async def test_paths_not_under_account_after_normalising_take_the_default(
    origin: RecordingOrigin, start_edge: StartEdge, target: str
):
    viewer = await start_edge(document(origin))
    response = await raw_get(viewer, target)
    assert response.status == 200
    exchange = await last_exchange(viewer)
    assert exchange["behavior"] == DEFAULT
    assert exchange["stages"] == []
    [seen] = origin.seen
    assert seen.raw_path == target
    assert "X-Viewer-Request" not in seen.headers


# -- a viewer cannot stall the edge with a path or a cookie name ------------------------------

STALL_WAIT_S = 10.0  # an answer takes milliseconds; a backtracking match, minutes


async def test_pathological_paths_and_cookie_names_do_not_stall_the_edge(
    origin: RecordingOrigin, tmp_path: Path
):
    """A real ``edgeproxy serve`` process, so that a match that never ends leaves this test
    free to fail and to kill it: 8 KB paths against ``/img/*/*/*.jpg``, a 4 KB cookie name
    against a legacy allow-list entry ``*a*a*a*a*b``. Each is answered, and the edge still
    answers the next viewer at once."""
    config = tmp_path / "distribution.yaml"
    document = distribution(
        origin.port,
        forwarded_values={
            "query_string": False,
            "cookies": {"forward": "whitelist", "whitelisted_names": ["*a*a*a*a*b"]},
        },
    )
    document["distribution"]["ordered_cache_behavior"] = [
        behavior("/img/*/*/*.jpg", viewer_protocol_policy="allow-all")
    ]
    config.write_text(yaml.safe_dump(document, sort_keys=False))  # ports 0: the OS picks
    command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--config", str(config)]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        port = await _http_port(log, process)
        slow = [
            ("/img/" + "/" * 8000, ()),
            ("/img/" + "a/" * 4000 + "x.png", ()),
            ("/cookie", (f"Cookie: {'a' * 4096}=1",)),
        ]
        for target, headers in slow:
            response = await _answer(port, target, *headers)
            assert response.status == 200, (target[:20], response.status)
        assert (await _answer(port, "/img/a/b/c.jpg")).status == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stuck in a match: SIGINT cannot land
            process.kill()
            process.wait()
    assert [seen.path for seen in origin.seen][-1] == "/img/a/b/c.jpg"


async def _answer(port: int, target: str, *headers: str) -> RawResponse:
    raw = await RawViewer.connect(port)
    try:
        await raw.request("GET", target, *headers)
        head = await asyncio.wait_for(raw.reader.readuntil(b"\r\n\r\n"), STALL_WAIT_S)
    except TimeoutError:
        shown = [h[:16] + "…" for h in (target, *headers)]
        raise AssertionError(f"no answer in {STALL_WAIT_S} s to {shown}") from None
    finally:
        await raw.close()
    return RawResponse(int(head.split(b" ", 2)[1]), "", [], b"")


async def _http_port(log: Path, process: subprocess.Popen[bytes]) -> int:
    """The port ``edgeproxy serve`` says it listens on, once it says so."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"edgeproxy serve exited early: {log.read_text()}"
        found = re.search(r"edge on http://127\.0\.0\.1:(\d+)/", log.read_text())
        if found:
            return int(found.group(1))
        await asyncio.sleep(0.1)
    raise AssertionError("edgeproxy serve did not come up in 30 s")
