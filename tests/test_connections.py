"""GET /connections/{app}[/{user}]: identified SSE and socket.io listeners, seed-3 shape."""

from __future__ import annotations

import time

import pytest

from .sse_client import SECRET, make_token, open_stream
from .support import until

ADMIN = "admin-token-for-tests"

pytestmark = pytest.mark.server(jwt_secret=SECRET, admin_token=ADMIN)


async def get(http, url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json()




async def test_lists_sse_and_socketio_connections(server, http, pages, monkeypatch):
    from notification_service.transports import sse as sse_module

    monkeypatch.setattr(sse_module, "LIVENESS_SECONDS", 0.05)  # notice closed streams fast
    before = int(time.time())
    alice = await open_stream(http, server.url, token=make_token("alice", "shop"))
    page = await pages(auth={"token": make_token("bob", "shop")})
    await page.wait_for("WELCOME")  # sent after the socket joined its channels
    carol = await open_stream(http, server.url, token=make_token("carol", "other-app"))
    anonymous = await open_stream(http, server.url, query="code=anonymous")  # never listed

    status, body = await get(http, f"{server.url}/connections/shop", make_token("x", "shop"))
    assert status == 200
    assert set(body) == {"alice", "bob"}
    [(alice_id, alice_info)] = body["alice"].items()
    assert alice_id == alice.connection_id
    assert alice_info == {
        "id": alice.connection_id,
        "created_at": alice_info["created_at"],
        "remote_addr": "",  # addresses are for the admin only
        "application": {"id": "shop"},
        "user": {"id": "alice"},
        "transport": "sse",
    }
    assert before <= alice_info["created_at"] <= time.time()
    [bob_info] = body["bob"].values()
    assert bob_info["id"] == page.client.get_sid("/")
    assert bob_info["transport"] == "socketio" and bob_info["user"] == {"id": "bob"}

    status, body = await get(http, f"{server.url}/connections/shop/alice", ADMIN)
    assert status == 200 and list(body) == [alice.connection_id]
    assert body[alice.connection_id]["remote_addr"] == "127.0.0.1"
    status, body = await get(http, f"{server.url}/connections/shop", ADMIN)
    assert body["bob"][bob_info["id"]]["remote_addr"] == "127.0.0.1"
    assert (await get(http, f"{server.url}/connections/shop/nobody", ADMIN)) == (200, {})

    # Gone from the listing once they disconnect.
    alice.close()
    await page.close()

    async def shop_is_empty():
        return (await get(http, f"{server.url}/connections/shop", ADMIN))[1] == {}
    await until(shop_is_empty)
    carol.close()
    anonymous.close()


async def test_socketio_jwt_listener_receives_its_channels(server, pages):
    page = await pages(auth={"token": make_token("bob", "shop")})
    await page.wait_for("WELCOME")
    report = await server.hub.publish("jwt:shop:bob", "order", {"n": 1})
    await server.hub.publish("jwt:shop", "sale", {"n": 2})
    assert report.listeners["socketio"] == 1
    assert await page.wait_for("order") == [{"n": 1}]
    assert await page.wait_for("sale") == [{"n": 2}]


@pytest.mark.parametrize("who, status, code", [
    (None, 401, 40160),
    ("wrong-admin-token", 401, 40161),
    ("other-app-jwt", 403, 40360),
    ("expired-jwt", 401, 40165),
])
async def test_listing_is_refused(server, http, who, status, code):
    token = {None: None, "wrong-admin-token": "wrong-admin-token",
             "other-app-jwt": make_token("x", "other"),
             "expired-jwt": make_token("x", "shop", lifetime=-60)}[who]
    for path in ("/connections/shop", "/connections/shop/alice"):
        answer_status, body = await get(http, server.url + path, token)
        assert (answer_status, body["code"]) == (status, code), body


async def test_socketio_subscribe_to_jwt_channels_needs_that_identity(server, pages):
    bob = await pages(auth={"token": make_token("bob", "shop")})
    await bob.wait_for("WELCOME")
    eve = await pages()
    await eve.wait_for("WELCOME")
    assert (await bob.emit("unsubscribe", "jwt:shop:bob"))["ok"] is True
    assert (await bob.emit("subscribe", "jwt:shop:bob"))["ok"] is True
    refused = await eve.emit("subscribe", "jwt:shop:bob")
    assert refused["ok"] is False and refused["code"] == 40302
    assert (await eve.emit("subscribe", "public"))["ok"] is True
    report = await server.hub.publish("jwt:shop:bob", "order", {"n": 3})
    assert report.listeners["socketio"] == 1
    await bob.wait_for("order")
    await server.hub.publish("public", "sentinel", None)
    await eve.wait_for("sentinel")  # in order on eve's connection: an order would be here by now
    assert eve.named("order") == []
