"""The parent's admin API with workers: the token rule of a single edge holds here too."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from edgeproxy.admin_fanout import fanout_app


async def test_token_required_on_every_call():
    async with TestClient(TestServer(fanout_app([], "s3cret"))) as client:
        refused = await client.get("/invalidations")
        assert refused.status == 401
        allowed = await client.get("/invalidations", headers={"Authorization": "Bearer s3cret"})
        assert allowed.status == 200
        assert await allowed.json() == []
        missing = await client.get("/invalidations/I1", headers={"Authorization": "Bearer s3cret"})
        assert missing.status == 404
