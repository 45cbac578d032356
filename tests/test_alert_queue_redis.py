"""With --redis-url the alert queue and overlay presence live in Redis: every node sees them.

Two servers share one Redis of the test's own. These tests check the shared
state directly: an alert published on node B joins the line of an overlay
connected to node A; tests/test_alert_cluster.py plays whole bursts on real
node processes.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from notification_service.cluster.nodes import NODES_KEY

from .overlays import fire, open_overlay

pytestmark = pytest.mark.redis


async def get_calls(client: aioredis.Redis) -> int:
    return (await client.info("commandstats")).get("cmdstat_get", {}).get("calls", 0)


async def test_a_publish_to_a_code_without_overlays_asks_redis_nothing(serve, http,
                                                                        redis_server):
    a = await serve(redis_url=redis_server.url, node_name="node-a")
    b = await serve(redis_url=redis_server.url, node_name="node-b")
    client = aioredis.from_url(redis_server.url)
    try:
        before = await get_calls(client)
        answer = await fire(http, b, "nobody", "follow", user="ann")
        assert "queued_position" not in answer
        assert await get_calls(client) == before  # no GET of a queue that is not there
        # An overlay opens a new code on node A: node B knows at once, and queues.
        overlay = await open_overlay(a.url, "fresh", "ov-f")
        assert (await fire(http, b, "fresh", "follow", user="bob"))["queued_position"] == 0
        await overlay.close()
    finally:
        await client.aclose()


async def test_two_nodes_share_one_queue_and_its_presence(serve, http, redis_server):
    a = await serve(redis_url=redis_server.url, node_name="node-a", admin_token="adm")
    b = await serve(redis_url=redis_server.url, node_name="node-b", admin_token="adm")
    overlay = await open_overlay(a.url, "shared", "ov-1", presence={"visible": True,
                                                                   "streaming": True})
    first = await fire(http, b, "shared", "follow", user="ann")  # published on the other node
    second = await fire(http, b, "shared", "follow", user="bob")
    assert (first["queued_position"], second["queued_position"]) == (0, 1)

    async with http.get(f"{b.url}/codes/shared/status") as response:
        overlays = (await response.json())["overlays"]
    assert [(o["overlay"], o["node"], o["connected"], o["streaming"]) for o in overlays] == [
        ("ov-1", "node-a", True, True)]

    await overlay.wait_delivered(second["id"])  # the bus brings both to node A
    answer = await overlay.next()
    assert answer["play"]["id"] == first["id"]
    await overlay.started(first["id"])
    async with http.post(f"{b.url}/codes/shared/queue", json={"action": "pause"},
                         headers={"Authorization": "Bearer adm"}) as response:
        assert (await response.json())["paused"] is True
    answer = await overlay.finished(first["id"], have=[])
    assert answer["paused"] is True and "play" not in answer
    async with http.get(f"{a.url}/codes/shared/queue") as response:
        queue = await response.json()
    assert [item["id"] for item in queue["waiting"]] == [second["id"]]
    assert queue["recent"][0]["outcomes"] == {"ov-1": "played"}
    await overlay.close()


async def test_an_overlay_of_a_dead_node_shows_as_offline(serve, http, redis_server):
    a = await serve(redis_url=redis_server.url, node_name="node-a")
    b = await serve(redis_url=redis_server.url, node_name="node-b")
    overlay = await open_overlay(a.url, "gone", "ov-g")

    async def connected() -> list[tuple[str, bool]]:
        async with http.get(f"{b.url}/codes/gone/status") as response:
            return [(o["overlay"], o["connected"]) for o in (await response.json())["overlays"]]
    assert await connected() == [("ov-g", True)]
    # node-a dies without a word (kill -9): its liveness key expires; nothing else changes.
    liveness = a.app[NODES_KEY]
    await liveness.stop()
    assert await connected() == [("ov-g", False)]
    await overlay.close()


async def test_when_redis_is_down_overlays_and_the_console_are_told(serve, http, redis_server):
    server = await serve(redis_url=redis_server.url, node_name="solo")
    overlay = await open_overlay(server.url, "down", "ov-d")
    await redis_server.kill()
    answer = await overlay.next(have=[])
    assert (answer["ok"], answer["code"]) == (False, 50370)
    async with http.get(f"{server.url}/codes/down/queue") as response:
        body = await response.json()
        assert (response.status, body["code"]) == (503, 50370)
    await overlay.close()
