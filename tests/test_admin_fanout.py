"""The parent's admin API with workers: the token rule of a single edge holds here too."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from edgeproxy.admin.fanout import fanout_app


async def test_token_required_on_every_call():
    async with TestClient(TestServer(fanout_app([], "s3cret"))) as client:
        refused = await client.get("/invalidations")
        assert refused.status == 401
        allowed = await client.get("/invalidations", headers={"Authorization": "Bearer s3cret"})
        assert allowed.status == 200
        assert await allowed.json() == []
        missing = await client.get("/invalidations/I1", headers={"Authorization": "Bearer s3cret"})
        assert missing.status == 404


async def test_the_single_edges_gate_stands_before_the_workers_too():
    async with TestClient(TestServer(fanout_app([]))) as client:
        rebound = await client.get("/invalidations", headers={"Host": "evil.example"})
        assert rebound.status == 403
        form = await client.post("/invalidations", data={"paths": "/*"})
        assert form.status == 415
        cross = await client.post(
            "/invalidations", json={"paths": ["/*"]}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross.status == 403
