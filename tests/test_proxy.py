"""Behind Debian's nginx under a sub-path: the README's configuration (contrib/nginx), a real
browser on the shipped pages over WebSocket and SSE, and client addresses with --trust-proxy."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from notification_service.config import PROJECT_ROOT

from .sse_client import SECRET, make_token, open_stream
from .support import WAIT

CONF = PROJECT_ROOT / "contrib" / "nginx" / "notification-server.conf"
BASE = "/notify"
ADMIN = "admin-token-for-proxy-tests"
BEHIND_NGINX = dict(base_path=BASE, trust_proxy=1, jwt_secret=SECRET, admin_token=ADMIN)


def configuration(nginx_port: int, server_port: int) -> str:
    """contrib/nginx/notification-server.conf, listening and proxying on the test's ports."""
    text = CONF.read_text()
    replaced = text.replace("listen 80;", f"listen 127.0.0.1:{nginx_port};").replace(
        "server 127.0.0.1:8080;", f"server 127.0.0.1:{server_port};")
    assert replaced.count(str(nginx_port)) == 1 and replaced.count(str(server_port)) == 1
    return replaced


@pytest.mark.browser
@pytest.mark.server(**BEHIND_NGINX)
async def test_shipped_pages_work_behind_nginx_under_a_sub_path(server, nginx, browser, http):
    await nginx.start(configuration(nginx.port, server.port))
    front = nginx.url + BASE
    requested: list[str] = []
    socketio_page = await browser.new_page()
    socketio_page.on("request", lambda request: requested.append(request.url))
    socketio_page.on("websocket", lambda socket: requested.append(
        socket.url.replace("ws://", "http://", 1)))
    await socketio_page.goto(nginx.url + BASE)  # the base, then relative redirects
    assert socketio_page.url == front + "/console/"  # "/" leads to the console
    await socketio_page.goto(front + "/sources/example.html?code=proxy1234")
    await socketio_page.wait_for_function("() => NotificationService.status === 'registered'",
                                          timeout=WAIT * 1000)
    # The upgrade went through nginx: no fallback to long-polling.
    assert await socketio_page.evaluate("socket.io.engine.transport.name") == "websocket"
    sse_page = await browser.new_page()
    sse_page.on("request", lambda request: requested.append(request.url))
    await sse_page.goto(front + "/sources/sse.html?code=proxy1234&events=FOLLOW")
    await sse_page.wait_for_function(
        "() => document.getElementById('state').textContent === 'connected'", timeout=WAIT * 1000)

    async with http.get(front + "/notify", params={"code": "proxy1234", "event": "follow",
                                                   "user": "bob"}) as response:
        assert (await response.json())["count"] == 2
    await socketio_page.wait_for_function(
        "() => document.querySelector('#log .name') && "
        "document.querySelector('#log .name').textContent === 'FOLLOW'", timeout=WAIT * 1000)
    await sse_page.wait_for_function(
        "() => document.querySelector('#log .name') && "
        "document.querySelector('#log .name').textContent === 'FOLLOW'", timeout=WAIT * 1000)
    assert '"user":"bob"' in await sse_page.inner_text("#log .data")
    outside = [url for url in requested if url != front  # the first goto, above
               and not url.startswith(front + "/") and not url.endswith("/favicon.ico")]
    assert any("/socket.io/" in url for url in requested) and outside == [], \
        "a shipped page asked for a URL outside the base"


@pytest.mark.server(**BEHIND_NGINX)
async def test_sse_streams_through_nginx_without_buffering(server, nginx, http):
    await nginx.start(configuration(nginx.port, server.port))
    stream = await open_stream(http, nginx.url + BASE, query="code=stream1234")
    try:
        for number in range(3):  # each arrives on its own, not when a buffer fills
            async with http.get(nginx.url + BASE + "/notify",
                                params={"code": "stream1234", "event": f"e{number}"}) as answer:
                assert (await answer.json())["count"] == 1
            assert (await stream.next_event()).name == f"E{number}"
    finally:
        stream.close()


async def _listed_address(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url + "/connections/app-1",
                        headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        listing = await response.json()
    (connection,) = [entry for user in listing.values() for entry in user.values()]
    return connection["remote_addr"]


@pytest.mark.parametrize("trust_proxy, expected", [(1, "127.0.0.2"), (0, "127.0.0.1")])
async def test_trust_proxy_takes_the_address_nginx_saw(serve, nginx, trust_proxy, expected):
    server = await serve(**{**BEHIND_NGINX, "trust_proxy": trust_proxy})
    await nginx.start(configuration(nginx.port, server.port))
    # The client connects to nginx from 127.0.0.2 and claims to be someone else.
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as client:
        stream = await client.get(
            nginx.url + BASE + "/sse", headers={"Authorization": f"Bearer {make_token()}",
                                               "X-Forwarded-For": "203.0.113.66"},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
        try:
            assert stream.status == 200
            async with aiohttp.ClientSession() as admin:
                for _ in range(int(WAIT / 0.05)):  # the stream registers as it starts
                    try:
                        address = await _listed_address(admin, nginx.url + BASE)
                        break
                    except ValueError:
                        await asyncio.sleep(0.05)
            assert address == expected
        finally:
            stream.close()


@pytest.mark.parametrize("trust_proxy, headers, expected", [
    (1, {"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}, "203.0.113.5"),
    (2, {"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}, "198.51.100.1"),
    (3, {"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}, "198.51.100.1"),
    (1, {"Forwarded": 'for=192.0.2.60;proto=https, for="[2001:db8::17]:4711"'}, "2001:db8::17"),
    (1, {"X-Forwarded-For": "203.0.113.5", "Forwarded": "for=192.0.2.60"}, "203.0.113.5"),
    (1, {"X-Forwarded-For": "unknown"}, "127.0.0.1"),
    (1, {"Forwarded": "for=_hidden"}, "127.0.0.1"),
    (1, {}, "127.0.0.1"),
    (0, {"X-Forwarded-For": "203.0.113.5"}, "127.0.0.1"),
])
async def test_forwarded_headers_are_read_only_as_far_as_trusted(serve, http, trust_proxy,
                                                                 headers, expected):
    server = await serve(jwt_secret=SECRET, admin_token=ADMIN, trust_proxy=trust_proxy)
    stream = await http.get(server.url + "/sse",
                            headers={"Authorization": f"Bearer {make_token()}", **headers},
                            timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
    try:
        assert stream.status == 200
        assert await _listed_address(http, server.url) == expected
    finally:
        stream.close()
