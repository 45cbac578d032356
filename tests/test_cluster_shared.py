"""What nodes share through the publish step: idempotency keys, receipts and listener counts."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from .cluster import page_ids, publish, start_nodes, until_listeners
from .support import WAIT, connect_page


async def test_one_idempotency_key_sent_to_three_nodes_at_once_is_one_event(spawn, redis_server,
                                                                             http):
    nodes = await start_nodes(spawn, redis_server.url)
    client = aioredis.from_url(redis_server.url)
    page = await connect_page(nodes[0].url, query="code=orders")
    try:
        await until_listeners(client, "orders", 1)
        answers = await asyncio.gather(*(
            publish(http, node, "orders", "PAID", {"order": 7},
                    params={"idempotency_key": "order-7"}) for node in nodes))
        assert [status for status, _answer in answers] == [200, 200, 200]
        assert len({answer["id"] for _status, answer in answers}) == 1
        assert sorted(bool(answer.get("duplicate")) for _status, answer in answers) == \
            [False, True, True]
        assert {answer["listeners"] for _status, answer in answers} == {1}
        _status, later = await publish(http, nodes[0], "orders", "PAID", {"order": 8})
        for _ in range(int(WAIT / 0.02)):
            if later["id"] in page_ids(page):
                break
            await asyncio.sleep(0.02)
        assert page.named("PAID") == [{"order": 7}, {"order": 8}]
    finally:
        await page.close()
        await client.aclose()


async def test_receipts_count_every_node_once_and_only_those_delivered(spawn, redis_server,
                                                                       http):
    nodes = await start_nodes(spawn, redis_server.url)
    client = aioredis.from_url(redis_server.url)
    pages = [await connect_page(node.url, query="code=shout", confirm_receipts=True)
             for node in nodes]
    bystander = await connect_page(nodes[1].url, query="code=elsewhere")
    try:
        await until_listeners(client, "shout", 3)
        status, answer = await publish(http, nodes[0], "shout", "HELLO", {},
                                       params={"wait": "3000"})
        assert status == 200 and answer["listeners"] == 3 and answer["acknowledged"] == 3
        # Another publish; a connection it was not delivered to confirms it, and a page
        # confirms twice: still one confirmation per delivered connection.
        waiting = asyncio.create_task(publish(http, nodes[2], "shout", "AGAIN", {},
                                              params={"wait": "1000"}))
        await pages[1].wait_for("AGAIN")
        event_id = pages[1].with_meta("AGAIN")[0][1]["id"]
        await bystander.client.emit("RECEIVED", {"id": event_id})
        await pages[1].client.emit("RECEIVED", {"id": event_id})
        _status, answer = await waiting
        assert answer["acknowledged"] == 3
    finally:
        for page in (*pages, bystander):
            await page.close()
        await client.aclose()


async def test_listeners_count_every_node_and_follow_leaving(spawn, redis_server, http):
    nodes = await start_nodes(spawn, redis_server.url)
    client = aioredis.from_url(redis_server.url)
    pages = [await connect_page(node.url, query="code=crowd") for node in nodes for _ in range(2)]
    try:
        await until_listeners(client, "crowd", 6)
        for node in nodes:
            _status, answer = await publish(http, node, "crowd", "WAVE", {})
            assert answer["listeners"] == 6 and answer["transports"]["socketio"] == 6
        await pages.pop().close()
        await until_listeners(client, "crowd", 5)
        _status, answer = await publish(http, nodes[0], "crowd", "WAVE", {})
        assert answer["listeners"] == 5
        await nodes[1].stop()  # a clean stop withdraws its counts at once
        _status, answer = await publish(http, nodes[0], "crowd", "WAVE", {})
        assert answer["listeners"] == 3
    finally:
        for page in pages:
            await page.close()
        await client.aclose()
