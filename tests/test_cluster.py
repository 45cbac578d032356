"""Three nodes on one Redis deliver one event stream: every listener, every event, one order.

Nodes are real processes on a redis-server of the test's own; listeners are
socket.io clients and SSE streams spread over the nodes; publishes are spread
over the nodes too.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from .cluster import Listeners, publish, publish_many, sequence, start_nodes, until_listeners


async def test_three_nodes_deliver_every_event_once_in_one_order(spawn, redis_server, http):
    nodes = await start_nodes(spawn, redis_server.url)
    client = aioredis.from_url(redis_server.url)
    listeners = Listeners()
    try:
        await listeners.open(http, nodes, "stage", 40)
        await until_listeners(client, "stage", 40)
        answers = await publish_many(http, nodes, "stage", 1000)
        assert {answer["listeners"] for answer in answers} == {40}
        await listeners.until_each_has(1000)
        received = listeners.received()
        published = sorted((answer["id"] for answer in answers), key=sequence)
        assert len(set(published)) == 1000
        for ids in received:
            assert ids == published  # each once, in bus order, which is id order
    finally:
        await listeners.close()
        await client.aclose()


async def test_polling_and_health_on_every_node(spawn, redis_server, http):
    nodes = await start_nodes(spawn, redis_server.url)
    status, first = await publish(http, nodes[0], "board", "NOTE", {"text": "one"})
    assert status == 200
    status, second = await publish(http, nodes[1], "board", "NOTE", {"text": "two"})
    for node in nodes:
        async with http.get(f"{node.url}/channels/board/events") as response:
            events = (await response.json())["events"]
        assert [event["id"] for event in events] == [first["id"], second["id"]]
        async with http.get(f"{node.url}/channels/board/events",
                            params={"since": first["id"]}) as response:
            assert [event["id"] for event in (await response.json())["events"]] == [second["id"]]
        async with http.get(f"{node.url}/health") as response:
            health = await response.json()
        assert response.status == 200 and health["components"]["bus"] == {"status": "ok"}
