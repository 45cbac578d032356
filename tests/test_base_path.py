"""--base-path /notify: every route, the socket.io path, SSE and the pages under a sub-path."""

from __future__ import annotations

import re

import pytest
from yarl import URL

from notification_service.basepath import normalise_base_path
from notification_service.config import PACKAGE_WEB_ROOT

from .sse_client import open_stream
from .support import connect_page

BASE = "/notify"
pytestmark = pytest.mark.server(base_path=BASE)


async def test_the_base_redirects_relatively_to_the_pages(server, http):
    async with http.get(server.url + BASE, allow_redirects=False) as response:
        assert response.status == 301
        assert response.headers["Location"] == "./notify/"
    async with http.get(server.url + BASE + "/", allow_redirects=False) as response:
        assert response.headers["Location"] == "./console/"  # "/" leads to the console
    async with http.get(server.url + BASE) as response:  # followed like a browser does
        assert response.status == 200
        assert response.url.path == BASE + "/console/"
        assert "Alert console" in await response.text()
    async with http.get(server.url + BASE + "/console", allow_redirects=False) as response:
        assert response.headers["Location"] == "./console/"


async def test_routes_live_under_the_base_only(server, http):
    for path in ("/sources/alert.html", "/static/notificationservice.js", "/heartbeat",
                 "/openapi.json"):
        async with http.get(server.url + BASE + path) as response:
            assert response.status == 200, path
        async with http.get(server.url + path) as response:
            assert response.status == 404, path
            assert (await response.json())["code"] == 40401
    async with http.get(server.url + BASE + "/openapi.json") as response:
        assert (await response.json())["servers"] == [{"url": BASE}]


async def test_socketio_sse_and_triggers_under_the_base(server, http):
    page = await connect_page(server.url, query="code=base1234", socketio_path=BASE + "/socket.io")
    stream = await open_stream(http, server.url + BASE, query="code=base1234")
    try:
        async with http.get(server.url + BASE + "/notify",
                            params={"code": "base1234", "event": "follow"}) as response:
            assert (await response.json())["count"] == 2
        # The seed's page-URL form works under the base too.
        async with http.get(server.url + BASE + "/sources/alert.html",
                            params={"code": "base1234", "event": "raid"}) as response:
            assert (await response.json())["count"] == 2
        await page.wait_for("RAID")
        assert [name for name, _data in page.received if name in ("FOLLOW", "RAID")] == [
            "FOLLOW", "RAID"]
        assert [(await stream.next_event()).name for _ in range(2)] == ["FOLLOW", "RAID"]
    finally:
        await page.close()
        stream.close()


async def test_a_folder_without_its_slash_redirects_relatively(server, http):
    async with http.get(server.url + BASE + "/sources", allow_redirects=False) as response:
        assert response.headers["Location"] == "./sources/"
        target = response.url.join(URL(response.headers["Location"]))
        assert target.path == BASE + "/sources/"


@pytest.mark.parametrize("given, expected", [
    ("/notify", "/notify"), ("/notify/", "/notify"), ("/", ""), ("", ""),
    ("/a/b-c_d.e~", "/a/b-c_d.e~"),
])
def test_base_path_is_normalised(given, expected):
    assert normalise_base_path(given) == expected


@pytest.mark.parametrize("bad", ["notify", "/a/../b", "/a//b", "/a b", "/a?x", "/%2e%2e"])
def test_a_base_path_that_is_not_a_plain_path_is_refused(bad):
    with pytest.raises(ValueError):
        normalise_base_path(bad)


# Absolute URLs in a shipped page or script would break under a sub-path.
ABSOLUTE_URL = re.compile(
    r"""(?:src|href|action)\s*=\s*["']/(?!/)"""  # src="/static/..." (but not //cdn)
    r"""|["'`]/(?:static|sources|sse|notify|webpush|socket\.io|emit|broadcast|channels|"""
    r"""connections|health|heartbeat)\b""")


@pytest.mark.parametrize("path", sorted(
    str(path.relative_to(PACKAGE_WEB_ROOT)) for path in PACKAGE_WEB_ROOT.rglob("*")
    if path.suffix in (".html", ".js", ".css") and path.name != "socket.io.min.js"))
def test_shipped_pages_use_urls_relative_to_the_base(path):
    text = (PACKAGE_WEB_ROOT / path).read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith(("*", "//", "/*")))  # comments may explain
    assert not ABSOLUTE_URL.findall(code), f"{path} uses an absolute URL"
