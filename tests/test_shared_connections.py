"""``/connections`` across nodes on one Redis: every node lists every live node's connections.

Two in-process nodes and one real process (killed with SIGKILL: its entries
must drop out of every listing within 15 s, with nobody cleaning up after it),
SSE and socket.io listeners with JWTs, the seed-3 shape on every node.
"""

from __future__ import annotations

import time

import orjson
import pytest
import redis.asyncio as aioredis

from .sse_client import SECRET, make_token, open_stream
from .support import connect_page, until

pytestmark = pytest.mark.redis

ADMIN = "admin-token-for-tests"


async def listing(http, url, path, token=ADMIN):
    async with http.get(f"{url}/connections/{path}",
                        headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()




async def test_every_node_lists_every_node_s_connections_and_a_killed_node_drops_out(
        redis_server, spawn, serve, http):
    flags = {"redis_url": redis_server.url, "jwt_secret": SECRET, "admin_token": ADMIN}
    a = await serve(node_name="a", **flags)
    b = await serve(node_name="b", **flags)
    c = await spawn("--redis-url", redis_server.url, "--jwt-secret", SECRET,
                    "--admin-token", ADMIN, "--node-name", "c")
    alice = await open_stream(http, a.url, token=make_token("alice", "shop"))
    bob = await connect_page(b.url, auth={"token": make_token("bob", "shop")})
    await bob.wait_for("WELCOME")
    carol = await open_stream(http, c.url, token=make_token("carol", "shop"))
    other = await open_stream(http, c.url, token=make_token("dave", "other-app"))

    async def everyone_everywhere() -> bool:
        for node in (a, b, c):
            status, body = await listing(http, node.url, "shop")
            if status != 200 or set(body) != {"alice", "bob", "carol"}:
                return False
        return True
    await until(everyone_everywhere)

    status, body = await listing(http, a.url, "shop")
    [(carol_id, carol_info)] = body["carol"].items()
    assert carol_id == carol.connection_id
    assert carol_info == {"id": carol.connection_id, "created_at": carol_info["created_at"],
                          "remote_addr": "127.0.0.1", "application": {"id": "shop"},
                          "user": {"id": "carol"}, "transport": "sse"}
    assert carol_info["created_at"] <= time.time()
    [bob_info] = body["bob"].values()
    assert bob_info["id"] == bob.client.get_sid("/") and bob_info["transport"] == "socketio"
    # A user's own token sees no addresses, on any node.
    status, body = await listing(http, b.url, "shop", make_token("x", "shop"))
    assert status == 200 and body["carol"][carol_id]["remote_addr"] == ""
    assert body["alice"][alice.connection_id]["remote_addr"] == ""
    # One user, on the node that does not hold them; another application stays apart.
    assert (await listing(http, b.url, "shop/carol"))[1] == {carol_id: carol_info}
    assert set((await listing(http, a.url, "other-app"))[1]) == {"dave"}

    # A connection closing on one node disappears from the others.
    alice.close()
    await until(lambda: _without(http, c.url, "shop", "alice"))

    # kill -9: node c's entries stay in Redis but drop out once its liveness key expires.
    killed_at = time.monotonic()
    await c.kill()
    await until(lambda: _without(http, a.url, "shop", "carol"), timeout=16)
    assert time.monotonic() - killed_at <= 16
    assert (await listing(http, b.url, "other-app"))[1] == {}
    assert set((await listing(http, b.url, "shop"))[1]) == {"bob"}
    await bob.close()
    carol.close()
    other.close()


async def test_a_node_starting_removes_dead_nodes_entries(redis_server, serve, http):
    client = aioredis.from_url(redis_server.url)
    stale = {"node": "long-gone", "info": {"id": "x", "created_at": 1, "remote_addr": "",
                                           "application": {"id": "shop"},
                                           "user": {"id": "ghost"}, "transport": "sse"}}
    await client.hset("notify:conn:shop", "long-gone x", orjson.dumps(stale))
    await client.hset("notify:conn:shop", "a old", orjson.dumps({**stale, "node": "a"}))
    await client.hset("notify:conn:shop", "garbage", b"not an entry of ours")
    server = await serve(redis_url=redis_server.url, node_name="a", jwt_secret=SECRET,
                         admin_token=ADMIN)
    assert await client.hgetall("notify:conn:shop") == {}
    assert (await listing(http, server.url, "shop"))[1] == {}
    await client.aclose()


async def test_connections_are_written_again_after_redis_restarts_empty(
        redis_server, serve, http):
    flags = {"redis_url": redis_server.url, "jwt_secret": SECRET, "admin_token": ADMIN}
    a = await serve(node_name="a", **flags)
    b = await serve(node_name="b", **flags)
    alice = await open_stream(http, a.url, token=make_token("alice", "shop"))

    async def b_lists_alice() -> bool:
        status, body = await listing(http, b.url, "shop")
        return status == 200 and set(body) == {"alice"}
    await until(b_lists_alice)
    await redis_server.restart()  # no persistence: every key is gone
    # Liveness comes back within 5 s, the connections within the next check (5 s).
    await until(b_lists_alice, timeout=15)
    alice.close()


async def test_listing_answers_503_while_redis_is_down(redis_server, serve, http):
    server = await serve(redis_url=redis_server.url, node_name="a", jwt_secret=SECRET,
                         admin_token=ADMIN)
    await redis_server.kill()
    status, body = await listing(http, server.url, "shop")
    assert (status, body["code"], body["http"]) == (503, 50362, 503)
    assert "Redis" in body["error"]


async def _without(http, url, application, user) -> bool:
    status, body = await listing(http, url, application)
    return status == 200 and user not in body
