"""Other web pages cannot publish, and cannot reach the server under their own name (row 6).

On the default configuration a cross-site ``POST /broadcast`` with
``Content-Type: text/plain`` was delivered, and so was an ``<img>`` GET of a
trigger URL; a foreign ``Host`` was served (DNS rebinding). Both sides are
tested here: the attacks are refused, and OBS, bots, curl and our own pages
work unchanged.
"""

from __future__ import annotations

import pytest
from aiohttp import web

from .support import WAIT, connect_page

EVIL = "https://evil.example"


async def delivered(page, http, server, *, after) -> list[str]:
    """Names that reached ``page`` before a sentinel published after the attack."""
    async with http.get(f"{server.url}/notify?code={after}&event=sentinel") as response:
        assert response.status == 200
    await page.wait_for("SENTINEL")
    return [name for name, _data in page.received if name not in ("WELCOME", "SENTINEL")]


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL, "Content-Type": "text/plain"},  # the "simple" request of row 6
    {"Origin": EVIL, "Content-Type": "application/json"},
    {"Origin": "null", "Content-Type": "text/plain"},  # a sandboxed frame, a file:// page
    {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
])
async def test_cross_site_posts_are_refused_and_deliver_nothing(server, http, headers):
    page = await connect_page(server.url, query="code=victim")
    try:
        async with http.post(f"{server.url}/broadcast/victim/pwned", data='{"x": 1}',
                             headers=headers) as response:
            answer = await response.json()
        assert (response.status, answer["code"]) == (403, 40344), answer
        assert "--cors-origin" in answer["error"]
        assert await delivered(page, http, server, after="victim") == []
    finally:
        await page.close()


@pytest.mark.parametrize("path", ["/notify?code=victim&event=pwned",
                                  "/sources/alert.html?code=victim&event=pwned"])
async def test_an_img_get_from_another_site_does_not_trigger(server, http, path):
    """What Chromium sends for <img src="http://127.0.0.1:8080/notify?..."> on evil.example."""
    page = await connect_page(server.url, query="code=victim")
    try:
        async with http.get(server.url + path, headers={
                "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Dest": "image", "Referer": EVIL + "/"}) as response:
            assert response.status == 403 and (await response.json())["code"] == 40344
        assert await delivered(page, http, server, after="victim") == []
    finally:
        await page.close()


async def test_bots_curl_and_obs_send_no_origin_and_still_publish(server, http):
    page = await connect_page(server.url, query="code=1234")
    try:
        async with http.get(f"{server.url}/notify?code=1234&event=follow&user=bob") as response:
            assert response.status == 200 and (await response.json())["count"] == 1
        async with http.post(f"{server.url}/broadcast/1234/tip", json={"amount": 5}) as response:
            assert response.status == 200
        async with http.get(f"{server.url}/notify?code=1234&event=bookmark",  # typed or a bookmark
                            headers={"Sec-Fetch-Site": "none"}) as response:
            assert response.status == 200
        await page.wait_for("BOOKMARK")
        assert [name for name, _ in page.received if name != "WELCOME"] == [
            "FOLLOW", "tip", "BOOKMARK"]
    finally:
        await page.close()


async def test_same_origin_pages_and_allowed_origins_publish(serve, http):
    server = await serve(cors_origins=["https://shop.example"])
    for origin in (server.url, "https://shop.example"):
        async with http.post(f"{server.url}/broadcast/news/x", json=1,
                             headers={"Origin": origin}) as response:
            assert response.status == 200, await response.text()
    async with http.get(f"{server.url}/notify?code=c&event=e", headers={
            "Sec-Fetch-Site": "same-origin"}) as response:
        assert response.status == 200
    async with http.post(f"{server.url}/broadcast/news/x", json=1,
                         headers={"Origin": "https://other.example"}) as response:
        assert response.status == 403


async def test_listening_from_another_site_is_still_allowed(server, http):
    """Only what publishes is refused: reading a public channel's history is listening."""
    async with http.get(f"{server.url}/channels/news/events",
                        headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}) as response:
        assert response.status == 200
        assert "Access-Control-Allow-Origin" not in response.headers  # ... and unreadable


@pytest.mark.parametrize("host, status", [
    ("evil.example", 421), ("evil.example:{port}", 421), ("127.0.0.1.evil.example", 421),
    ("localhost.evil.example", 421),
    ("127.0.0.1:{port}", 200), ("localhost:{port}", 200), ("obs.localhost:{port}", 200),
    ("[::1]:{port}", 200), ("192.168.1.20:{port}", 200), ("my.box:{port}", 200),
    ("LOCALHOST", 200),
])
async def test_host_header_guards_against_dns_rebinding(serve, http, host, status):
    server = await serve(allowed_hosts=["my.box"])
    headers = {"Host": host.format(port=server.port)}
    async with http.get(f"{server.url}/channels/news/events", headers=headers) as response:
        assert response.status == status, await response.text()
        if status == 421:
            answer = await response.json()
            assert answer["code"] == 42101 and "--allowed-host" in answer["error"]
    async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling",
                        headers=headers) as response:
        assert response.status == status  # socket.io too: a rebinding page would be same-origin


async def test_any_host_when_asked(serve, http):
    server = await serve(allowed_hosts=["*"])
    async with http.get(f"{server.url}/heartbeat", headers={"Host": "anything"}) as response:
        assert response.status == 200


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
async def test_json_routes_need_the_json_content_type(server, http, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    for path in ("/broadcast/news/x", "/emit", "/webpush/subscriptions", "/webpush/notify"):
        async with http.post(server.url + path, data=b'{"x": 1}', headers=headers,
                             skip_auto_headers=["Content-Type"]) as response:
            answer = await response.json()
        assert (response.status, answer["code"]) == (415, 41501), (path, answer)
        assert "-H 'Content-Type: application/json'" in answer["error"]


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "application/vnd.api+json"])
async def test_json_content_types_are_accepted(server, http, content_type):
    async with http.post(f"{server.url}/broadcast/news/x", data=b'{"x": 1}',
                         headers={"Content-Type": content_type}) as response:
        assert response.status == 200, await response.text()


async def test_a_real_page_on_another_site_cannot_publish(server, http, browser):
    """Chromium on http://localhost:PORT (another site than 127.0.0.1): an <img> and a
    no-cors text/plain POST, exactly what row 6 sent; neither is delivered."""
    evil = web.Application()
    target = server.url

    async def page(_request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=f"""<!doctype html>
<img src="{target}/notify?code=victim&amp;event=img_pwned">
<script>
fetch("{target}/broadcast/victim/post_pwned", {{method: "POST", mode: "no-cors",
      headers: {{"Content-Type": "text/plain"}}, body: '{{"x": 1}}'}})
  .finally(() => {{ document.title = "sent"; }});
</script>""")

    evil.router.add_get("/", page)
    runner = web.AppRunner(evil)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    listener = await connect_page(server.url, query="code=victim")
    tab = await browser.new_page()
    try:
        refused = []
        tab.on("requestfinished", lambda request: refused.append(request.url)
               if target in request.url else None)
        tab.on("requestfailed", lambda request: refused.append(request.url)
               if target in request.url else None)
        await tab.goto(f"http://localhost:{runner.addresses[0][1]}/")
        await tab.wait_for_function("() => document.title === 'sent'", timeout=WAIT * 1000)
        await tab.wait_for_load_state("load")
        assert len(refused) == 2, refused  # both attempts reached the server ...
        assert await delivered(listener, http, server, after="victim") == []  # ... and did nothing
    finally:
        await tab.close()
        await listener.close()
        await runner.cleanup()


async def test_the_front_door_keeps_the_facts_of_matched_routes_only(server, http):
    """Route facts are decided once per route; paths that match nothing are never kept.

    Otherwise every scanner's made-up path would grow the front door's memory.
    """
    for n in range(40):
        async with http.get(f"{server.url}/no-such-page-{n}") as response:
            assert response.status == 404
    async with http.get(f"{server.url}/no-such-page?code=1234&event=tick") as response:
        assert (await response.json())["event"] == "TICK"  # a 404 path still triggers
    for name in ("a", "b"):
        async with http.get(f"{server.url}/notify?code=1234&event={name}") as response:
            assert response.status == 200
    async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling") as response:
        assert response.status == 200
    known = server.app.middlewares[0].known_routes
    assert [facts.name for facts in known.values()].count("notify") == 1
    assert all(not facts.error and facts.name == route.name for route, facts in known.items())
    assert [facts.socketio for facts in known.values()].count(True) == 1
    assert len(known) <= len(list(server.app.router.routes()))
