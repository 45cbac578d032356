"""CORS: one origin list for socket.io and the HTTP API; preflight answered; same origin by default."""

from __future__ import annotations

import pytest
import socketio

ORIGIN = "http://shop.example:7788"  # a listed origin
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization,content-type"}


async def socketio_accepts(url: str, origin: str) -> bool:
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(url, headers={"Origin": origin}, transports=["websocket"],
                             wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        if client.eio.http is not None and not client.eio.http.closed:
            await client.eio.http.close()  # a refused client leaves its session open
        return False
    await client.disconnect()
    return True


async def test_default_is_same_origin_only(server, http):
    async with http.options(f"{server.url}/broadcast/news/update",
                            headers={"Origin": "http://evil.example", **PREFLIGHT}) as response:
        assert response.status == 403
        answer = await response.json()
        assert answer["code"] == 40343 and "--cors-origin http://evil.example" in answer["error"]
    async with http.post(f"{server.url}/broadcast/news/update", data="1",
                         headers={"Origin": "http://evil.example"}) as response:
        assert "Access-Control-Allow-Origin" not in response.headers
    assert not await socketio_accepts(server.url, "http://evil.example")
    assert await socketio_accepts(server.url, server.url)


@pytest.mark.server(cors_origins=[ORIGIN], secret="s")
async def test_listed_origin_gets_preflight_headers_and_socketio(server, http):
    async with http.options(f"{server.url}/emit",
                            headers={"Origin": ORIGIN, **PREFLIGHT}) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["Access-Control-Allow-Headers"] == "authorization,content-type"
        assert "Origin" in response.headers["Vary"]
    async with http.post(f"{server.url}/emit", json={"event": "e", "room": "r", "secret": "s"},
                         headers={"Origin": ORIGIN}) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    async with http.post(f"{server.url}/emit", json={"event": "e", "room": "r"},
                         headers={"Origin": ORIGIN}) as response:
        assert response.status == 403  # errors are readable by the page too
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    async with http.options(f"{server.url}/emit", headers={
            "Origin": "http://other.example", **PREFLIGHT}) as response:
        assert response.status == 403
    assert await socketio_accepts(server.url, ORIGIN)
    assert not await socketio_accepts(server.url, "http://other.example")


@pytest.mark.parametrize("path", ["/broadcast/news/update", "/notify", "/openapi.json"])
@pytest.mark.server(cors_origins=["*"])
async def test_any_origin(server, http, path):
    async with http.options(f"{server.url}{path}", headers={
            "Origin": "http://anything.example", **PREFLIGHT}) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    async with http.get(f"{server.url}/health",
                        headers={"Origin": "http://anything.example"}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert await socketio_accepts(server.url, "http://anything.example")
