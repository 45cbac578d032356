"""Publishing with one Redis command: ``XADD notify:inbox * channel C event E data '<json>'``.

Real Redis (the test's own redis-server), real nodes: in-process servers and,
for a node that dies with entries in hand, a real process frozen and then
killed with SIGKILL. Each entry is published once, by one node; a refused
entry lands in ``notify:inbox:errors`` with the code ``POST /broadcast`` answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import orjson
import pytest
import redis.asyncio as aioredis

from notification_service.cluster.inbox import derived_key

from .support import WAIT, connect_page, require, until

pytestmark = pytest.mark.redis

INBOX, ERRORS = "notify:inbox", "notify:inbox:errors"


@pytest.fixture
async def redis_client(redis_server):
    client = aioredis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def listener(url: str, channel: str = "news"):
    page = await connect_page(url)
    assert (await page.emit("subscribe", channel))["ok"] is True
    return page




async def test_the_readme_one_liner_with_redis_cli(redis_server, redis_client, serve):
    cli = shutil.which("redis-cli")
    require(cli is not None, "redis-cli is not installed (apt-get install -y redis-tools)")
    server = await serve(redis_url=redis_server.url, node_name="solo")
    page = await listener(server.url)
    subprocess.run([cli, "-p", str(redis_server.port), "XADD", "notify:inbox", "*", "channel",
                    "news", "event", "headline", "data", '{"title":"Hello"}'], check=True,
                   stdout=subprocess.DEVNULL)
    assert await page.wait_for("headline") == [{"title": "Hello"}]
    # Handled and gone: nothing pending, nothing left in the stream.
    await until(lambda: _drained(redis_client))
    await page.close()


async def test_malformed_entries_go_to_the_errors_stream_with_the_route_s_code(
        redis_server, redis_client, serve):
    server = await serve(redis_url=redis_server.url, node_name="solo", max_payload_bytes=100)
    page = await listener(server.url)
    bad = [
        ({"channel": "bad channel", "event": "e", "data": "1"}, 42240),
        ({"channel": "news", "event": "connect", "data": "1"}, 42242),
        ({"channel": "news", "event": "e", "data": "{not json"}, 42241),
        ({"channel": "news", "event": "e", "data": ""}, 42241),
        ({"channel": "news", "event": "e", "data": "9007199254740993"}, 42246),
        ({"channel": "news", "event": "e", "data": '"' + "x" * 200 + '"'}, 41340),
        ({"channel": "news", "data": "1"}, 42243),
        ({"channel": "news", "event": "e", "data": "1", "colour": "red"}, 42243),
        ({"channel": "news", "event": "e", "data": "1", "idempotency_key": "k" * 201}, 40004),
        ({"channel": b"\xff\xfe", "event": "e", "data": "1"}, 42243),
    ]
    ids = [(await redis_client.xadd(INBOX, fields)).decode() for fields, _code in bad]
    await redis_client.xadd(INBOX, {"channel": "news", "event": "good", "data": "[1, 2]"})
    assert await page.wait_for("good") == [[1, 2]]
    assert [name for name, _data in page.received if name != "WELCOME"] == ["good"]  # in order: nothing before it

    refused = await redis_client.xrange(ERRORS)
    assert len(refused) == len(bad)
    for (_error_id, fields), entry_id, (sent, code) in zip(refused, ids, bad):
        assert fields[b"entry"].decode() == entry_id
        assert int(fields[b"code"]) == code, fields[b"reason"]
        assert int(fields[b"http"]) == code // 100
        assert fields[b"reason"]  # the sentence the route would answer
        shown = orjson.loads(fields[b"fields"])
        assert set(shown) == set(sent)
    await until(lambda: _drained(redis_client))
    await page.close()


async def test_push_and_idempotency_key_fields(redis_server, redis_client, serve):
    server = await serve(redis_url=redis_server.url, node_name="solo")
    page = await listener(server.url)
    for _ in range(3):  # a producer retrying its XADD with the same key
        await redis_client.xadd(INBOX, {"channel": "news", "event": "once", "data": '"x"',
                                        "idempotency_key": "order-17", "push": "1"})
    await redis_client.xadd(INBOX, {"channel": "news", "event": "sentinel", "data": "null"})
    await page.wait_for("sentinel")
    assert page.named("once") == ["x"]
    await page.close()


async def test_entries_of_a_node_gone_mid_entry_are_published_once_by_another(
        redis_server, redis_client, serve):
    server = await serve(redis_url=redis_server.url, node_name="alive")
    page = await listener(server.url)
    await until(lambda: _group_exists(redis_client))
    # What a node that read entries and died before acknowledging them leaves behind:
    # the entries pending under its name. It had published the first one already
    # (with the key derived from the entry id, as every node does).
    first = int((await redis_client.time())[0] * 1000) + 1000
    ids = [f"{first}-{n}" for n in range(3)]
    await server.hub.publish("news", "taken", 0, idempotency_key=derived_key(ids[0]))
    async with redis_client.pipeline(transaction=True) as pipe:  # before "alive" can read them
        for n, entry_id in enumerate(ids):
            pipe.xadd(INBOX, {"channel": "news", "event": "taken", "data": str(n)}, id=entry_id)
        pipe.xreadgroup("nodes", "dead-node", {INBOX: ">"}, count=10)
        *_added, read = await pipe.execute()
    assert [entry_id.decode() for entry_id, _fields in read[0][1]] == ids
    await until(lambda: _drained(redis_client))
    await redis_client.xadd(INBOX, {"channel": "news", "event": "sentinel", "data": "null"})
    await page.wait_for("sentinel")
    assert page.named("taken") == [0, 1, 2]  # each once, in order
    await page.close()


async def test_two_nodes_share_the_inbox_each_entry_published_by_one(
        redis_server, redis_client, serve):
    a = await serve(redis_url=redis_server.url, node_name="a")
    b = await serve(redis_url=redis_server.url, node_name="b")
    pages = [await listener(a.url), await listener(b.url)]
    count = 300
    async with redis_client.pipeline(transaction=False) as pipe:
        for n in range(count):
            pipe.xadd(INBOX, {"channel": "news", "event": "n", "data": str(n)})
        await pipe.execute()
    await until(lambda: _drained(redis_client), timeout=2 * WAIT)

    published = [node.hub.metrics.published_counts["inbox"] for node in (a, b)]
    assert sum(published) == count, published
    everything = set(range(count))
    await until(lambda: _settled(pages, everything))
    for page in pages:  # no page sees an entry twice
        numbers = page.named("n")
        assert len(numbers) == len(set(numbers)), numbers
    for page in pages:
        await page.close()


async def test_a_killed_node_s_entries_are_taken_over(redis_server, redis_client, spawn, serve):
    frozen = await spawn("--redis-url", redis_server.url, "--node-name", "frozen")
    await until(lambda: _group_exists(redis_client))
    await until(lambda: _consumer_blocked(redis_client, "frozen"))
    # Frozen while blocked in XREADGROUP: Redis hands it the entries (they become
    # pending under its name) but it never publishes or acknowledges them.
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        async with redis_client.pipeline(transaction=True) as pipe:  # one batch to hand over
            for n in range(50):
                pipe.xadd(INBOX, {"channel": "news", "event": "n", "data": str(n)})
            await pipe.execute()
        pending = await redis_client.xpending(INBOX, "nodes")
        assert pending["pending"] == 50, pending
    finally:
        await frozen.kill()  # SIGKILL works on a stopped process
    survivor = await serve(redis_url=redis_server.url, node_name="survivor")
    page = await listener(survivor.url)
    # The frozen node's liveness key expires within 15 s; then its entries are claimed.
    await page.wait_for("n", count=50, timeout=20)
    assert page.named("n") == list(range(50))
    await until(lambda: _drained(redis_client))
    await page.close()


async def _drained(client: aioredis.Redis) -> bool:
    if not await client.exists(INBOX):
        return False
    pending = await client.xpending(INBOX, "nodes")
    return pending["pending"] == 0 and await client.xlen(INBOX) == 0


async def _group_exists(client: aioredis.Redis) -> bool:
    if not await client.exists(INBOX):
        return False
    return any(group["name"] == b"nodes" for group in await client.xinfo_groups(INBOX))


async def _consumer_blocked(client: aioredis.Redis, name: str) -> bool:
    """The node ``name`` has read from the inbox and waits in XREADGROUP for more."""
    consumers = await client.xinfo_consumers(INBOX, "nodes")
    if not any(consumer["name"] == name.encode() for consumer in consumers):
        return False
    return any(entry.get("cmd") == "xreadgroup" and "b" in entry.get("flags", "")
               for entry in await client.client_list())


def _union(pages) -> set[int]:
    return set().union(*(page.named("n") for page in pages))


async def _settled(pages, everything: set[int]) -> bool:
    return _union(pages) == everything
