"""Registering a page for a code: ?code=, auth, and the WELCOME/REGISTER handshake."""

from __future__ import annotations

from notification_service.app import SOCKETIO_KEY


async def fire(http, server, query: str) -> dict:
    async with http.get(f"{server.url}/notify?{query}") as response:
        assert response.status == 200
        return await response.json()


async def test_code_in_connection_url_registers(server, pages, http):
    page = await pages(query="code=1234")
    answer = await fire(http, server, "code=1234&event=follow&user=bob")
    assert answer["count"] == 1
    [data] = await page.wait_for("FOLLOW")
    assert data == {"code": "1234", "event": "follow", "user": "bob"}


async def test_code_in_auth_registers(server, pages, http):
    page = await pages(auth={"code": "abcd"})
    await fire(http, server, "code=abcd&event=RAID")
    assert await page.wait_for("RAID") == [{"code": "abcd", "event": "RAID"}]


async def test_welcome_then_register_handshake(server, pages, http):
    page = await pages()
    [welcome] = await page.wait_for("WELCOME")
    assert "message" in welcome
    assert await page.emit("REGISTER", {"code": "5678"}) == {"ok": True, "code": "5678", "replayed": 0}
    answer = await fire(http, server, "code=5678&event=sub")
    assert answer["count"] == 1
    assert (await page.wait_for("SUB"))[0]["code"] == "5678"


async def test_welcome_arrives_after_connect_so_a_handler_can_answer(server):
    """A python-socketio client answering WELCOME from its handler must not fail."""
    import asyncio

    import socketio

    client = socketio.AsyncClient(reconnection=False)
    registered = asyncio.get_running_loop().create_future()

    @client.on("WELCOME")
    async def on_welcome(_data):
        registered.set_result(await client.call("REGISTER", {"code": "9999"}, timeout=5))

    await client.connect(server.url, transports=["websocket"])
    try:
        assert await asyncio.wait_for(registered, 5) == {"ok": True, "code": "9999", "replayed": 0}
    finally:
        await client.disconnect()


async def test_reregistering_replaces_the_code(server, pages, http):
    page = await pages(query="code=first")
    await page.emit("REGISTER", {"code": "second"})
    assert (await fire(http, server, "code=first&event=A"))["count"] == 0
    assert (await fire(http, server, "code=second&event=B"))["count"] == 1
    await page.wait_for("B")
    assert page.named("A") == []


async def test_bad_code_gets_error_and_registers_nothing(server, pages, http):
    page = await pages()
    answer = await page.emit("REGISTER", {"code": "bad code!"})
    assert answer["ok"] is False
    [error] = await page.wait_for("ERROR")
    assert "A-Z a-z 0-9" in error["message"]
    too_long = await page.emit("REGISTER", {"code": "x" * 129})
    assert too_long["ok"] is False
    assert not server.app[SOCKETIO_KEY].listener_count("bad code!")


async def test_bad_code_in_url_gets_error(server, pages):
    page = await pages(query="code=%3Cscript%3E")
    [error] = await page.wait_for("ERROR")
    assert "'<' at position 0" in error["message"]


async def test_websocket_is_not_compressed(server, http):
    """permessage-deflate costs ~100 KB per connection for nothing (FACTS.md)."""
    async with http.ws_connect(f"{server.url}/socket.io/?EIO=4&transport=websocket",
                               compress=15) as ws:
        assert "permessage-deflate" not in ws._response.headers.get("Sec-WebSocket-Extensions", "")
        assert ws.compress == 0


async def test_a_channel_named_like_a_connection_id_reaches_only_its_listeners(server, pages, http):
    """python-socketio keeps a room per connection id; channels never share those rooms."""
    target, other = await pages(query="code=target"), await pages(query="code=spy")
    sid = target.client.get_sid()
    async with http.get(f"{server.url}/notify?code={sid}&event=hello") as response:
        assert (await response.json())["count"] == 0
    assert await other.emit("REGISTER", {"code": sid}) == {"ok": True, "code": sid, "replayed": 0}
    async with http.get(f"{server.url}/notify?code={sid}&event=hello") as response:
        assert (await response.json())["count"] == 1
    await other.wait_for("HELLO")
    async with http.get(f"{server.url}/notify?code=spy&event=sentinel") as response:
        assert (await response.json())["count"] == 0  # other left "spy" when it registered sid
    async with http.get(f"{server.url}/notify?code=target&event=sentinel") as response:
        assert (await response.json())["count"] == 1
    await target.wait_for("SENTINEL")  # in order on target's connection: a HELLO would be here
    assert target.named("HELLO") == []
