"""JSONAnswer puts on the wire exactly what aiohttp's ``web.Response`` would.

It takes a shorter way through aiohttp's answer machinery (json_answer.py), so
these tests pin the bytes, request form by request form, against the stock
answer served by the same server: a new aiohttp that changes what an answer
looks like, or the fields JSONAnswer relies on, fails here.
"""

from __future__ import annotations

import asyncio
import socket
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from notification_service.json_answer import JSONAnswer

BODY = b'{"success":1,"count":0,"msg":"Broadcast event to 0 clients"}'


@pytest.fixture
async def both_answers() -> AsyncIterator[int]:
    """A bare aiohttp app answering /lean with JSONAnswer and /stock with web.Response."""
    def as_asked(response: web.StreamResponse, request: web.Request) -> web.StreamResponse:
        """The answer with what the query asks of it: a cookie, compression, chunking."""
        if "cookie" in request.query:
            response.set_cookie("seen", "1")
        if "compress" in request.query:
            response.enable_compression()
        if "chunked" in request.query:
            response.enable_chunked_encoding()
        return response

    async def lean(request: web.Request) -> web.StreamResponse:
        return as_asked(JSONAnswer(BODY, int(request.query.get("status", "200"))), request)

    async def stock(request: web.Request) -> web.StreamResponse:
        return as_asked(web.Response(body=BODY, status=int(request.query.get("status", "200")),
                                     content_type="application/json"), request)

    app = web.Application()
    app.router.add_route("*", "/lean", lean)
    app.router.add_route("*", "/stock", stock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield port
    await runner.cleanup()


async def exchange(port: int, request_head: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """Send one request head; the status line, the headers but Date (in order) and the body
    (de-chunked)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_head.encode() + b"\r\n\r\n")
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
        lines = head.rstrip("\r\n").split("\r\n")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
        named = dict((name.lower(), value) for name, value in headers)
        body = b""
        if request_head.startswith("HEAD"):
            pass
        elif named.get("transfer-encoding") == "chunked":
            while size := int(await asyncio.wait_for(reader.readline(), 10), 16):
                body += await reader.readexactly(size)
                await reader.readexactly(2)  # the CRLF after each chunk
        elif "content-length" in named:
            body = await asyncio.wait_for(reader.readexactly(int(named["content-length"])), 10)
        assert sum(name == "Date" for name, _ in headers) == 1
        return lines[0], [header for header in headers if header[0] != "Date"], body
    finally:
        writer.close()


REQUEST_FORMS = {
    "HTTP/1.1 keep-alive": "GET {path} HTTP/1.1\r\nHost: x",
    "HTTP/1.1 closing": "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close",
    "HTTP/1.0": "GET {path} HTTP/1.0",
    "HTTP/1.0 keep-alive": "GET {path} HTTP/1.0\r\nConnection: keep-alive",
    "HEAD": "HEAD {path} HTTP/1.1\r\nHost: x",
    "an error status": "GET {path}?status=404 HTTP/1.1\r\nHost: x",
    "a cookie (aiohttp's own path)": "GET {path}?cookie=1 HTTP/1.1\r\nHost: x",
    "a status without a body (aiohttp's own path)": "GET {path}?status=204 HTTP/1.1\r\nHost: x",
    "chunked (aiohttp's own path)": "GET {path}?chunked=1 HTTP/1.1\r\nHost: x",
}


@pytest.mark.parametrize("form", REQUEST_FORMS)
async def test_the_answer_on_the_wire_is_aiohttps_own(both_answers: int, form: str) -> None:
    template = REQUEST_FORMS[form]
    lean = await exchange(both_answers, template.format(path="/lean"))
    stock = await exchange(both_answers, template.format(path="/stock"))
    assert lean == stock
    status_line, headers, body = lean
    assert ("Content-Type", "application/json") in headers
    if "without a body" in form:
        assert body == b"" and not any(name == "Content-Length" for name, _ in headers)
    elif form == "HEAD":
        assert body == b"" and ("Content-Length", str(len(BODY))) in headers
    else:
        assert body == BODY


async def test_a_compressed_answer_takes_aiohttps_own_path_and_reads_back(both_answers: int) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{both_answers}/lean?compress=1",
                            headers={"Accept-Encoding": "deflate"}) as response:
            assert response.headers["Content-Encoding"] == "deflate"
            assert await response.read() == BODY


def test_the_body_reads_back_like_a_responses() -> None:
    answer = JSONAnswer(BODY, 201)
    assert (answer.status, answer.body, answer.text) == (201, BODY, BODY.decode())
    assert answer.content_type == "application/json"
