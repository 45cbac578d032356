"""The JSON answer of every route, written with less machinery than aiohttp's ``Response``.

A GET trigger's answer is a few hundred bytes of JSON. ``web.Response`` gets
there through a content-type parser, five nested coroutines and a dozen header
checks written for every kind of answer (cookies, compression, chunking,
payload objects, empty-body statuses): about 26,000 of the 357,000 instructions
a trigger took (callgrind; README, "Performance"). :class:`JSONAnswer` knows
its body is bytes of a known length, so :meth:`JSONAnswer.prepare` sets
``Content-Length``, ``Date``, ``Server`` and ``Connection`` the way aiohttp
does and hands the header block to aiohttp's own writer, which sends it with
the body in one write. What it does not know (a cookie, compression, chunking,
a status without a body) goes through aiohttp's general path unchanged.

The bytes on the wire equal ``web.Response``'s for GET, HEAD, HTTP/1.0 and
closing connections (tests/test_json_answer.py compares them), so no client
can tell. It uses ``StreamResponse``'s own fields, which that test pins.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion10, HttpVersion11

CONTENT_TYPE = "application/json"
NO_BODY_STATUSES = frozenset({204, 304})
"""Answers that carry no body and no length: left to aiohttp's own rules."""


class JSONAnswer(web.StreamResponse):
    """An answer whose whole body, JSON bytes, is known before it starts."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        super().__init__(status=status, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE})
        self._json = body

    @property
    def body(self) -> bytes:
        return self._json

    @property
    def text(self) -> str:
        return self._json.decode()

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._eof_sent or self._payload_writer is not None:
            return await super().prepare(request)  # prepared before: what aiohttp answers
        if (self._cookies or self._compression or self._chunked
                or self._status in NO_BODY_STATUSES):
            if not self._chunked:
                self.content_length = len(self._json)
            return await super().prepare(request)
        self._req = request
        writer = self._payload_writer = request._payload_writer
        self._must_be_empty_body = request.method == hdrs.METH_HEAD  # the length is still told
        await request._prepare_hook(self)  # on_response_prepare, as for any answer
        keep_alive = self._keep_alive
        if keep_alive is None:
            keep_alive = self._keep_alive = request.keep_alive
        headers = self._headers
        version = request.version
        writer.length = len(self._json)
        headers[hdrs.CONTENT_LENGTH] = str(writer.length)
        if hdrs.DATE not in headers:
            headers[hdrs.DATE] = rfc822_formatted_time()
        headers.setdefault(hdrs.SERVER, SERVER_SOFTWARE)
        if hdrs.CONNECTION not in headers:
            if keep_alive:
                if version == HttpVersion10:
                    headers[hdrs.CONNECTION] = "keep-alive"
            elif version == HttpVersion11:
                headers[hdrs.CONNECTION] = "close"
        await writer.write_headers(
            f"HTTP/{version.major}.{version.minor} {self._status} {self._reason}", headers)
        return writer

    async def write_eof(self, data: bytes = b"") -> None:
        if not self._eof_sent:
            await super().write_eof(b"" if self._must_be_empty_body else self._json)
