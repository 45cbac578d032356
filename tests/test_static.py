"""Static hosting: content types, caching, ranges, folders, and nothing outside the folder."""

from __future__ import annotations

import os
import sys

import pytest
from yarl import URL

from notification_service.config import PACKAGE_WEB_ROOT, settings_from_args
from notification_service.static import CONTENT_TYPES

from .support import raw_get

EXPECTED_TYPES = {
    "html": "text/html", "js": "text/javascript", "mjs": "text/javascript", "css": "text/css",
    "json": "application/json", "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg",
    "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "avif": "image/avif",
    "ico": "image/x-icon", "mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg",
    "opus": "audio/ogg", "m4a": "audio/mp4", "mp4": "video/mp4", "webm": "video/webm",
    "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
    "txt": "text/plain",
}


@pytest.fixture
async def site(serve, tmp_path):
    """A web root with one file per type, a folder with an index, a hidden file and a secret outside."""
    root = tmp_path / "web"
    sources = root / "sources"
    (sources / "media").mkdir(parents=True)
    (root / "static").mkdir()
    for extension in EXPECTED_TYPES:
        (sources / f"file.{extension}").write_bytes(b"0123456789" * 10)
    (sources / "SHOUT.MP3").write_bytes(b"id3")
    (sources / "unknown.xyz").write_bytes(b"?")
    (sources / "media" / "index.html").write_text("<p>media index</p>")
    (sources / "noindex").mkdir()
    (sources / ".env").write_text("SECRET=1")
    (tmp_path / "secret.txt").write_text("outside the web root")
    if sys.platform != "win32":
        os.symlink(tmp_path / "secret.txt", sources / "link-out.txt")
        os.symlink(sources / "file.txt", sources / "link-in.txt")
    return await serve(web_root=root)


def test_table_covers_every_type_an_overlay_uses():
    for extension, expected in EXPECTED_TYPES.items():
        assert CONTENT_TYPES["." + extension].startswith(expected)


@pytest.mark.parametrize("extension", sorted(EXPECTED_TYPES))
async def test_content_type(site, http, extension):
    async with http.get(f"{site.url}/sources/file.{extension}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith(EXPECTED_TYPES[extension])


async def test_extensions_are_case_insensitive_and_unknown_is_octet_stream(site, http):
    async with http.get(f"{site.url}/sources/SHOUT.MP3") as response:
        assert response.headers["Content-Type"] == "audio/mpeg"
    async with http.get(f"{site.url}/sources/unknown.xyz") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/octet-stream"


async def test_conditional_get_answers_304(site, http):
    async with http.get(f"{site.url}/sources/file.png") as response:
        etag = response.headers["ETag"]
        assert response.headers["Last-Modified"]
    async with http.get(f"{site.url}/sources/file.png", headers={"If-None-Match": etag}) as response:
        assert response.status == 304


async def test_range_request_lets_video_seek(site, http):
    async with http.get(f"{site.url}/sources/file.mp4", headers={"Range": "bytes=10-19"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == "bytes 10-19/100"
        assert await response.read() == b"0123456789"


async def test_folder_serves_its_index(site, http):
    async with http.get(f"{site.url}/sources/media/") as response:
        assert response.status == 200
        assert "media index" in await response.text()
    async with http.get(f"{site.url}/sources/media", allow_redirects=False) as response:
        assert response.status == 301
        # Relative, so it stays right under --base-path and behind a proxy's prefix.
        assert response.headers["Location"] == "./media/"
        assert str(response.url.join(URL(response.headers["Location"]))).endswith(
            "/sources/media/")
    async with http.get(f"{site.url}/sources/noindex/") as response:
        assert response.status == 404
        assert (await response.json())["code"] == 40401


async def test_favicon(server, http):
    async with http.get(f"{server.url}/favicon.ico") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/x-icon"


async def test_shipped_client_is_served_locally(server, http):
    async with http.get(f"{server.url}/static/socket.io.min.js") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert "Socket.IO v4" in (await response.text())[:200]


TRAVERSALS = [
    "/sources/../secret.txt",
    "/sources/%2e%2e/secret.txt",
    "/sources/%2E%2E/secret.txt",
    "/sources/..%2fsecret.txt",
    "/sources/..%2f..%2fetc%2fpasswd",
    "/sources/%2f..%2fsecret.txt",
    "/sources/%2fetc%2fpasswd",
    "/sources//etc/passwd",
    "/sources/..\\secret.txt",
    "/sources/..%5csecret.txt",
    "/sources/C:%5cWindows%5cwin.ini",
    "/sources/.env",
    "/sources/%2eenv",
    "/sources/media/../../secret.txt",
    "/static/../sources/.env",
    "/sources/file.txt%00.html",
]


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_nothing_outside_the_folder_is_served(site, target):
    status, headers, body = await raw_get(site.url, target)
    assert status in (400, 404), (target, status)
    assert b"outside the web root" not in body and b"SECRET=1" not in body
    assert b"root:" not in body


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
async def test_symlinks_pointing_out_are_refused_and_inside_are_served(site, http):
    async with http.get(f"{site.url}/sources/link-out.txt") as response:
        assert response.status == 404
    async with http.get(f"{site.url}/sources/link-in.txt") as response:
        assert response.status == 200


# -- headers (row 14): no nosniff, no Content-Security-Policy, and an SVG's script ran
# -- in the server's origin -------------------------------------------------------

SVG_WITH_SCRIPT = (b'<svg xmlns="http://www.w3.org/2000/svg"><script>'
                   b'document.title = "svg script ran"</script></svg>')


async def test_every_answer_says_nosniff(site, http):
    """Handlers' answers, errors, redirects, a stream a handler starts itself, engine.io's own."""
    for path in ("/sources/file.txt", "/sources/unknown.xyz", "/heartbeat", "/nothing-here",
                 "/openapi.json", "/channels/news/events", "/", "/sse?code=1234",
                 "/socket.io/?EIO=4&transport=polling"):
        async with http.get(site.url + path, allow_redirects=False) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff", path


async def test_svg_is_sandboxed_and_own_pages_get_no_policy(site, http):
    async with http.get(f"{site.url}/sources/file.svg") as response:
        assert response.headers["Content-Security-Policy"] == "sandbox"
    async with http.get(f"{site.url}/sources/file.html") as response:
        assert "Content-Security-Policy" not in response.headers  # a --web-root of your own


async def test_an_svg_script_never_runs_in_the_servers_origin(serve, tmp_path, browser):
    root = tmp_path / "web"
    (root / "sources").mkdir(parents=True)
    (root / "sources" / "evil.svg").write_bytes(SVG_WITH_SCRIPT)
    server = await serve(web_root=root)
    page = await browser.new_page()
    try:
        await page.goto(f"{server.url}/sources/evil.svg")
        assert await page.title() != "svg script ran"
        assert await page.evaluate("() => { try { return localStorage.length; } "
                                   "catch (e) { return 'no access'; } }") == "no access"
    finally:
        await page.close()


async def test_shipped_pages_allow_only_their_own_scripts(server, http):
    from notification_service.config import PACKAGE_WEB_ROOT
    from notification_service.static import page_policy

    for page in sorted((PACKAGE_WEB_ROOT / "sources").glob("*.html")):
        async with http.get(f"{server.url}/sources/{page.name}") as response:
            policy = response.headers["Content-Security-Policy"]
        assert policy == page_policy(page.read_bytes())
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split(
            "style-src")[0] and "'unsafe-eval'" not in policy
        assert "object-src 'none'" in policy


@pytest.mark.browser
async def test_every_shipped_page_runs_under_its_policy_in_chromium(server, browser):
    """Every page of web/sources loads with no Content-Security-Policy violation, its
    scripts run (they connect), and a script injected into the page is refused."""
    from notification_service.config import PACKAGE_WEB_ROOT

    for name in sorted(path.name for path in (PACKAGE_WEB_ROOT / "sources").glob("*.html")):
        page = await browser.new_page()
        violations: list[str] = []
        page.on("console", lambda message: violations.append(message.text)
                if "Content Security Policy" in message.text else None)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            await page.goto(f"{server.url}/sources/{name}?code=csp1&channel=csp1")
            await page.wait_for_load_state("load")
            await page.evaluate("""() => new Promise(resolve => {
                document.addEventListener('securitypolicyviolation', () => resolve(), {once: true});
                const s = document.createElement('script');
                s.textContent = 'window.injected = true';
                document.body.appendChild(s);
                setTimeout(resolve, 500);
            })""")
            assert await page.evaluate("() => window.injected === undefined"), name
            # A script of the page itself that the policy blocked would be a violation too:
            # the only one is the injected script.
            assert len(violations) == 1 and "inline script" in violations[0], (name, violations)
            assert errors == [], (name, errors)
        finally:
            await page.close()
async def test_web_root_adds_your_pages_before_the_shipped_ones(serve, http, tmp_path):
    mine = tmp_path / "mine"
    (mine / "sources").mkdir(parents=True)
    (mine / "sources" / "alert.html").write_text("<p>my own alert</p>")
    (mine / "sources" / "mine.html").write_text("<p>only mine</p>")
    server = await serve(web_root=mine)
    async with http.get(f"{server.url}/sources/alert.html") as response:
        assert await response.text() == "<p>my own alert</p>"  # yours replaces ours
    async with http.get(f"{server.url}/sources/mine.html") as response:
        assert await response.text() == "<p>only mine</p>"
    shipped = {"/sources/example.html": "sources/example.html",
               "/sources/": "sources/index.html",  # your sources/ has no index.html
               "/static/notificationservice.js": "static/notificationservice.js"}
    for path, file in shipped.items():
        async with http.get(server.url + path) as response:
            assert response.status == 200, path
            assert await response.read() == (PACKAGE_WEB_ROOT / file).read_bytes(), path


def test_web_root_must_be_a_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        settings_from_args(["--web-root", str(tmp_path / "typo")])
    assert "no such folder" in capsys.readouterr().err
