"""Web Push on several nodes: subscriptions in PostgreSQL, each push sent by one node, one key.

Real Redis and PostgreSQL, the local push service (checks VAPID, decrypts),
in-process nodes, and real processes for a node that dies holding a job and
for a node started with another VAPID key.
"""

from __future__ import annotations

import asyncio
import os
import signal

import orjson
import pytest
import redis.asyncio as aioredis

from notification_service.webpush import keys
from notification_service.webpush.jobs import job_fields
from notification_service.webpush.sender import PushOptions

from .pushservice import WEBPUSH, push_service  # noqa: F401
from .support import until
from .test_startup import fails_with

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def vapid_file(tmp_path):
    """One key for every node, as an operator copies it to each."""
    path = tmp_path / "shared_vapid.pem"
    keys.generate_key(path)
    return path


async def subscribe(http, url, browser, **extra):
    async with http.post(f"{url}/webpush/subscriptions",
                         json={**browser.to_json(), **extra}) as response:
        assert response.status in (200, 201), await response.text()


async def notify(http, url, body):
    async with http.post(f"{url}/webpush/notify", json=body) as response:
        answer = await response.json()
        assert response.status == 200, answer
        return answer




async def test_every_push_is_sent_once_whichever_node_publishes(
        redis_server, postgres_url, vapid_file, push_service, serve, http):
    shared = {"redis_url": redis_server.url, "database_url": postgres_url,
              "vapid_key": vapid_file, **WEBPUSH}
    a = await serve(node_name="a", **shared)
    b = await serve(node_name="b", **shared)
    browsers = [push_service.subscriber() for _ in range(3)]
    for n, browser in enumerate(browsers):  # subscribed on one node, pushed from both
        await subscribe(http, a.url, browser, group="staff", id=f"user{n}")

    answers = [await notify(http, (a, b)[n % 2].url, {"group": "staff", "message": f"m{n}"})
               for n in range(6)]
    for answer in answers:  # the counts come back from whichever node sent the batch
        assert (answer["queued"], answer["sent"], answer["failed"]) == (3, 3, 0), answer
    for browser in browsers:
        deliveries = await push_service.wait_for(browser, 6)
        assert sorted(d.plaintext for d in deliveries) == [f"m{n}".encode() for n in range(6)]
    await asyncio.sleep(0.2)  # a duplicate would have arrived by now
    assert push_service.total_requests == 18 and push_service.rejections == []

    # A live event asking for push (any way in): one push per subscriber too.
    async with http.post(f"{b.url}/broadcast/user1/headline?push=1", json={"t": 1}) as response:
        assert (await response.json())["transports"]["webpush"] == 1
    [*_earlier, live] = await push_service.wait_for(browsers[1], 7)
    assert orjson.loads(live.plaintext)["data"] == {"t": 1}

    # And through the Redis inbox, with push asked for in the entry.
    client = aioredis.from_url(redis_server.url)
    await client.xadd("notify:inbox", {"channel": "user2", "event": "headline",
                                       "data": '{"t": 2}', "push": "1"})
    await client.aclose()
    [*_earlier, pushed] = await push_service.wait_for(browsers[2], 7)
    assert orjson.loads(pushed.plaintext)["data"] == {"t": 2}
    await asyncio.sleep(0.2)
    assert push_service.total_requests == 20


async def test_a_killed_node_s_push_job_is_taken_over(
        redis_server, postgres_url, vapid_file, push_service, spawn, serve, http):
    frozen = await spawn("--redis-url", redis_server.url, "--database-url", postgres_url,
                         "--vapid-key", str(vapid_file), "--node-name", "frozen")
    client = aioredis.from_url(redis_server.url)
    try:
        await until(lambda: _blocked_on(client, "notify:push"))
        os.kill(frozen.pid, signal.SIGSTOP)  # it is handed the job, and never sends it
        await client.xadd("notify:push", job_fields("e-1", "webpush::all", b"taken over",
                                                    PushOptions(raw=True)))
        assert (await client.xpending("notify:push", "nodes"))["consumers"] == [
            {"name": b"frozen", "pending": 1}]
        await frozen.kill()
        survivor = await serve(node_name="survivor", redis_url=redis_server.url,
                               database_url=postgres_url, vapid_key=vapid_file, **WEBPUSH)
        browser = push_service.subscriber()
        await subscribe(http, survivor.url, browser)
        # The frozen node's liveness expires within 15 s; then the survivor sends its job.
        [delivery] = await push_service.wait_for(browser, 1, timeout=20)
        assert delivery.plaintext == b"taken over"
        await until(lambda: _no_jobs(client))
    finally:
        await client.aclose()


async def test_a_node_with_another_vapid_key_refuses_to_start(postgres_url, vapid_file, spawn):
    flags = ["--database-url", postgres_url]
    await spawn(*flags, "--vapid-key", str(vapid_file), "--node-name", "first")
    other = await spawn(*flags, "--node-name", "second", wait=False)  # generates its own key
    await fails_with(other, "VAPID key", "differs from the one the other nodes use",
                     "--vapid-key")
    # The same key starts.
    again = await spawn(*flags, "--vapid-key", str(vapid_file), "--node-name", "third")
    assert again.process.poll() is None


async def test_on_redis_alone_another_vapid_key_is_a_warning(redis_server, vapid_file, spawn):
    """Without PostgreSQL each node sends to its own subscriptions: it starts, and says so."""
    await spawn("--redis-url", redis_server.url, "--vapid-key", str(vapid_file))
    other = await spawn("--redis-url", redis_server.url)

    async def warned() -> bool:  # the log writer writes a batch every 50 ms
        log = other.logfile.read_text()
        return "differs from the one the other nodes use" in log and "WARNING" in log
    await until(warned)


async def _blocked_on(client, stream: str) -> bool:
    """The (only) node waits in XREADGROUP on the inbox and on ``stream``."""
    if not await client.exists(stream):
        return False
    blocked = [entry for entry in await client.client_list()
               if entry.get("cmd") == "xreadgroup" and "b" in entry.get("flags", "")]
    return len(blocked) >= 2  # the inbox and the push jobs


async def _no_jobs(client) -> bool:
    return (await client.xpending("notify:push", "nodes"))["pending"] == 0
