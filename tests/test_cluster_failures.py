"""What nodes do when Redis goes away, comes back empty or intact, or a node dies.

Real redis-server processes of the test's own (stopped, restarted, cut off by
a TCP relay), nodes as real processes.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from .cluster import (Listeners, page_ids, publish, publish_many, sequence, start_nodes,
                      until_listeners, vapid_of)
from .sse_client import open_stream
from .support import WAIT, connect_page


async def until_published(http, node, channel: str) -> dict:
    """Publish until the node answers 200 (Redis is back); return that answer."""
    for _ in range(int(2 * WAIT / 0.05)):
        status, answer = await publish(http, node, channel, "PING", {})
        if status == 200:
            return answer
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node.url} still answers {status}: {answer}")


async def test_while_redis_is_down_every_way_in_answers_503(spawn, redis_server, http):
    node, = await start_nodes(spawn, redis_server.url, 1, "--secret", "emit-secret")
    await redis_server.stop()
    status, answer = await publish(http, node, "news", "HEADLINE", {"title": "x"})
    assert status == 503 and answer["code"] == 50380 and "nothing was published" in answer["error"]
    async with http.get(f"{node.url}/notify", params={"code": "news", "event": "x"}) as response:
        assert response.status == 503 and (await response.json())["code"] == 50380
    async with http.get(f"{node.url}/notify", params={"code": "news", "event": "x",
                                                       "reply": "text"}) as response:
        assert "Could not send: The event bus (Redis) does not answer" in await response.text()
    async with http.post(f"{node.url}/emit", json={"event": "x", "room": "news", "data": {},
                                                   "secret": "emit-secret"}) as response:
        assert response.status == 503 and (await response.json())["code"] == 50380
    async with http.get(f"{node.url}/health") as response:
        health = await response.json()
    assert response.status == 503 and "bus" in health["failing"]


async def test_redis_restarted_empty_gives_resuming_clients_resume_gap(spawn, redis_server, http):
    nodes = await start_nodes(spawn, redis_server.url, 2)
    page = await connect_page(nodes[0].url, query="code=quiz")
    try:
        _status, before = await publish(http, nodes[0], "quiz", "Q", {"n": 1})
        await page.wait_for("Q")
        await redis_server.restart()  # no persistence: everything is gone
        await until_published(http, nodes[1], "other")
        _status, after = await publish(http, nodes[1], "quiz", "Q", {"n": 2})
        assert before["id"].rpartition("-")[0] != after["id"].rpartition("-")[0]  # a new epoch
        await page.wait_for("Q", 2)  # a connected page kept listening through it
        resumed = await connect_page(nodes[1].url, query=f"code=quiz&lastEventId={before['id']}")
        stream = await open_stream(http, nodes[0].url, query="code=quiz",
                                   last_event_id=before["id"])
        try:
            await resumed.wait_for("RESUME_GAP")
            assert resumed.received[1][0] == "RESUME_GAP"  # after WELCOME, before any event
            assert (await stream.next_event()).name == "RESUME_GAP"
        finally:
            await resumed.close()
            stream.close()
    finally:
        await page.close()


async def test_with_aof_nothing_acknowledged_is_lost_over_a_restart(spawn, redis_persistent,
                                                                    http):
    nodes = await start_nodes(spawn, redis_persistent.url, 2, "--history-size", "500")
    answers = await publish_many(http, nodes, "ledger", 200)
    await redis_persistent.restart()  # SIGTERM: Redis writes its append-only file
    await until_published(http, nodes[0], "other")
    late = await spawn("--redis-url", redis_persistent.url, "--node-name", "late",
                       "--history-size", "500", *vapid_of(nodes[0]))  # fills its mirror from Redis alone
    acknowledged = sorted((answer["id"] for answer in answers), key=sequence)
    for node in (*nodes, late):
        async with http.get(f"{node.url}/channels/ledger/events") as response:
            kept = [event["id"] for event in (await response.json())["events"]]
        assert kept == acknowledged


async def test_a_node_cut_off_from_redis_for_5_s_loses_nothing(spawn, redis_server,
                                                               redis_proxy, http):
    publisher, = await start_nodes(spawn, redis_server.url, 1)
    cut = await spawn("--redis-url", redis_proxy.url, "--node-name", "cut",
                      *vapid_of(publisher))
    listeners = Listeners()
    client = aioredis.from_url(redis_server.url)
    try:
        await listeners.open(http, [cut], "feed", 4)
        await until_listeners(client, "feed", 4)
        published: list[str] = []
        stop = asyncio.Event()

        async def publish_steadily() -> None:  # about 200 a second
            number = 0
            while not stop.is_set():
                status, answer = await publish(http, publisher, "feed", "TICK", {"n": number})
                assert status == 200, answer
                published.append(answer["id"])
                number += 1
                await asyncio.sleep(0.005)

        publishing = asyncio.create_task(publish_steadily())
        await listeners.until_each_has(50)
        redis_proxy.cut()
        await asyncio.sleep(5)
        during = len(published)
        redis_proxy.restore()
        restored = asyncio.get_running_loop().time()
        await listeners.until_each_has(during, timeout=WAIT)
        caught_up = asyncio.get_running_loop().time() - restored
        stop.set()
        await publishing
        await listeners.until_each_has(len(published))
        for ids in listeners.received():
            assert ids == published  # nothing lost, nothing twice, in order
        assert caught_up < 1.0, f"caught up in {caught_up:.2f} s"
    finally:
        await listeners.close()
        await client.aclose()


async def test_kill_9_of_a_node_mid_burst(spawn, redis_server, http):
    nodes = await start_nodes(spawn, redis_server.url, 3, "--history-size", "1000")
    client = aioredis.from_url(redis_server.url)
    listeners = Listeners()
    try:
        await listeners.open(http, nodes, "burst", 6)  # round the nodes: 2 on each
        await until_listeners(client, "burst", 6)
        victim = nodes[2]
        answers: list[dict] = []

        async def burst(node) -> None:
            for number in range(300):
                try:
                    status, answer = await publish(http, node, "burst", "TICK", {"n": number})
                except Exception:  # the killed node's connections
                    return
                if status == 200:
                    answers.append(answer)

        bursting = [asyncio.create_task(burst(node)) for node in nodes]
        while len(answers) < 200:
            await asyncio.sleep(0.01)
        await victim.kill()
        await asyncio.gather(*bursting)
        acknowledged = {answer["id"] for answer in answers}
        survivors = nodes[:2]
        for node in survivors:
            async with http.get(f"{node.url}/channels/burst/events") as response:
                kept = {event["id"] for event in (await response.json())["events"]}
            assert acknowledged <= kept
        # The victim's socket.io page resumes on a survivor: exactly the rest, once.
        victim_page = listeners.pages[1]  # listener 2 ran on nodes[2]
        seen = page_ids(victim_page)
        resumed = await connect_page(survivors[0].url, query=f"code=burst&lastEventId={seen[-1]}")
        try:
            async with http.get(f"{survivors[0].url}/channels/burst/events") as response:
                everything = [event["id"] for event in (await response.json())["events"]]
            rest = everything[everything.index(seen[-1]) + 1:]
            for _ in range(int(WAIT / 0.02)):
                if len(page_ids(resumed)) >= len(rest):
                    break
                await asyncio.sleep(0.02)
            assert page_ids(resumed) == rest
            assert len(set(seen + rest)) == len(seen + rest)
        finally:
            await resumed.close()
        # Its listeners stop counting within 15 s (its liveness key expires).
        alive = 6 - 2  # listeners 2 (page) and 5 (stream) were on the victim
        for _ in range(int(17 / 0.25)):
            _status, answer = await publish(http, survivors[0], "burst", "COUNT", {})
            if answer["listeners"] == alive:
                break
            await asyncio.sleep(0.25)
        assert answer["listeners"] == alive
    finally:
        await listeners.close()
        await client.aclose()


async def test_a_hole_in_the_bus_closes_connections_with_a_reason(spawn, redis_server, http):
    node, = await start_nodes(spawn, redis_server.url, 1)
    page = await connect_page(node.url, query="code=gap")
    stream = await open_stream(http, node.url, query="code=gap")
    client = aioredis.from_url(redis_server.url)
    try:
        _status, first = await publish(http, node, "gap", "ONE", {})
        await page.wait_for("ONE")
        # An entry naming a predecessor this node never read: as when it fell behind the
        # bus's retention, or Redis came back from an older copy.
        foreign = await client.xadd("notify:bus", {"k": "probe", "p": "1-0", "o": "nobody", "t": "x"})
        await client.hset("notify:meta", "bus_last", foreign)  # what the next entry follows
        error, = await page.wait_for("ERROR")
        assert error["code"] == 50381 and "resume with your last event id" in error["message"]
        assert await stream.ended()
        for _ in range(int(WAIT / 0.02)):  # the page is disconnected, so it resumes
            if not page.client.connected:
                break
            await asyncio.sleep(0.02)
        assert not page.client.connected
        resumed = await connect_page(node.url, query=f"code=gap&lastEventId={first['id']}")
        try:
            _status, second = await publish(http, node, "gap", "TWO", {})
            await resumed.wait_for("TWO")
            assert page_ids(resumed) == [second["id"]]
        finally:
            await resumed.close()
    finally:
        await page.close()
        stream.close()
        await client.aclose()
