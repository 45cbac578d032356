"""ws-emit on Redis: room secrets as ``ws-emit::room_secret::<space>`` keys, and the
flask-socketio channel bridged by one elected node.

The emitter is python-socketio's own ``RedisManager`` (what flask-socketio's
``SocketIO(message_queue=...)`` uses), so the messages are exactly what a
flask-socketio backend publishes; pickled messages are built the way old
emitters pickled that same dict.
"""

from __future__ import annotations

import asyncio
import os
import pickle

import pytest
import redis.asyncio as aioredis
import socketio

from .support import WAIT, connect_page, joins, until

pytestmark = pytest.mark.redis

ADMIN = "admin-token-for-tests"
CHANNEL = "flask-socketio"


@pytest.fixture
async def redis_client(redis_server):
    client = aioredis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def listener(url, channel="news"):
    page = await connect_page(url)
    assert (await page.emit("subscribe", channel))["ok"] is True
    return page


async def flask_socketio_emit(url: str, event: str, data, room: str | None = "news") -> None:
    """What a Flask app with ``SocketIO(message_queue=url)`` does for ``emit(event, data, to=room)``."""
    def emit() -> None:
        manager = socketio.RedisManager(url, channel=CHANNEL, write_only=True)
        manager.emit(event, data, room=room, namespace="/")
    await asyncio.to_thread(emit)


def pickled(event: str, data, room: str = "news") -> bytes:
    """The same message as python-socketio builds it, pickled as old emitters sent it."""
    return pickle.dumps({"method": "emit", "event": event, "data": [data], "binary": False,
                         "namespace": "/", "room": room, "skip_sid": None, "callback": None,
                         "host_id": "0123abcd"})


async def bridged(client: aioredis.Redis) -> bool:
    """Exactly one node subscribed to the channel."""
    return dict(await client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode()) == 1


async def test_a_ws_emit_room_secret_key_is_a_space_secret(redis_server, redis_client, serve,
                                                           http):
    server = await serve(redis_url=redis_server.url, admin_token=ADMIN)
    assert not await joins(server.url, "dir::files", "MySecret_123")
    await redis_client.set("ws-emit::room_secret::dir", "MySecret_123")  # as ws-emit backends do
    await until(lambda: joins(server.url, "dir::files", "MySecret_123"))
    assert not await joins(server.url, "dir::files", "wrong")

    await redis_client.set("ws-emit::room_secret::dir", "Rotated_456")
    await until(lambda: _refused(server.url, "dir::files", "MySecret_123"))
    assert await joins(server.url, "dir::files", "Rotated_456")

    # A secret set through the admin route wins over the Redis key of the same space.
    async with http.put(f"{server.url}/admin/spaces/dir", json={"secret": "own"},
                        headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        assert response.status == 200
    assert await joins(server.url, "dir::files", "own")
    assert not await joins(server.url, "dir::files", "Rotated_456")

    await redis_client.delete("ws-emit::room_secret::dir")
    await redis_client.set("ws-emit::room_secret::other", "x")
    await until(lambda: joins(server.url, "other::a", "x"))
    await redis_client.delete("ws-emit::room_secret::other")
    await until(lambda: _refused(server.url, "other::a", "x"))


async def test_a_flask_socketio_emit_reaches_pages(redis_server, redis_client, serve):
    server = await serve(redis_url=redis_server.url)
    page = await listener(server.url)
    await until(lambda: bridged(redis_client))
    await flask_socketio_emit(redis_server.url, "headline", {"title": "Hello"})
    assert await page.wait_for("headline") == [{"title": "Hello"}]
    await flask_socketio_emit(redis_server.url, "pair", (1, "two"))  # several arguments
    assert await page.wait_for("pair") == [[1, "two"]]
    # Refused, and logged: no room (every event here goes to one channel), a bad room.
    await flask_socketio_emit(redis_server.url, "everyone", 1, room=None)
    await flask_socketio_emit(redis_server.url, "bad", 1, room="no spaces allowed")
    await flask_socketio_emit(redis_server.url, "sentinel", None)
    await page.wait_for("sentinel")
    assert page.named("everyone") == [] and page.named("bad") == []
    await page.close()


async def test_pickled_messages_need_the_flag(redis_server, redis_client, serve):
    server = await serve(redis_url=redis_server.url)
    page = await listener(server.url)
    await until(lambda: bridged(redis_client))
    await redis_client.publish(CHANNEL, pickled("old", {"n": 1}))
    await flask_socketio_emit(redis_server.url, "sentinel", None)
    await page.wait_for("sentinel")
    assert page.named("old") == []
    await page.close()


class Malicious:
    """Runs a shell command when unpickled by ``pickle.loads``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


async def test_with_the_flag_plain_pickles_pass_and_globals_are_refused(
        redis_server, redis_client, serve, tmp_path):
    server = await serve(redis_url=redis_server.url, ws_emit_pickle=True)
    page = await listener(server.url)
    await until(lambda: bridged(redis_client))
    await redis_client.publish(CHANNEL, pickled("old", {"n": 1, "list": [1.5, None, True]}))
    assert await page.wait_for("old") == [{"n": 1, "list": [1.5, None, True]}]

    marker = tmp_path / "pwned"
    await redis_client.publish(CHANNEL, pickled("evil", Malicious(str(marker))))
    await redis_client.publish(CHANNEL, pickle.dumps(Malicious(str(marker))))
    # A pickle that multiplies shared references into a huge structure.
    bomb: list = ["x"]
    for _ in range(40):
        bomb = [bomb, bomb]
    await redis_client.publish(CHANNEL, pickled("bomb", bomb))
    await redis_client.publish(CHANNEL, pickled("sentinel", None))
    await page.wait_for("sentinel")
    assert page.named("evil") == [] and page.named("bomb") == []
    assert not marker.exists()
    await page.close()


async def test_one_node_bridges_and_another_takes_over(redis_server, redis_client, serve):
    a = await serve(redis_url=redis_server.url, node_name="a")
    b = await serve(redis_url=redis_server.url, node_name="b")
    pages = {node.settings.node_name: await listener(node.url) for node in (a, b)}
    await until(lambda: bridged(redis_client))
    for n in range(3):
        await flask_socketio_emit(redis_server.url, "n", n)
    await until(lambda: _published(a, b, 3))
    await asyncio.sleep(0.2)  # a second bridge would have published them again by now
    assert _counts(a, b) == 3
    leader = (await redis_client.get("notify:leader:wsemit")).decode()
    survivor = b if leader == "a" else a
    await {"a": a, "b": b}[leader].stop()  # a clean stop hands the lease over

    async def survivor_bridges() -> bool:
        return (await redis_client.get("notify:leader:wsemit")) == \
            survivor.settings.node_name.encode() and await bridged(redis_client)
    await until(survivor_bridges, timeout=2 * WAIT)
    await flask_socketio_emit(redis_server.url, "after", "still here")
    page = pages[survivor.settings.node_name]
    assert await page.wait_for("after") == ["still here"]
    for page in pages.values():
        await page.close()


def _counts(*nodes) -> int:
    return sum(node.hub.metrics.published_counts["other"] for node in nodes)


async def _published(a, b, count) -> bool:
    return _counts(a, b) >= count


async def _refused(url, room, secret) -> bool:
    return not await joins(url, room, secret)
