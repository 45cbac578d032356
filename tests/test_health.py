"""GET /health: every registered component's state; 503 naming the failing one."""

from __future__ import annotations

import asyncio

from notification_service.operations import HEALTH_KEY


async def test_health_ok_with_components(server, http):
    async with http.get(f"{server.url}/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "components": {
            "data_dir": {"status": "ok"}, "webpush_store": {"status": "ok"}}}


async def test_closed_webpush_store_fails_health(server, http):
    from notification_service.webpush.service import WEBPUSH_KEY

    await server.app[WEBPUSH_KEY].store.close()
    async with http.get(f"{server.url}/health") as response:
        assert response.status == 503
        body = await response.json()
    assert body["failing"] == ["webpush_store"]
    assert "not open" in body["components"]["webpush_store"]["error"]


async def test_failing_component_is_named(server, http):
    async def store_down() -> None:
        raise ConnectionError("cannot reach the store")

    async def never_answers() -> None:
        await asyncio.sleep(60)

    checks = server.app[HEALTH_KEY]
    checks.timeout = 0.1
    checks.add("store", store_down)
    checks.add("redis", never_answers)
    async with http.get(f"{server.url}/health") as response:
        assert response.status == 503
        body = await response.json()
    assert body["status"] == "fail" and body["code"] == 50361 and body["http"] == 503
    assert body["failing"] == ["redis", "store"]
    assert body["components"]["store"] == {"status": "fail", "error": "cannot reach the store"}
    assert body["components"]["redis"]["error"] == "no answer within 0.1 s"
    assert body["components"]["data_dir"] == {"status": "ok"}
    assert "redis, store" in body["error"]


async def test_heartbeat_unchanged(server, http):
    async with http.get(f"{server.url}/heartbeat") as response:
        assert await response.json() == {"heartbeat": "OK"}


async def test_a_full_data_disk_fails_health_and_subscribing_is_a_507(serve, http, tmp_path):
    """Row 13: /health said ok while every subscribe answered 500 on a full disk."""
    from .test_startup import fill, tmpfs
    from .test_webpush_limits import KEYS

    with tmpfs(tmp_path / "disk", size="2m") as data:
        server = await serve(data_dir=data, subscribe_rate="off")
        async with http.get(f"{server.url}/health") as response:
            assert response.status == 200
        fill(data)
        async with http.get(f"{server.url}/health") as response:
            body = await response.json()
        assert response.status == 503 and body["failing"] == ["data_dir"]
        assert "is full" in body["components"]["data_dir"]["error"]
        answers = set()
        for n in range(40):  # until SQLite's own pages are used up too
            async with http.post(f"{server.url}/webpush/subscriptions", json={
                    "endpoint": f"https://fcm.googleapis.com/fcm/send/{n}" + "x" * 900,
                    "keys": KEYS, "channels": [f"c{n}-{c}" for c in range(32)]}) as response:
                answers.add((response.status, (await response.json()).get("code")))
        assert answers <= {(201, None), (507, 50720)} and (507, 50720) in answers
        await server.stop()
